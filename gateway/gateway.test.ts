import t from 'tap';
import WebSocket from 'ws';
import { loadConfig } from '../shared/config/index.ts';
import { createAuthenticator } from '../shared/auth/index.ts';
import { createSqliteStore } from '../shared/store/index.ts';
import { createMemoryBus, subjects, type Bus } from '../shared/bus/index.ts';
import { createMemoryPresence } from '../shared/presence/index.ts';
import { createMemoryRateLimiter } from '../shared/rate-limit/index.ts';
import { MessageCommands, RoomCommands, createCachedRoomAccess } from '../shared/commands/index.ts';
import { createHttpServer } from '../shared/http/index.ts';
import { Snowflake } from '../shared/ids/index.ts';
import { silentLogger } from '../shared/telemetry/index.ts';
import { startGateway } from './start.ts';

/**
 * The gateway on a real HTTP server with in-process adapters: its SSE and long-poll routes are
 * routes of the server (documented, counted, CORS and errors as REST), and its three transports
 * share one fan-out.
 */
async function startHarness(t: { teardown(fn: () => unknown): void }) {
  const config = loadConfig({ NODE_ENV: 'test', JWT_SECRET: 'gateway-test-secret-0123456789-abcdefgh', LOG_LEVEL: 'silent' });
  const log = silentLogger();
  const store = createSqliteStore({ file: ':memory:' });
  const memory = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 10_000 });
  /** Live bus subscriptions by subject. */
  const live = new Map<string, number>();
  const subscribe: Bus['subscribe'] = (subject, handler) => {
    live.set(subject, (live.get(subject) ?? 0) + 1);
    const sub = memory.subscribe(subject, handler);
    return { unsubscribe: () => { live.set(subject, live.get(subject)! - 1); sub.unsubscribe(); } };
  };
  /** While set, durable publishes wait for it (a slow stream), counted in `publishes`. */
  let gate: Promise<void> | undefined;
  const publishes = { started: 0 };
  const publishDurable: Bus['publishDurable'] = async (...args) => {
    publishes.started++;
    await gate;
    return memory.publishDurable(...args);
  };
  const bus = new Proxy(memory, {
    get: (target, prop) => {
      if (prop === 'subscribe') return subscribe;
      if (prop === 'publishDurable') return publishDurable;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const presence = createMemoryPresence({ ttlSec: 300, typingTimeoutMs: 3000 });
  const authenticator = await createAuthenticator(config.auth);
  const ids = new Snowflake(1);
  const access = createCachedRoomAccess(store);
  const rooms = new RoomCommands({ bus, store, presence, ids });
  const messages = new MessageCommands({
    bus, store, presence, ids, access, rateLimiter: createMemoryRateLimiter(), limits: { maxMessageLength: 1000 },
    userRate: { perSecond: 1000, burst: 1000 }, tenantRate: undefined,
  });
  const server = createHttpServer({ http: config.http, log, authenticator, checkResponses: true });
  const gateway = startGateway({ server, ws: config.ws, bus, store, presence, authenticator, messages, rooms, access, log });
  const port = await server.listen('127.0.0.1', 0);
  t.teardown(async () => {
    await gateway.drain(0);
    server.close();
    await bus.close();
  });
  const token = (userId: string) => authenticator.sign({ sub: userId, name: userId.toUpperCase() });
  const principal = async (userId: string) => authenticator.verify(await token(userId));
  const holdPublishes = () => {
    let release!: () => void;
    gate = new Promise((r) => { release = r; });
    return () => { gate = undefined; release(); };
  };
  return { base: `http://127.0.0.1:${port}`, port, live, rooms, messages, token, principal, gateway, publishes, holdPublishes };
}

t.test('gateway - the SSE and long-poll routes are in the OpenAPI document, with their query parameters', async (t) => {
  const h = await startHarness(t);
  const doc = await (await fetch(`${h.base}/v1/openapi.json`)).json() as any;
  const stream = doc.paths['/v1/chat/stream']?.get;
  t.equal(stream?.operationId, 'chatStream');
  t.same(stream.parameters.map((p: any) => [p.name, p.in]), [['token', 'query'], ['rooms', 'query'], ['resume', 'query'], ['device', 'query']]);
  t.same(stream.responses['200'].content['text/event-stream'], { schema: { type: 'string' } }, 'a stream of events');
  t.ok(stream.responses['401'] && stream.responses['400'], 'and its errors, in the error envelope');
  const poll = doc.paths['/v1/chat/poll']?.get;
  t.equal(poll?.operationId, 'chatPoll');
  t.same(poll.parameters.map((p: any) => p.name), ['token', 'rooms', 'resume', 'device', 'cursor', 'timeout']);
  t.same(poll.responses['200'].content['application/json'].schema.properties.data.required, ['cursor', 'frames']);
  t.ok(poll.responses['401']);
});

t.test('gateway - SSE, long-poll and refused upgrades answer as any route: error envelope, CORS, HTTP metrics', async (t) => {
  const h = await startHarness(t);
  const origin = { origin: 'https://app.example' };
  const stream = await fetch(`${h.base}/v1/chat/stream`, { headers: origin });
  t.equal(stream.status, 401);
  t.match(await stream.json(), { success: false, error: { code: 'unauthorized', message: /missing token/ } });
  t.equal(stream.headers.get('www-authenticate'), 'Bearer');
  t.equal(stream.headers.get('access-control-allow-origin'), '*');

  const poll = await fetch(`${h.base}/v1/chat/poll?cursor=not+a+cursor`, { headers: { ...origin, authorization: `Bearer ${await h.token('ann')}` } });
  t.equal(poll.status, 400);
  t.match(await poll.json(), { success: false, error: { code: 'bad_request', message: /cursor/ } });
  t.equal(poll.headers.get('access-control-allow-origin'), '*');

  const opened = await fetch(`${h.base}/v1/chat/poll?timeout=0&token=${await h.token('ann')}`);
  t.equal(opened.status, 200, 'the token may come in the query');
  t.match(await opened.json(), { success: true, data: { frames: [{ type: 'welcome', userId: 'ann' }] } });

  const refused = await new Promise<{ status: number; body: string; auth: string | undefined }>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${h.port}/chat?token=forged`);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += String(c); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, auth: res.headers['www-authenticate'] as string | undefined }));
    });
    ws.on('open', () => reject(new Error('a forged token was let in')));
    ws.on('error', () => {});
  });
  t.equal(refused.status, 401);
  t.match(JSON.parse(refused.body), { success: false, error: { code: 'unauthorized' } }, 'a refused upgrade gets the same envelope');
  t.equal(refused.auth, 'Bearer');

  const metrics = await (await fetch(`${h.base}/metrics`)).text();
  t.match(metrics, /chat_http_requests_total\{route="\/v1\/chat\/stream",status="401"\} [1-9]/, 'SSE requests are counted');
  t.match(metrics, /chat_http_requests_total\{route="\/v1\/chat\/poll",status="400"\} [1-9]/, 'and long-polls');
  t.match(metrics, /chat_http_requests_total\{route="\/v1\/chat\/poll",status="200"\} [1-9]/);
});

t.test('gateway - a room held by a WebSocket and an SSE stream is one bus subscription, and both get its frames', async (t) => {
  const h = await startHarness(t);
  const ann = await h.principal('ann');
  const room = await h.rooms.create(ann, { name: 'Both ways', type: 'public' });
  await h.rooms.join(await h.principal('bob'), room.roomId);

  const ws = new WebSocket(`ws://127.0.0.1:${h.port}/chat?token=${await h.token('ann')}`);
  const viaWs: any[] = [];
  ws.on('message', (data) => viaWs.push(JSON.parse(String(data))));
  t.teardown(() => ws.close());
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const res = await fetch(`${h.base}/v1/chat/stream?token=${await h.token('bob')}`, { signal: abort.signal });
  t.equal(res.status, 200);
  let text = '';
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of res.body!) text += decoder.decode(chunk as Uint8Array, { stream: true });
  })().catch(() => {});
  const until = async (ok: () => boolean) => { for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10)); };
  await until(() => viaWs.some((f) => f.type === 'welcome') && text.includes('"welcome"'));

  t.equal(h.live.get(subjects.roomEvents(room.roomId)), 1, 'one subscription to the room\'s events');
  t.equal(h.live.get(subjects.roomControl(room.roomId)), 1, 'and one to its control subject');
  const sent = await h.messages.send(ann, { roomId: room.roomId, content: 'to both' });
  await until(() => viaWs.some((f) => f.type === 'new_message') && text.includes('to both'));
  t.match(viaWs.find((f) => f.type === 'new_message'), { message: { messageId: sent.message.messageId, content: 'to both' } });
  t.match(text, new RegExp(`id: \\*:${sent.message.messageId}\\ndata: \\{"type":"new_message"`), 'the SSE event moves the resume id');

  ws.close();
  abort.abort();
  await until(() => h.live.get(subjects.roomEvents(room.roomId)) === 0);
  t.equal(h.live.get(subjects.roomEvents(room.roomId)), 0, 'the last connection gone, the room is unsubscribed');
});

