import t, { type Test } from 'tap';
import { pino, type Logger } from 'pino';
import { Redis } from 'ioredis';
import type { Counter } from 'prom-client';
import { startRedisServer, type RedisServer } from '../../test/support/redis-server.ts';
import { captureLog, LEVEL } from '../../test/support/log-capture.ts';
import { registry } from '../telemetry/metrics.ts';
import { runRateLimitContract } from './rate-limit.contract.ts';
import { createRateLimiter, createRedisRateLimiter, type RateDecision, type RateLimiter, type RedisRateLimiterOptions } from './index.ts';

const silent = pino({ level: 'silent' });
// generous: a busy CI machine must not turn a slow reply into a simulated outage
const COMMAND_TIMEOUT_MS = 5000;

const server = await startRedisServer();
t.teardown(() => server.stop());

runRateLimitContract(t, {
  name: 'redis',
  open: () => createRedisRateLimiter({ redisUrl: server.url }, silent, { keyPrefix: 'contract:', commandTimeoutMs: COMMAND_TIMEOUT_MS }),
});

async function open(t: Test, url: string, opts: RedisRateLimiterOptions = {}, log: Logger = silent): Promise<RateLimiter> {
  const rl = await createRedisRateLimiter({ redisUrl: url }, log, { commandTimeoutMs: COMMAND_TIMEOUT_MS, ...opts });
  t.teardown(() => rl.close());
  return rl;
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

/** Redis TIME in ms, the clock the bucket script uses. */
async function redisNow(raw: Redis): Promise<number> {
  const [sec, usec] = await raw.time();
  return Number(sec) * 1000 + Number(usec) / 1000;
}

async function degradedTakes(): Promise<number> {
  const metric = registry.getSingleMetric('chat_rate_limit_degraded_total') as Counter | undefined;
  if (metric === undefined) return Number.NaN;
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}

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

t.test('rate-limit - redis: the bucket script refills by Redis TIME, exactly', async (t) => {
  const prefix = `unit${uid()}:`;
  const rl = await open(t, server.url, { keyPrefix: prefix });
  const raw = rawClient(t, server.url);
  const bucket = (key: string) => `${prefix}rl:${key}`;
  /** Seeds a bucket as if its last take was `agoMs` before Redis' now; returns a bound on the ms that pass until the take. */
  const takeAfterSeeding = async (key: string, tokens: number, agoMs: number, take: () => Promise<RateDecision>) => {
    const start = performance.now();
    const now = await redisNow(raw);
    await raw.hset(bucket(key), { tokens: String(tokens), ts: String(now - agoMs) });
    const decision = await take();
    return { decision, slackMs: performance.now() - start + 1 };
  };

  for (const perSecond of [10, 3, 0.5, 7.3]) {
    const key = `deficit${uid()}`;
    const rule = { perSecond, burst: 2 };
    const { decision, slackMs } = await takeAfterSeeding(key, 0, 0, () => rl.take(key, rule));
    const full = Math.ceil(1000 / perSecond);
    t.equal(decision.allowed, false, `${perSecond}/s: empty bucket denied`);
    t.ok(decision.retryAfterMs <= full && decision.retryAfterMs >= Math.floor(1000 / perSecond - slackMs),
      `${perSecond}/s: retryAfterMs ${decision.retryAfterMs} is one token's time (${full} ms) less what refilled meanwhile (< ${slackMs.toFixed(1)} ms)`);
  }

  {
    const key = `refill${uid()}`;
    const rule = { perSecond: 1, burst: 5 };
    const { decision, slackMs } = await takeAfterSeeding(key, 0.5, 500, () => rl.take(key, rule));
    t.same(decision, { allowed: true, remaining: 0, retryAfterMs: 0 }, '0.5 tokens + 500 ms at 1/s make the one token taken');
    const left = Number(await raw.hget(bucket(key), 'tokens'));
    t.ok(left >= 0 && left <= slackMs / 1000, `what is left is what refilled meanwhile (${left})`);
    const ttl = await raw.pttl(bucket(key));
    t.ok(ttl <= 5000 && ttl >= 5000 - slackMs - 50, `the bucket expires when full again: ${ttl} ms`);
    const denied = await rl.take(key, rule);
    t.equal(denied.allowed, false);
    const ts = await raw.hget(bucket(key), 'ts');
    await rl.take(key, rule);
    t.equal(await raw.hget(bucket(key), 'ts'), ts, 'a denied take writes nothing');
  }

  {
    const key = `clamp${uid()}`;
    const { decision } = await takeAfterSeeding(key, 1, 3_600_000, () => rl.take(key, { perSecond: 2, burst: 3 }, 3));
    t.same(decision, { allowed: true, remaining: 0, retryAfterMs: 0 }, 'an hour of refill fills up to burst, not beyond');
  }

  {
    const key = `backwards${uid()}`;
    const rule = { perSecond: 2, burst: 3 };
    const { decision } = await takeAfterSeeding(key, 1, -60_000, () => rl.take(key, rule));
    t.same(decision, { allowed: true, remaining: 0, retryAfterMs: 0 }, 'a last take in the future (TIME stepped back) refills nothing, takes nothing away');
    const start = performance.now();
    const denied = await rl.take(key, rule);
    t.ok(denied.retryAfterMs <= 500 && denied.retryAfterMs >= 500 - (performance.now() - start) - 100, `then counts from the new time: ${denied.retryAfterMs} ms`);
  }

  {
    const key = `fresh${uid()}`;
    const start = performance.now();
    t.same(await rl.take(key, { perSecond: 2, burst: 3 }), { allowed: true, remaining: 2, retryAfterMs: 0 }, 'a new key starts full');
    const ttl = await raw.pttl(bucket(key));
    t.ok(ttl <= 500 && ttl >= 500 - (performance.now() - start) - 1, `and expires once the token taken is back: ${ttl} ms`);
  }
});

t.test('rate-limit - redis: refill over real time matches the rule', async (t) => {
  const rl = await open(t, server.url);
  const key = `real${uid()}`;
  const rule = { perSecond: 5, burst: 5 };
  for (let i = 0; i < 5; i++) await rl.take(key, rule);
  const denied = await rl.take(key, rule);
  t.ok(denied.retryAfterMs > 150 && denied.retryAfterMs <= 200, `one token at 5/s: ${denied.retryAfterMs} ms`);
  await new Promise((r) => setTimeout(r, 650));
  const after = await rl.take(key, rule, 3);
  t.equal(after.allowed, true, '650 ms at 5/s refilled at least 3 tokens');
  t.ok(after.remaining <= 2, `and not much more (${after.remaining} left)`);
});

t.test('rate-limit - redis: two limiters taking concurrently from one key never exceed the burst together', async (t) => {
  const a = await open(t, server.url);
  const b = await open(t, server.url);
  const rule = { perSecond: 0.01, burst: 20 };
  for (let round = 0; round < 5; round++) {
    const key = `shared${uid()}`;
    const decisions = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).take(key, rule)));
    t.equal(decisions.filter((d) => d.allowed).length, 20, `round ${round}: exactly burst allowed across both`);
    t.notOk(decisions.some((d) => d.degraded), 'all decided by Redis');
  }
});

