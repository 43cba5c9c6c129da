import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsServer, type NatsServer } from './support/nats-server.ts';
import { startRedisServer, type RedisServer } from './support/redis-server.ts';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { TestClient, type Frame } from './support/ws-client.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * Presence, unread counts and rate limits must give the same answer on every gateway: two real
 * gateways, a persister and an api on a private nats-server and redis-server.
 */
const PRESENCE_TTL = 3;
const RATE = 5;
const BURST = 10;

let nats: NatsServer;
let redis: RedisServer;
let dataDir: string;
const procs: ChatProcess[] = [];
const clients: TestClient[] = [];
let gw1: ChatProcess, gw2: ChatProcess, api: ChatProcess;

function env(nodeId: number): Record<string, string> {
  return {
    NATS_URL: nats.url, REDIS_URL: redis.url, NODE_ID: String(nodeId), PRESENCE_TTL: String(PRESENCE_TTL),
    RATE_LIMIT_PER_SECOND: String(RATE), RATE_LIMIT_BURST: String(BURST), PERSIST_INTERVAL_MS: '50',
    NATS_STREAM: 'CHAT_PRESENCE_E2E',
  };
}

async function start(command: string, nodeId: number): Promise<ChatProcess> {
  const p = await startChatProcess({ command, env: env(nodeId), dataDir });
  procs.push(p);
  return p;
}

async function connect(gw: ChatProcess, user: string): Promise<TestClient> {
  const c = await TestClient.connect(`${gw.ws}/chat`, { token: await devToken(user) });
  clients.push(c);
  await c.next((f) => f.type === 'welcome');
  return c;
}

t.before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'chat-presence-e2e-'));
  [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
  // The api creates the SQLite schema first, so the other processes open a ready file.
  api = await start('api', 4);
  [gw1, gw2] = await Promise.all([start('gateway', 1), start('gateway', 2), start('persister', 3)]);
});

t.teardown(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(procs.map((p) => p.kill()));
  await Promise.all([nats?.destroy(), redis?.stop()]);
  if (dataDir) removeDir(dataDir);
});

const presenceOf = async (rest: ReturnType<typeof restClient>, userId: string) => {
  const r = await rest('GET', `/v1/chat/presence?userIds=${userId}`);
  if (r.status !== 200) throw new Error(`presence: ${r.status} ${JSON.stringify(r.body)}`);
  const list = (r.body.data.presence ?? r.body.data) as Array<{ userId: string; status: string; connections: number }>;
  return list.find((p) => p.userId === userId)!;
};

t.test('presence e2e - a user on both gateways stays online until both sockets close', async (t) => {
  const rest = restClient(api.http, await devToken('observer'));
  const a1 = await connect(gw1, 'pat');
  const a2 = await connect(gw2, 'pat');
  const both = await eventually(async () => {
    const p = await presenceOf(rest, 'pat');
    return p.status === 'online' && p.connections === 2 ? p : undefined;
  });
  t.equal(both.connections, 2, 'one connection per gateway, one presence');
  await a1.close();
  await eventually(async () => (await presenceOf(rest, 'pat')).connections === 1);
  t.equal((await presenceOf(rest, 'pat')).status, 'online', 'still online through the other gateway');
  await a2.close();
  const gone = await eventually(async () => {
    const p = await presenceOf(rest, 'pat');
    return p.status === 'offline' ? p : undefined;
  });
  t.equal(gone.connections, 0);
});

t.test('presence e2e - a killed gateway\'s users go offline within PRESENCE_TTL', async (t) => {
  const rest = restClient(api.http, await devToken('observer'));
  const extra = await start('gateway', 5);
  await connect(extra, 'quinn');
  await eventually(async () => (await presenceOf(rest, 'quinn')).status === 'online');
  await extra.kill();
  const killedAt = Date.now();
  await eventually(async () => (await presenceOf(rest, 'quinn')).status === 'offline', (PRESENCE_TTL + 3) * 1000, 200);
  const took = Date.now() - killedAt;
  t.ok(took <= (PRESENCE_TTL + 1) * 1000, `offline ${took} ms after the kill (TTL ${PRESENCE_TTL} s)`);
});

let roomId: string;

