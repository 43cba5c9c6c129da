import t from 'tap';
import WebSocket from 'ws';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { createServer } from 'node:net';
import { eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { ChatClient, type ChatClientOptions, type FrameOf } from '../shared/client/index.ts';

/**
 * The client SDK against `chat all` as a real process over real sockets: connections cut by the
 * client's socket dying and by the server restarting; after each, the application sees every
 * message exactly once and what it sent while cut off is delivered once.
 */
const ENV = { PERSIST_INTERVAL_MS: '20', RATE_LIMIT_PER_SECOND: '200', RATE_LIMIT_BURST: '400' };

/** `ws`'s WebSocket, keeping each socket so a test can cut it. */
const sockets: WebSocket[] = [];
class TrackedWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols);
    sockets.push(this);
  }
}

let srv: ChatProcess;
const clients: ChatClient[] = [];

async function client(user: string, extra: Partial<ChatClientOptions> = {}): Promise<ChatClient> {
  const c = new ChatClient({ url: srv.http, token: await devToken(user), WebSocket: TrackedWebSocket as never, ...extra });
  clients.push(c);
  return c;
}

/** Every `message` event of a room, in arrival order. */
function collect(c: ChatClient, roomId: string): FrameOf<'new_message'>[] {
  const seen: FrameOf<'new_message'>[] = [];
  c.on('message', (f) => { if (f.roomId === roomId) seen.push(f); });
  return seen;
}

function counts(frames: FrameOf<'new_message'>[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const f of frames) m.set(f.message.content, (m.get(f.message.content) ?? 0) + 1);
  return m;
}

async function history(c: ChatClient, roomId: string): Promise<string[]> {
  const out: string[] = [];
  let before: string | undefined;
  for (;;) {
    const page = await c.rest.history(roomId, { limit: 100, ...(before ? { before } : {}) });
    out.push(...page.messages.map((m) => m.content));
    if (!page.pagination.hasMore || !page.pagination.before) return out;
    before = page.pagination.before;
  }
}

