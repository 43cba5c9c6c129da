import t from 'tap';
import WebSocket from 'ws';
import { request as httpRequest } from 'node:http';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { eventually, restClient } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { ChatClient, SseParser, type ChatClientOptions, type ServerFrame } from '../shared/client/index.ts';

/**
 * SSE (`/v1/chat/stream`) and long-polling (`/v1/chat/poll`) against `chat all` as a real process:
 * they carry the same frames as the WebSocket, resume without a gap, and a slow SSE reader is cut off.
 */
const ENV = { PERSIST_INTERVAL_MS: '20', RATE_LIMIT_PER_SECOND: '2000', RATE_LIMIT_BURST: '4000', MAX_BACKPRESSURE_BYTES: '65536' };

let srv: ChatProcess;
const clients: ChatClient[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function client(user: string, extra: Partial<ChatClientOptions> = {}): Promise<ChatClient> {
  const c = new ChatClient({ url: srv.http, token: await devToken(user), WebSocket: WebSocket as never, ...extra });
  clients.push(c);
  await c.connect();
  return c;
}

/** A raw SSE reader: every event with its id. */
async function openStream(token: string, headers: Record<string, string> = {}, query = '') {
  const abort = new AbortController();
  const res = await fetch(`${srv.http}/v1/chat/stream?token=${encodeURIComponent(token)}${query}`, { headers, signal: abort.signal });
  const events: Array<{ id: string | undefined; frame: ServerFrame }> = [];
  let lastId = '';
  const parser = new SseParser((ev) => {
    if (ev.id !== undefined) lastId = ev.id;
    events.push({ id: ev.id, frame: JSON.parse(ev.data) as ServerFrame });
  });
  const reading = (async () => {
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.push(decoder.decode(value, { stream: true }));
    }
  })().catch(() => { /* aborted by the test */ });
  return {
    res, events, reading,
    lastId: () => lastId,
    close: () => abort.abort(),
    next: (pred: (f: ServerFrame) => boolean) => eventually(async () => events.find((e) => pred(e.frame)), 5000, 10),
  };
}