t.test('presence e2e - one user sending through two gateways at once is limited in total', async (t) => {
  const owner = restClient(api.http, await devToken('rita'));
  const created = await owner('POST', '/v1/chat/rooms', { name: 'limits', type: 'public' });
  t.equal(created.status, 201);
  roomId = created.body.data.roomId;
  const s1 = await connect(gw1, 'rita');
  const s2 = await connect(gw2, 'rita');
  const started = Date.now();
  const replies = await Promise.all([s1, s2].flatMap((c, k) =>
    Array.from({ length: 20 }, (_, i) => c.request({ type: 'send_message', roomId, content: `burst ${k}-${i}` }))));
  const elapsedSec = (Date.now() - started) / 1000;
  const acked = replies.filter((r) => r.type === 'ack').length;
  const limited = replies.filter((r) => r.type === 'error' && r.code === 'rate_limited');
  const allowed = BURST + Math.ceil(RATE * elapsedSec);
  t.ok(acked >= BURST - 1 && acked <= allowed, `${acked} of 40 accepted across both gateways (bucket ${BURST}, +${RATE}/s over ${elapsedSec.toFixed(2)} s: at most ${allowed})`);
  t.equal(acked + limited.length, 40, 'every other send was refused as rate_limited');
  t.ok(limited.some((r) => replies.indexOf(r) < 20) && limited.some((r) => replies.indexOf(r) >= 20), 'both gateways refused some');
  t.ok(limited.every((r) => r.retryAfterMs > 0), 'with a retry hint');
});

t.test('presence e2e - unread counts match what a reader missed, on any gateway', async (t) => {
  const writer = await connect(gw1, 'sam');
  const reader = restClient(api.http, await devToken('tess'));
  await writer.request({ type: 'join_room', roomId });
  t.equal((await reader('POST', `/v1/chat/rooms/${roomId}/join`)).status, 200);
  const unread = async () => (await reader('GET', '/v1/chat/rooms?scope=joined')).body.data.rooms.find((r: any) => r.roomId === roomId).unreadCount as number;
  t.equal(await unread(), 0, 'nothing unread on joining');
  const sent: Frame[] = [];
  for (let i = 0; i < 7; i++) {
    sent.push(await writer.request({ type: 'send_message', roomId, content: `missed ${i}` }));
    await new Promise((r) => setTimeout(r, 1000 / RATE + 20));
  }
  t.ok(sent.every((f) => f.type === 'ack'));
  t.equal(await eventually(async () => ((await unread()) === 7 ? 7 : undefined)), 7, 'seven missed');
  const viaGw2 = await connect(gw2, 'tess');
  const read = await viaGw2.request({ type: 'mark_read', roomId, messageId: sent[4]!.messageId });
  t.equal(read.type, 'ack');
  t.equal(await unread(), 2, 'reading the fifth leaves two');
  const last = await viaGw2.request({ type: 'mark_read', roomId, messageId: sent[6]!.messageId });
  t.equal(last.type, 'ack');
  // a second mark within COALESCE_READ_MS of the first is held and stored when the window ends
  t.equal(await eventually(async () => ((await unread()) === 0 ? 'none' : undefined)), 'none', 'reading the last leaves none');
});

t.test('presence e2e - a Redis restart mid-chat loses no message', async (t) => {
  const sender = await connect(gw1, 'uma');
  const listener = await connect(gw2, 'vic');
  await sender.request({ type: 'join_room', roomId });
  await listener.request({ type: 'join_room', roomId });
  const ids: string[] = [];
  const send = async (text: string) => {
    const r = await sender.request({ type: 'send_message', roomId, content: text });
    t.equal(r.type, 'ack', `${text} acked`);
    ids.push(r.messageId);
    await listener.next((f) => f.type === 'new_message' && f.message.content === text);
    await new Promise((res) => setTimeout(res, 1000 / RATE + 20));
  };
  await send('before the outage');
  await redis.kill();
  await send('while Redis is down 1');
  await send('while Redis is down 2');
  await redis.restart();
  await send('after Redis is back');
  const rest = restClient(api.http, await devToken('uma'));
  const stored = await eventually(async () => {
    const r = await rest('GET', `/v1/chat/rooms/${roomId}/messages?limit=100`);
    const have = new Set(r.body.data.messages.map((m: any) => m.messageId));
    return ids.every((id) => have.has(id)) ? have : undefined;
  }, 10_000);
  t.ok(ids.every((id) => stored.has(id)), 'all four messages are in history');
  const metrics = await (await fetch(`${gw1.http}/metrics`)).text();
  t.match(metrics, /chat_presence_degraded_total\{op="[a-zA-Z]+"\} [1-9]/, 'the outage was counted');
});
