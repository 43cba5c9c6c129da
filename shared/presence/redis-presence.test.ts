import t, { type Test } from 'tap';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import type { Counter } from 'prom-client';
import { startRedisServer, type RedisServer } from '../../test/support/redis-server.ts';
import { captureLog, LEVEL } from '../../test/support/log-capture.ts';
import { registry } from '../telemetry/metrics.ts';
import { runPresenceContract } from './presence.contract.ts';
import { createPresence, createRedisPresence, type Presence, type RedisPresenceOptions } from './index.ts';

const silent = pino({ level: 'silent' });
// generous: a busy CI machine must not turn a slow reply into a simulated outage
const COMMAND_TIMEOUT_MS = 5000;

const server = await startRedisServer();
t.teardown(() => server.stop());

runPresenceContract(t, {
  name: 'redis',
  open: (cfg) => createRedisPresence({ url: server.url, ...cfg }, silent, { keyPrefix: 'contract:', commandTimeoutMs: COMMAND_TIMEOUT_MS }),
});

async function open(t: Test, url: string, cfg: { ttlSec?: number; typingTimeoutMs?: number } = {}, opts: RedisPresenceOptions = {}, log = silent): Promise<Presence> {
  const p = await createRedisPresence({ url, ttlSec: cfg.ttlSec ?? 300, typingTimeoutMs: cfg.typingTimeoutMs ?? 3000 }, log, { commandTimeoutMs: COMMAND_TIMEOUT_MS, ...opts });
  t.teardown(() => p.close());
  return p;
}

function rawClient(t: Test, url: string): Redis {
  const raw = new Redis(url, { maxRetriesPerRequest: 1 });
  t.teardown(() => raw.disconnect());
  return raw;
}

async function startPrivateServer(t: Test): Promise<RedisServer> {
  const s = await startRedisServer();
  t.teardown(() => s.stop());
  return s;
}

async function degradedCalls(): Promise<number> {
  const metric = registry.getSingleMetric('chat_presence_degraded_total') as Counter | undefined;
  if (metric === undefined) return Number.NaN;
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}