async function poll(token: string, query: string): Promise<{ status: number; cursor: string; frames: ServerFrame[] }> {
  const res = await fetch(`${srv.http}/v1/chat/poll?${query}`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { data?: { cursor: string; frames: ServerFrame[] } };
  return { status: res.status, cursor: body.data?.cursor ?? '', frames: body.data?.frames ?? [] };
}

t.before(async () => {
  srv = await startChatProcess({ env: ENV });
});

t.teardown(async () => {
  for (const c of clients) c.close();
  await srv?.kill();
  if (srv) removeDir(srv.dataDir);
});

/** The durable frames a client delivered for a room, as comparable records. */
function durable(c: ChatClient, roomId: string): ServerFrame[] {
  const out: ServerFrame[] = [];
  c.on('frame', (f) => {
    if ((f as { roomId?: string }).roomId === roomId && 'seq' in f) out.push(f);
  });
  return out;
}

t.test('fallback - SSE and long-poll clients receive the same frames as a WebSocket client in the same room', async (t) => {
  const alice = await client('alice');
  const room = await alice.rest.createRoom({ name: 'Three ways', type: 'public' });
  const viaWs = await client('dan');
  const viaSse = await client('dan', { transports: ['sse'] });
  const viaPoll = await client('dan', { transports: ['poll'] });
  t.same([viaWs.transportKind, viaSse.transportKind, viaPoll.transportKind], ['websocket', 'sse', 'poll']);
  await viaWs.join(room.roomId);
  // The other connections learn of the join from the server and start receiving the room.
  await eventually(async () => viaSse.rooms.includes(room.roomId) && viaPoll.rooms.includes(room.roomId));
  const got = { ws: durable(viaWs, room.roomId), sse: durable(viaSse, room.roomId), poll: durable(viaPoll, room.roomId) };

  const ids: string[] = [];
  for (let i = 0; i < 20; i++) ids.push((await alice.send(room.roomId, `message ${i}`)).messageId);
  await alice.react(room.roomId, ids[3]!, '🎉');
  await alice.edit(room.roomId, ids[4]!, 'message 4, edited');
  await viaSse.send(room.roomId, 'sent by dan over SSE + REST');
  await viaPoll.send(room.roomId, 'sent by dan over long-poll + REST');
  await viaSse.react(room.roomId, ids[5]!, '👀');

  const total = 20 + 2 + 2 + 1;
  await eventually(async () => Object.values(got).every((frames) => frames.length >= total), 10_000);
  await sleep(200);
  t.equal(got.ws.length, total, 'the WebSocket client got every durable frame once');
  t.same(got.sse, got.ws, 'the SSE client got the same frames, in the same order');
  t.same(got.poll, got.ws, 'the long-poll client got the same frames, in the same order');
  t.match(got.sse.find((f) => f.type === 'reaction_updated' && f.emoji === '🎉'), { messageId: ids[3], userId: 'alice', action: 'add' });
  t.match(got.poll.find((f) => f.type === 'message_updated'), { messageId: ids[4], content: 'message 4, edited' });
  const metricsText = await (await fetch(`${srv.http}/metrics`)).text();
  t.match(metricsText, /chat_fallback_connections\{transport="sse"\} [1-9]/, 'open SSE streams are counted');
  t.match(metricsText, /chat_fallback_connections\{transport="poll"\} [1-9]/, 'and long-poll sessions');

  // Ephemeral frames too: typing from the WebSocket reaches the fallback connections.
  const typing = new Promise((r) => viaPoll.once('typing', r));
  const typingSse = new Promise((r) => viaSse.once('typing', r));
  alice.typing(room.roomId, true);
  t.match(await typing, { roomId: room.roomId, user: { userId: 'alice' }, isTyping: true });
  t.match(await typingSse, { roomId: room.roomId, isTyping: true });
});

t.test('sse - raw stream: JSON frames, resume ids, and Last-Event-ID replays the gap', async (t) => {
  const token = await devToken('erin');
  const alice = await client('alice');
  const room = await alice.rest.createRoom({ name: 'Raw SSE', type: 'public' });
  await restClient(srv.http, token)('POST', `/v1/chat/rooms/${room.roomId}/join`);

  const first = await openStream(token);
  t.equal(first.res.status, 200);
  t.match(first.res.headers.get('content-type'), /^text\/event-stream/);
  const welcome = await first.next((f) => f.type === 'welcome');
  t.match(welcome, { frame: { userId: 'erin', format: 'json', rooms: [room.roomId] } });
  t.match(welcome.id, /^\*:\d+$/, 'the welcome carries a resume id');
  const live = await alice.send(room.roomId, 'live');
  const liveEvent = await first.next((f) => f.type === 'new_message' && f.message.content === 'live');
  t.equal(liveEvent.id, `*:${live.messageId}`, 'a new message moves the resume id to its id');
  first.close();
  await first.reading;

  const missed: string[] = [];
  for (let i = 0; i < 3; i++) missed.push((await alice.send(room.roomId, `missed ${i}`)).messageId);
  const second = await openStream(token, { 'last-event-id': first.lastId() });
  const resumed = await second.next((f) => f.type === 'resumed');
  t.match(resumed.frame, { type: 'resumed', rooms: [{ roomId: room.roomId, recovered: true }] });
  const before = second.events.slice(0, second.events.indexOf(resumed));
  const replayedIds = before.flatMap((e) => (e.frame.type === 'new_message' ? [e.frame.message.messageId] : []));
  for (const id of missed) t.ok(replayedIds.includes(id), `missed message ${id} was replayed before resumed`);
  t.ok(before.slice(1).every((e) => e.id === undefined), 'replayed events carry no id: a cut mid-replay resumes from the old position');
  t.match(resumed.id, /^\*:\d+$/);
  second.close();
});

t.test('sse - refusals come as the REST error envelope', async (t) => {
  const noToken = await fetch(`${srv.http}/v1/chat/stream`);
  t.equal(noToken.status, 401);
  t.match(await noToken.json(), { success: false, error: { code: 'unauthorized' } });
  const badResume = await fetch(`${srv.http}/v1/chat/stream?token=${await devToken('erin')}&resume=nonsense:12x`);
  t.equal(badResume.status, 400);
  t.match(await badResume.json(), { success: false, error: { code: 'bad_request' } });
  const alice = await client('alice');
  const priv = await alice.rest.createRoom({ name: 'Private', type: 'private' });
  const notYours = await fetch(`${srv.http}/v1/chat/stream?token=${await devToken('erin')}&rooms=${priv.roomId}`);
  t.equal(notYours.status, 404, 'a private room of others cannot be streamed');
});

t.test('poll - cursors acknowledge frames, polls wait for news, a lost session resumes from ?resume=', async (t) => {
  const token = await devToken('fay');
  const alice = await client('alice');
  const room = await alice.rest.createRoom({ name: 'Polling', type: 'public' });
  await restClient(srv.http, token)('POST', `/v1/chat/rooms/${room.roomId}/join`);

  const opened = await poll(token, 'timeout=5');
  t.equal(opened.status, 200);
  t.match(opened.frames[0], { type: 'welcome', userId: 'fay', rooms: [room.roomId] });
  t.match(opened.cursor, new RegExp(`^[A-Za-z0-9_-]+\\.${opened.frames.length}$`), 'the cursor numbers the frames received');

  const started = Date.now();
  const waiting = poll(token, `cursor=${opened.cursor}&timeout=5`);
  await sleep(300);
  const sent = await alice.send(room.roomId, 'news');
  const news = await waiting;
  t.ok(Date.now() - started >= 300, 'the poll waited for news');
  t.match(news.frames, [{ type: 'new_message', message: { messageId: sent.messageId, content: 'news' } }]);
  t.not(news.cursor, opened.cursor);

  const again = await poll(token, `cursor=${opened.cursor}&timeout=0`);
  t.match(again.frames, [{ type: 'new_message', message: { content: 'news' } }], 'an unacknowledged frame is sent again');
  const idle = await poll(token, `cursor=${news.cursor}&timeout=1`);
  t.same(idle.frames, [], 'acknowledged frames are not');
  t.equal(idle.cursor, news.cursor);

  const lost = await alice.send(room.roomId, 'while the session was lost');
  const fresh = await poll(token, `cursor=unknownsession.7&timeout=0&resume=${encodeURIComponent(`${room.roomId}:${sent.messageId}`)}`);
  t.equal(fresh.frames[0]?.type, 'welcome', 'an unknown cursor starts a new session');
  t.ok(fresh.frames.some((f) => f.type === 'new_message' && f.message.messageId === lost.messageId), 'replayed from the resume position');
  t.match(fresh.frames.at(-1), { type: 'resumed', rooms: [{ roomId: room.roomId, recovered: true }] });

  t.equal((await poll(token, 'cursor=not a cursor')).status, 400);
  t.equal((await fetch(`${srv.http}/v1/chat/poll`)).status, 401);
});

t.test('sse - a reader that stops reading is cut off instead of buffered without bound', async (t) => {
  const token = await devToken('gus');
  const alice = await client('alice');
  const room = await alice.rest.createRoom({ name: 'Firehose', type: 'public' });
  await restClient(srv.http, token)('POST', `/v1/chat/rooms/${room.roomId}/join`);
  let text = '';
  let response: import('node:http').IncomingMessage | undefined;
  const ended = new Promise<void>((resolve) => {
    const req = httpRequest(`${srv.http}/v1/chat/stream?token=${token}`, (res) => {
      response = res;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.once('data', () => res.pause()); // read the welcome, then nothing more
      res.once('close', () => resolve());
      res.once('error', () => resolve());
    });
    req.once('error', () => resolve());
    req.end();
  });
  await eventually(async () => response !== undefined);
  const content = 'x'.repeat(4900);
  const cutOff = () => srv.output.some((l) => l.includes('slow SSE consumer closed'));
  let sent = 0;
  while (sent < 3000 && !cutOff()) {
    await Promise.all(Array.from({ length: 20 }, () => alice.send(room.roomId, content)));
    sent += 20;
  }
  t.ok(cutOff(), `the server closed the stream as a slow consumer (after ${sent} messages of ~5 kB)`);
  for (let i = 0; i < 20; i++) await alice.send(room.roomId, `after the cut ${i}`);
  response!.resume();
  await ended;
  t.ok(text.length > 0 && !text.includes('after the cut'), 'nothing was written to it after the cut; what it had buffered ends the stream');
  t.match(await (await fetch(`${srv.http}/metrics`)).text(), /chat_slow_consumers_total\{transport="sse"\} [1-9]/, 'and counted it');
});