t.test('gateway - drain: reconnect frame, then the ack of a send in flight is written before the 1001 close', async (t) => {
  const h = await startHarness(t);
  const ann = await h.principal('ann');
  const room = await h.rooms.create(ann, { name: 'Drained', type: 'public' });
  const ws = new WebSocket(`ws://127.0.0.1:${h.port}/chat?token=${await h.token('ann')}`);
  const frames: any[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(String(data))));
  const closed = new Promise<{ code: number; reason: string; after: number }>((r) => ws.once('close', (code, reason) => r({ code, reason: String(reason), after: frames.length })));
  const until = async (ok: () => boolean) => { for (let i = 0; i < 300 && !ok(); i++) await new Promise((r) => setTimeout(r, 10)); };
  await until(() => frames.some((f) => f.type === 'welcome'));

  const release = h.holdPublishes();
  ws.send(JSON.stringify({ type: 'send_message', roomId: room.roomId, content: 'in flight', clientMsgId: 'c1', ref: 's1' }));
  await until(() => h.publishes.started === 1);
  const drained = h.gateway.drain(0);
  await until(() => frames.some((f) => f.type === 'reconnect'));
  t.match(frames.find((f) => f.type === 'reconnect'), { type: 'reconnect', reason: 'draining', retryAfterMs: 0 });
  const ready = await fetch(`${h.base}/health/ready`);
  t.equal(ready.status, 503, 'not ready while draining');
  t.match(await ready.json(), { checks: { draining: 'draining' } });
  await new Promise((r) => setTimeout(r, 100));
  t.equal(ws.readyState, WebSocket.OPEN, 'the grace is over, but the socket waits for the answer it is owed');

  release();
  const close = await closed;
  await drained;
  t.same({ code: close.code, reason: close.reason }, { code: 1001, reason: 'server draining' });
  const ack = frames.findIndex((f) => f.type === 'ack' && f.ref === 's1');
  t.ok(ack >= 0 && ack < close.after, 'the ack came before the close');
  t.match(frames[ack], { action: 'send_message', duplicate: false });
});