/** Runs `fn`, asserting that it neither throws nor takes a second. */
async function quick<T>(t: Test, what: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const value = await fn();
  const ms = performance.now() - start;
  t.ok(ms < 1000, `${what} answered in ${ms.toFixed(0)} ms`);
  return value;
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function uid(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

t.test('presence - redis: two gateways sharing Redis see one presence', async (t) => {
  const a = await open(t, server.url);
  const b = await open(t, server.url);
  const tenant = `t${uid()}`;
  const user = `u${uid()}`;
  const room = `r${uid()}`;
  t.same(await a.connect({ tenant, userId: user, connectionId: 'on-a', device: { type: 'web' } }), { wentOnline: true }, 'first connection, via a');
  t.same(await b.connect({ tenant, userId: user, connectionId: 'on-b' }), { wentOnline: false }, 'second connection, via b');
  t.match(await b.get(tenant, [user]), [{ status: 'online', connections: 2, device: { type: 'web' } }], 'b sees both');
  t.same(await a.disconnect(tenant, user, 'on-a'), { wentOffline: false }, 'still connected via b');
  t.match(await a.get(tenant, [user]), [{ status: 'online', connections: 1 }], 'a sees the connection held by b');
  await a.setStatus(tenant, user, { status: 'busy', customStatus: 'set via a' });
  t.match(await b.get(tenant, [user]), [{ status: 'busy', customStatus: 'set via a' }], 'a status set via a is read via b');
  t.same(await b.disconnect(tenant, user, 'on-b'), { wentOffline: true }, 'offline only once both disconnected');
  t.match(await a.get(tenant, [user]), [{ status: 'offline', connections: 0 }]);

  t.equal(await a.startTyping(tenant, room, user), true);
  t.same(await b.typingIn(tenant, room), [user], 'typing via a is seen via b');
  t.equal(await b.startTyping(tenant, room, user), false, 'a start via b refreshes the period begun via a');
  t.equal(await b.stopTyping(tenant, room, user), true);
  t.same(await a.typingIn(tenant, room), []);
});

t.test('presence - redis: concurrent connects and disconnects via two gateways report exactly one transition', async (t) => {
  const a = await open(t, server.url);
  const b = await open(t, server.url);
  const tenant = `t${uid()}`;
  for (let round = 0; round < 20; round++) {
    const user = `u${round}`;
    const ids = ['c1', 'c2', 'c3', 'c4'];
    const ons = await Promise.all(ids.map((id, i) => (i % 2 ? b : a).connect({ tenant, userId: user, connectionId: id })));
    const offs = await Promise.all(ids.map((id, i) => (i % 2 ? a : b).disconnect(tenant, user, id)));
    t.equal(ons.filter((r) => r.wentOnline).length, 1, `round ${round}: one wentOnline`);
    t.equal(offs.filter((r) => r.wentOffline).length, 1, `round ${round}: one wentOffline`);
  }
});

t.test('presence - redis: every key expires, so nothing leaks', async (t) => {
  const prefix = `leak${uid()}:`;
  const retentionMs = 10_000;
  const p = await open(t, server.url, { ttlSec: 1, typingTimeoutMs: 1500 }, { keyPrefix: prefix, offlineRetentionMs: retentionMs });
  const raw = rawClient(t, server.url);
  const pttls = async () => {
    const keys = (await raw.keys(`${prefix}*`)).sort();
    return Object.fromEntries(await Promise.all(keys.map(async (k) => [k.slice(prefix.length), await raw.pttl(k)] as const)));
  };

  await p.connect({ tenant: 't', userId: 'left', connectionId: 'c1' });
  await p.connect({ tenant: 't', userId: 'crashed', connectionId: 'c1' });
  await p.setStatus('t', 'never-connected', { status: 'away' });
  await p.startTyping('t', 'room', 'left');
  const live = await pttls();
  t.same(Object.keys(live), ['p:{t:crashed}', 'p:{t:crashed}:conns', 'p:{t:left}', 'p:{t:left}:conns', 'p:{t:never-connected}', 't:{t:room}']);
  for (const [key, ms] of Object.entries(live)) {
    const max = key.startsWith('t:') ? 1500 : key.endsWith(':conns') ? 1000 : 1000 + retentionMs;
    t.ok(ms > 0 && ms <= max, `${key} expires in ${ms} ms (at most ${max})`);
  }

  await p.disconnect('t', 'left', 'c1');
  const after = await pttls();
  t.notOk('p:{t:left}:conns' in after, 'the last disconnect removed the connection set');
  t.ok(after['p:{t:left}']! > 0 && after['p:{t:left}']! <= retentionMs, 'the status is kept for the retention only');

  await new Promise((r) => setTimeout(r, 1600));
  t.same(Object.keys(await pttls()), ['p:{t:crashed}', 'p:{t:left}', 'p:{t:never-connected}'], 'the connections of a dead gateway and the typing expired by themselves');
  t.match(await p.get('t', ['crashed']), [{ status: 'offline', connections: 0 }]);
});

t.test('presence - redis: ids cannot collide or escape their hash tag', async (t) => {
  const p = await open(t, server.url);
  const tenant = `t${uid()}`;
  t.same(await p.connect({ tenant: `${tenant}:a`, userId: 'b', connectionId: 'c' }), { wentOnline: true });
  t.same(await p.connect({ tenant, userId: 'a:b', connectionId: 'c' }), { wentOnline: true }, 'tenant "x:a" user "b" is not tenant "x" user "a:b"');
  t.same(await p.connect({ tenant, userId: 'we}ird{%3A', connectionId: 'c' }), { wentOnline: true });
  t.match(await p.get(tenant, ['we}ird{%3A', 'we}ird{:']), [{ connections: 1 }, { connections: 0 }]);
});

t.test('presence - redis: heartbeat re-registers connections that Redis lost', async (t) => {
  const prefix = `lost${uid()}:`;
  const p = await open(t, server.url, {}, { keyPrefix: prefix });
  const raw = rawClient(t, server.url);
  await p.connect({ tenant: 't', userId: 'u', connectionId: 'c1' });
  await p.connect({ tenant: 't', userId: 'u', connectionId: 'c2' });
  await raw.del(...(await raw.keys(`${prefix}*`)));
  t.match(await p.get('t', ['u']), [{ status: 'offline', connections: 0 }], 'Redis forgot everything');
  await p.heartbeat('t', [{ userId: 'u', connectionId: 'c1' }, { userId: 'u', connectionId: 'c2' }]);
  t.match(await p.get('t', ['u']), [{ status: 'online', connections: 2 }], 'the heartbeat put both connections back');
  t.same(await p.disconnect('t', 'u', 'c1'), { wentOffline: false });
  t.same(await p.disconnect('t', 'u', 'c2'), { wentOffline: true }, 'and the transitions are exact again');
});

t.test('presence - redis: Redis killed, calls degrade quickly; Redis back, the adapter recovers by itself', async (t) => {
  const s = await startPrivateServer(t);
  const captured = captureLog();
  const gw = await open(t, s.url, {}, { probeIntervalMs: 200 }, captured.log);
  const tenant = `t${uid()}`;
  const room = `r${uid()}`;
  t.same(await gw.connect({ tenant, userId: 'before', connectionId: 'c1' }), { wentOnline: true }, 'registered in Redis');
  const degradedBefore = await degradedCalls();

  await s.kill();
  const during = await quick(t, 'connect', () => gw.connect({ tenant, userId: 'during', connectionId: 'c2' }));
  t.same(during, { wentOnline: true }, 'the process-local presence reports its own transition');
  await quick(t, 'heartbeat', () => gw.heartbeat(tenant, [{ userId: 'before', connectionId: 'c1' }, { userId: 'during', connectionId: 'c2' }]));
  const infos = await quick(t, 'get', () => gw.get(tenant, ['before', 'during', 'stranger']));
  t.match(infos, [{ status: 'online' }, { status: 'online' }, { status: 'offline' }], "this gateway's users stay online (the heartbeat told it about the earlier one)");
  t.match(await quick(t, 'setStatus', () => gw.setStatus(tenant, 'during', { status: 'away' })), { status: 'away', connections: 1 });
  t.equal(await quick(t, 'startTyping', () => gw.startTyping(tenant, room, 'during')), true);
  t.same(await quick(t, 'typingIn', () => gw.typingIn(tenant, room)), ['during']);
  t.equal(await quick(t, 'stopTyping', () => gw.stopTyping(tenant, room, 'during')), true);
  const extra = await quick(t, 'connect', () => gw.connect({ tenant, userId: 'brief', connectionId: 'c3' }));
  t.same(extra, { wentOnline: true });
  t.same(await quick(t, 'disconnect', () => gw.disconnect(tenant, 'brief', 'c3')), { wentOffline: true });
  t.ok((await degradedCalls()) - degradedBefore >= 9, 'each degraded call is counted in chat_presence_degraded_total');
  t.equal(captured.matching(LEVEL.warn, /Redis unreachable/).length, 1, 'the outage is logged once');

  await s.restart();
  const observer = await open(t, s.url);
  await waitFor('the restarted Redis knows the live connections again', async () => {
    await gw.heartbeat(tenant, [{ userId: 'before', connectionId: 'c1' }, { userId: 'during', connectionId: 'c2' }]);
    const seen = await observer.get(tenant, ['before', 'during']);
    return seen.every((i) => i.connections === 1);
  });
  t.match(await observer.get(tenant, ['before', 'during']), [{ status: 'online' }, { status: 'online' }], 'another gateway sees them through Redis');
  t.equal(captured.matching(LEVEL.info, /Redis answers again/).length, 1, 'the recovery is logged once');
  t.equal(captured.matching(LEVEL.warn, /Redis unreachable/).length, 1, 'and no second outage was logged');
  t.same(await gw.disconnect(tenant, 'during', 'c2'), { wentOffline: true }, 'transitions come from Redis again');
  t.match(await observer.get(tenant, ['during']), [{ status: 'offline' }]);
});

t.test('presence - redis: a hung Redis costs at most the command timeout', async (t) => {
  const s = await startPrivateServer(t);
  const captured = captureLog();
  // the default command timeout (500 ms), the one production runs with
  const gw = await createRedisPresence({ url: s.url, ttlSec: 300, typingTimeoutMs: 3000 }, captured.log, { probeIntervalMs: 200 });
  t.teardown(() => gw.close());
  t.same(await gw.connect({ tenant: 't', userId: 'u', connectionId: 'c1' }), { wentOnline: true });

  s.pause();
  t.teardown(() => s.resume());
  t.same(await quick(t, 'connect while Redis hangs', () => gw.connect({ tenant: 't', userId: 'v', connectionId: 'c1' })), { wentOnline: true });
  for (let i = 0; i < 4; i++) {
    await quick(t, `heartbeat ${i + 1} while Redis hangs`, () => gw.heartbeat('t', [{ userId: 'u', connectionId: 'c1' }, { userId: 'v', connectionId: 'c1' }]));
    await new Promise((r) => setTimeout(r, 150));
  }
  t.match(await quick(t, 'get while Redis hangs', () => gw.get('t', ['u', 'v'])), [{ connections: 1 }, { connections: 1 }]);
  s.resume();
  await waitFor('the recovery', async () => {
    await gw.get('t', ['u']);
    return captured.matching(LEVEL.info, /Redis answers again/).length === 1;
  });
  const observer = await open(t, s.url);
  t.same(await gw.connect({ tenant: 't', userId: 'w', connectionId: 'c1' }), { wentOnline: true });
  t.match(await observer.get('t', ['w']), [{ connections: 1 }], 'calls go to Redis again');
  t.equal(captured.matching(LEVEL.warn, /Redis unreachable/).length, 1);
});

t.test('presence - redis: starts degraded when Redis is down at start, then recovers', async (t) => {
  const s = await startPrivateServer(t);
  await s.stop();
  const captured = captureLog();
  const started = performance.now();
  const gw = await open(t, s.url, {}, { connectWaitMs: 300, probeIntervalMs: 200 }, captured.log);
  t.ok(performance.now() - started < 2000, 'start does not wait for Redis');
  t.same(await quick(t, 'connect', () => gw.connect({ tenant: 't', userId: 'u', connectionId: 'c' })), { wentOnline: true });
  t.equal(captured.matching(LEVEL.warn, /Redis unreachable/).length, 1);

  await s.restart();
  const observer = await open(t, s.url);
  await waitFor('the connection reaches Redis', async () => {
    await gw.heartbeat('t', [{ userId: 'u', connectionId: 'c' }]);
    return (await observer.get('t', ['u']))[0]!.connections === 1;
  });
  t.equal(captured.matching(LEVEL.info, /Redis answers again/).length, 1);
});

t.test('presence - createPresence builds the redis adapter', async (t) => {
  const p = await createPresence({ adapter: 'redis', url: server.url, ttlSec: 5, typingTimeoutMs: 1000 }, silent);
  t.teardown(() => p.close());
  t.equal(p.kind, 'redis');
  const user = `u${uid()}`;
  t.same(await p.connect({ tenant: 't', userId: user, connectionId: 'c' }), { wentOnline: true });
  t.same(await p.disconnect('t', user, 'c'), { wentOffline: true });
});