t.test('rate-limit - redis: invalid rules and costs are refused like the memory adapter', async (t) => {
  const rl = await open(t, server.url);
  await t.rejects(rl.take('k', { perSecond: 0, burst: 1 }), { code: 'bad_request' });
  await t.rejects(rl.take('k', { perSecond: Number.POSITIVE_INFINITY, burst: 1 }), { code: 'bad_request' });
  await t.rejects(rl.take('k', { perSecond: 1, burst: Number.POSITIVE_INFINITY }), { code: 'bad_request' });
  await t.rejects(rl.take('k', { perSecond: 1, burst: 2 }, 3), { code: 'bad_request' }, 'cost above burst could never be allowed');
  await t.rejects(rl.take('k', { perSecond: 1, burst: 2 }, 0), { code: 'bad_request' });
});

t.test('rate-limit - redis: Redis killed, takes degrade to a local bucket; Redis back, shared again', async (t) => {
  const s = await startPrivateServer(t);
  const captured = captureLog();
  const rl = await open(t, s.url, { probeIntervalMs: 200 }, captured.log);
  const rule = { perSecond: 0.01, burst: 3 };
  const key = `k${uid()}`;
  const first = await rl.take(key, rule);
  t.same(first, { allowed: true, remaining: 2, retryAfterMs: 0 }, 'on Redis: no degraded flag');
  const before = await degradedTakes();

  await s.kill();
  const during = [];
  for (let i = 0; i < 4; i++) during.push(await quick(t, `take ${i + 1}`, () => rl.take(key, rule)));
  t.same(during.map((d) => d.degraded), [true, true, true, true], 'every decision says degraded');
  t.same(during.map((d) => d.allowed), [true, true, true, false], 'the local bucket (starting full) still limits');
  t.ok(during[3]!.retryAfterMs > 0);
  t.equal((await degradedTakes()) - before, 4, 'each degraded take is counted in chat_rate_limit_degraded_total');
  t.equal(captured.matching(LEVEL.warn, /Redis unreachable/).length, 1, 'the outage is logged once');

  await s.restart();
  const other = `k${uid()}`;
  let back: RateDecision | undefined;
  await waitFor('takes are decided by Redis again', async () => {
    back = await rl.take(other, { perSecond: 1, burst: 10 });
    return back.degraded === undefined;
  });
  t.same(back, { allowed: true, remaining: 9, retryAfterMs: 0 });
  t.equal(captured.matching(LEVEL.info, /Redis answers again/).length, 1, 'the recovery is logged once');
  t.equal(captured.matching(LEVEL.warn, /Redis unreachable/).length, 1, 'one outage, one warning');
  const peer = await open(t, s.url);
  t.match(await peer.take(other, { perSecond: 1, burst: 10 }), { remaining: 8 }, 'the bucket is shared again');
});

