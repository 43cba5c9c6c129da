import t from 'tap';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { TestClient } from './support/ws-client.ts';
import { eventually, restClient } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { ChatClient, type ServerFrame } from '../shared/client/index.ts';

/**
 * Graceful drain of `chat all` (a real process): on SIGTERM it turns not ready before anything
 * else, tells its sockets to reconnect and keeps serving them through DRAIN_GRACE_MS, refuses new
 * ones, then closes those that stayed (raw clients that ignore the frame) with 1001 and exits 0.
 */
const GRACE_MS = 5000;

let srv: ChatProcess | undefined;
const clients: TestClient[] = [];
const sdks: ChatClient[] = [];

t.teardown(async () => {
  for (const c of sdks) c.close();
  await Promise.all(clients.map((c) => c.close()));
  await srv?.kill();
  if (srv) removeDir(srv.dataDir);
});

/** `/health/ready` statuses in the order they were answered, each with when it came. */
function watchReadiness(base: string): { seen: Array<{ status: number; at: number; body: string }>; stop(): void } {
  const seen: Array<{ status: number; at: number; body: string }> = [];
  let stopped = false;
  void (async () => {
    while (!stopped) {
      try {
        const res = await fetch(`${base}/health/ready`);
        seen.push({ status: res.status, at: Date.now(), body: await res.text() });
      } catch {
        return; // the listener is gone: the process stopped listening
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return { seen, stop: () => { stopped = true; } };
}

t.test('drain - chat all on SIGTERM: not ready, reconnect frame (WebSocket, SSE, long-poll), still serving, new sockets refused, then 1001 and exit 0', async (t) => {
  srv = await startChatProcess({ env: { DRAIN_GRACE_MS: String(GRACE_MS), PERSIST_INTERVAL_MS: '20' } });
  const token = await devToken('dora');
  const created = await restClient(srv.http, token)('POST', '/v1/chat/rooms', { name: 'Drain', type: 'public' });
  t.equal(created.status, 201);
  const roomId = created.body.data.roomId as string;

  const json = await TestClient.connect(`${srv.ws}/chat`, { token, format: 'json' });
  const msgpack = await TestClient.connect(`${srv.ws}/chat`, { token, format: 'msgpack' });
  clients.push(json, msgpack);
  for (const c of [json, msgpack]) await c.next((f) => f.type === 'welcome');
  // SDK clients over SSE and long-polling: they get the frame too, and leave
  const fallback = await Promise.all((['sse', 'poll'] as const).map(async (kind) => {
    const c = new ChatClient({ url: srv!.http, token, WebSocket: null, transports: [kind], pollHoldSeconds: 20 });
    sdks.push(c);
    const got = { kind, reconnect: undefined as ServerFrame | undefined, disconnected: undefined as number | undefined };
    c.on('frame', (f) => { if (f.type === 'reconnect') got.reconnect = f; });
    c.on('disconnected', (d) => { got.disconnected ??= d.code; });
    await c.connect();
    return got;
  }));
  // a raw long-poll held by the server when the drain begins is answered at once
  const opened = await fetch(`${srv.http}/v1/chat/poll`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json()) as { data: { cursor: string } };
  const held = fetch(`${srv.http}/v1/chat/poll?timeout=25&cursor=${opened.data.cursor}`, { headers: { authorization: `Bearer ${token}` } })
    .then(async (r) => ({ status: r.status, at: Date.now(), body: await r.json() as { data: { frames: ServerFrame[] } } }));
  await new Promise((r) => setTimeout(r, 200)); // the poll is held by now

  const closedAt = new Map<TestClient, number>();
  for (const c of [json, msgpack]) c.ws.once('close', () => closedAt.set(c, Date.now()));

  const ready = watchReadiness(srv.http);
  t.teardown(() => ready.stop());
  const exited = srv.exited;
  const signalledAt = Date.now();
  srv.child.kill('SIGTERM');

  for (const c of [json, msgpack]) {
    const frame = await c.next((f) => f.type === 'reconnect', 10_000);
    t.equal(frame.reason, 'draining', `${c.format}: the reconnect frame says why`);
    t.ok(typeof frame.retryAfterMs === 'number' && frame.retryAfterMs >= 0 && frame.retryAfterMs < GRACE_MS, `${c.format}: with a delay to spread reconnects (${frame.retryAfterMs} ms)`);
  }
  t.equal(json.closed, undefined, 'the socket stays open after the reconnect frame');
  const reply = await json.request({ type: 'send_message', roomId, content: 'during the grace', clientMsgId: 'grace-1' });
  t.equal(reply.type, 'ack', 'and a send during the grace is still acknowledged');
  const heard = await msgpack.next((f) => f.type === 'new_message' && f.message.content === 'during the grace');
  t.equal(heard.message.messageId, reply.messageId, 'and delivered to the room');
  const refused = await TestClient.connect(`${srv.ws}/chat`, { token }).then(() => undefined, (err: { status?: number }) => err.status);
  t.equal(refused, 503, 'a new socket is refused with 503 while draining');

  const answered = await held;
  t.equal(answered.status, 200, 'a held long-poll is answered');
  t.match(answered.body.data.frames, [{ type: 'reconnect', reason: 'draining' }], 'with the reconnect frame');
  t.ok(answered.at - signalledAt < GRACE_MS, 'before the grace is over');
  for (const f of fallback) {
    await eventually(async () => f.disconnected !== undefined, 10_000);
    t.match(f.reconnect, { type: 'reconnect', reason: 'draining' }, `SDK over ${f.kind}: got the reconnect frame`);
    t.equal(f.disconnected, 1001, `SDK over ${f.kind}: left the draining server`);
  }

  const [code] = await Promise.all([exited, ...[json, msgpack].map((c) => new Promise((r) => (c.closed ? r(undefined) : c.ws.once('close', r))))]);
  ready.stop();
  t.equal(code, 0, 'the process exits 0');
  const exitMs = Date.now() - signalledAt;
  t.ok(exitMs < GRACE_MS + 10_000, `within the grace and the shutdown margin (${exitMs} ms)`);
  for (const c of [json, msgpack]) {
    t.same(c.closed, { code: 1001, reason: 'server draining' }, `${c.format}: a socket that stayed is closed with 1001 after the grace`);
  }

  const notReady = ready.seen.find((s) => s.status === 503);
  const transitions = ready.seen.map((s) => s.status).filter((s, i, all) => i === 0 || all[i - 1] !== s);
  t.ok(notReady, `/health/ready answered 503 while draining (${ready.seen.length} probes: ${transitions.join(' -> ')})`);
  t.match(JSON.parse(notReady!.body), { status: 'not_ready', checks: { draining: /shutting down|draining/ } }, 'naming the drain');
  const firstClose = Math.min(...closedAt.values());
  t.ok(notReady!.at < firstClose, '503 came before the sockets were closed');
  t.notOk(ready.seen.some((s) => s.status === 200 && s.at > notReady!.at), 'and it never turned ready again');

  // the message sent during the grace was written before the exit
  srv = await startChatProcess({ env: { PERSIST_INTERVAL_MS: '20' }, dataDir: srv.dataDir });
  const history = await restClient(srv.http, token)('GET', `/v1/chat/rooms/${roomId}/messages?limit=10`);
  t.same(history.body.data.messages.map((m: { messageId: string }) => m.messageId), [reply.messageId], 'the message acked during the grace is stored');
});