/** A port nobody listens on now, so a restarted server can come back where its clients look for it. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.before(async () => {
  srv = await startChatProcess({ env: { ...ENV, PORT: String(await freePort()) } });
});

t.teardown(async () => {
  for (const c of clients) c.close();
  await srv?.kill();
  if (srv) removeDir(srv.dataDir);
});

t.test('sdk - a client whose socket dies resumes, sees every message once, and delivers what it sent meanwhile once', async (t) => {
  const alice = await client('alice', { format: 'msgpack' });
  // A fixed, slow first retry leaves a window in which the others keep talking.
  const bob = await client('bob', { reconnect: { initialDelayMs: 600, jitter: 0 } });
  await alice.connect();
  const room = await alice.rest.createRoom({ name: 'Cut', type: 'public' });
  await bob.connect();
  await bob.join(room.roomId);
  const seen = collect(bob, room.roomId);

  for (let i = 1; i <= 5; i++) await alice.send(room.roomId, `before ${i}`);
  await eventually(async () => seen.length >= 5);

  const disconnected = new Promise((r) => bob.once('disconnected', r));
  const bobSocket = sockets.at(-1)!;
  (bobSocket as unknown as { _socket: { destroy(): void } })._socket.destroy();
  await disconnected;
  t.not(bob.state, 'open', 'bob noticed the cut');

  const whileCut: Promise<unknown>[] = [];
  for (let i = 1; i <= 3; i++) whileCut.push(bob.send(room.roomId, `bob while cut ${i}`));
  const sentWhileBobWasAway: string[] = [];
  for (let i = 1; i <= 10; i++) {
    await alice.send(room.roomId, `during ${i}`);
    if (bob.state !== 'open') sentWhileBobWasAway.push(`during ${i}`);
  }
  t.ok(sentWhileBobWasAway.length >= 5, `${sentWhileBobWasAway.length} messages were sent while bob was cut off`);
  await Promise.all(whileCut);
  t.equal(bob.state, 'open', 'bob is back');
  for (let i = 1; i <= 5; i++) await alice.send(room.roomId, `after ${i}`);

  const expected = [
    ...[1, 2, 3, 4, 5].map((i) => `before ${i}`),
    ...Array.from({ length: 10 }, (_, i) => `during ${i + 1}`),
    ...[1, 2, 3].map((i) => `bob while cut ${i}`),
    ...[1, 2, 3, 4, 5].map((i) => `after ${i}`),
  ];
  await eventually(async () => expected.every((c) => counts(seen).has(c)), 10_000);
  await sleep(300); // a late duplicate would arrive now
  const n = counts(seen);
  t.same(expected.filter((c) => n.get(c) !== 1), [], 'every message reached bob exactly once');
  t.equal(seen.length, expected.length, 'and nothing else');
  const alone = seen.filter((f) => f.message.content.startsWith('during')).map((f) => f.message.content);
  t.same(alone, expected.filter((c) => c.startsWith('during')), "alice's messages in the order she sent them");

  const stored = await eventually(async () => {
    const h = await history(alice, room.roomId);
    return h.filter((c) => c.startsWith('bob while cut')).length >= 3 ? h : undefined;
  });
  await sleep(200);
  const again = await history(alice, room.roomId);
  for (let i = 1; i <= 3; i++) t.equal(again.filter((c) => c === `bob while cut ${i}`).length, 1, `"bob while cut ${i}" is stored once`);
  t.equal(stored.length, again.length);
});

t.test('sdk - after SIGTERM and a restart on the same port, clients resume; sends made while down are delivered once', async (t) => {
  const alice = await client('alice');
  const bob = await client('bob', { format: 'msgpack' });
  await alice.connect();
  const room = await alice.rest.createRoom({ name: 'Restart', type: 'public' });
  await bob.connect();
  await bob.join(room.roomId);
  const seen = collect(bob, room.roomId);
  const aliceSeen = collect(alice, room.roomId);
  for (let i = 1; i <= 3; i++) await alice.send(room.roomId, `up ${i}`);
  await eventually(async () => seen.length >= 3);
  t.equal(sockets.at(-1)!.protocol, 'chat.v1.msgpack', 'bob receives msgpack');

  const bobDown = new Promise<{ code: number }>((r) => bob.once('disconnected', r));
  const aliceDown = new Promise((r) => alice.once('disconnected', r));
  t.equal(await srv.stop(), 0, 'the server stops cleanly');
  t.equal((await bobDown).code, 1001, 'sockets are closed with 1001 (going away)');
  await aliceDown;

  // Sent while there is no server at all: queued, delivered after the restart.
  const queued = [1, 2, 3].map((i) => bob.send(room.roomId, `bob while down ${i}`));
  const aliceQueued = alice.send(room.roomId, 'alice while down');
  await sleep(500);
  t.not(bob.state, 'open');

  srv = await startChatProcess({ env: { ...ENV, PORT: String(srv.port) }, dataDir: srv.dataDir });
  const acks = await Promise.all(queued);
  await aliceQueued;
  t.equal(bob.transportKind, 'websocket', 'a server that was down is waited for, not fallen back from');
  t.ok(acks.every((a) => a.duplicate === false), 'each queued send made one message');
  for (let i = 1; i <= 3; i++) await alice.send(room.roomId, `back ${i}`);

  const expected = ['up 1', 'up 2', 'up 3', 'bob while down 1', 'bob while down 2', 'bob while down 3', 'alice while down', 'back 1', 'back 2', 'back 3'];
  for (const [who, frames] of [['bob', seen], ['alice', aliceSeen]] as const) {
    await eventually(async () => expected.every((c) => counts(frames).has(c)), 10_000);
  }
  await sleep(300);
  for (const [who, frames] of [['bob', seen], ['alice', aliceSeen]] as const) {
    const n = counts(frames);
    t.same(expected.filter((c) => n.get(c) !== 1), [], `${who} saw every message exactly once`);
  }
  const bobOrder = seen.filter((f) => f.message.content.startsWith('bob while down')).map((f) => f.message.content);
  t.same(bobOrder, ['bob while down 1', 'bob while down 2', 'bob while down 3'], 'queued sends keep their order');

  await eventually(async () => (await history(alice, room.roomId)).length >= expected.length);
  await sleep(200);
  const stored = await history(alice, room.roomId);
  t.same(expected.filter((c) => stored.filter((s) => s === c).length !== 1), [], 'history holds each message exactly once');
});

t.test('sdk - falls back to SSE + REST when no WebSocket opens, while the server answers over HTTP', async (t) => {
  class BlockedWebSocket {
    constructor() {
      throw new Error('WebSocket blocked by a proxy');
    }
  }
  const carol = await client('carol', { WebSocket: BlockedWebSocket as never, fallbackAfterFailures: 2, reconnect: { initialDelayMs: 20 } });
  const fellBack = new Promise<{ from: string; to: string }>((r) => carol.once('fallback', r));
  const welcome = await carol.connect();
  t.same(await fellBack, { from: 'websocket', to: 'sse' });
  t.equal(carol.transportKind, 'sse');
  t.equal(welcome.userId, 'carol');

  const alice = await client('alice');
  await alice.connect();
  const room = await alice.rest.createRoom({ name: 'Fallback', type: 'public' });
  await carol.join(room.roomId);
  const seen = collect(carol, room.roomId);
  const aliceSeen = collect(alice, room.roomId);
  await alice.send(room.roomId, 'to carol over SSE');
  const sent = await carol.send(room.roomId, 'from carol over REST');
  t.match(sent, { roomId: room.roomId, duplicate: false });
  await eventually(async () => seen.length >= 2 && aliceSeen.length >= 2);
  t.same(seen.map((f) => f.message.content), ['to carol over SSE', 'from carol over REST']);
  t.same(aliceSeen.map((f) => f.message.content), ['to carol over SSE', 'from carol over REST']);

  const noWs = await client('dave', { WebSocket: null });
  await noWs.connect();
  t.equal(noWs.transportKind, 'sse', 'without a WebSocket constructor the client starts on SSE');
});

t.test('sdk - falls back from SSE to long-polling when event streams cannot be read', async (t) => {
  // A proxy that refuses event streams but passes ordinary requests.
  const noStreams = (async (url: string, init?: RequestInit) => {
    if (url.includes('/v1/chat/stream')) throw new TypeError('stream blocked by a proxy');
    return fetch(url, init);
  }) as never;
  const erin = await client('erin', { WebSocket: null, fetch: noStreams, fallbackAfterFailures: 2, reconnect: { initialDelayMs: 20 }, pollHoldSeconds: 2 });
  const fellBack = new Promise<{ from: string; to: string }>((r) => erin.once('fallback', r));
  await erin.connect();
  t.same(await fellBack, { from: 'sse', to: 'poll' });
  t.equal(erin.transportKind, 'poll');

  const alice = await client('alice');
  await alice.connect();
  const room = await alice.rest.createRoom({ name: 'Polling', type: 'public' });
  await erin.join(room.roomId);
  const seen = collect(erin, room.roomId);
  await alice.send(room.roomId, 'to erin by long-poll');
  await erin.send(room.roomId, 'from erin over REST');
  await eventually(async () => seen.length >= 2);
  t.same(seen.map((f) => f.message.content), ['to erin by long-poll', 'from erin over REST']);
});

t.test('sdk - a refused token stops the client with unauthorized', async (t) => {
  const mallory = await client('mallory', { token: 'not-a-token', transports: ['sse'] });
  const error = new Promise<{ code: string }>((r) => mallory.once('error', r));
  await t.rejects(mallory.connect(), { code: 'unauthorized' });
  t.equal((await error).code, 'unauthorized');
  t.equal(mallory.state, 'closed');
});