t.test('rate-limit - redis: a hung Redis costs at most the command timeout', async (t) => {
  const s = await startPrivateServer(t);
  const captured = captureLog();
  // the default command timeout (500 ms), the one production runs with
  const rl = await createRedisRateLimiter({ redisUrl: s.url }, captured.log, { probeIntervalMs: 200 });
  t.teardown(() => rl.close());
  const rule = { perSecond: 1, burst: 5 };
  t.match(await rl.take(`k${uid()}`, rule), { allowed: true, remaining: 4 });

  s.pause();
  t.teardown(() => s.resume());
  for (let i = 0; i < 5; i++) {
    const d = await quick(t, `take ${i + 1} while Redis hangs`, () => rl.take(`hung${i}`, rule));
    t.equal(d.degraded, true);
    await new Promise((r) => setTimeout(r, 100));
  }
  s.resume();
  await waitFor('takes are decided by Redis again', async () => (await rl.take(`k${uid()}`, rule)).degraded === undefined);
  t.equal(captured.matching(LEVEL.warn, /Redis unreachable/).length, 1);
});

t.test('rate-limit - createRateLimiter builds the redis limiter', async (t) => {
  const rl = await createRateLimiter({ adapter: 'redis', redisUrl: server.url, perSecond: 10, burst: 20, tenantPerSecond: 0 }, silent);
  t.teardown(() => rl.close());
  t.equal(rl.kind, 'redis');
  t.same(await rl.take(`k${uid()}`, { perSecond: 1, burst: 2 }), { allowed: true, remaining: 1, retryAfterMs: 0 });
});
