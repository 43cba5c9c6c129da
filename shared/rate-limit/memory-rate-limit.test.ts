import t from 'tap';
import { pino } from 'pino';
import { runRateLimitContract } from './rate-limit.contract.ts';
import { createMemoryRateLimiter, createRateLimiter } from './index.ts';

runRateLimitContract(t, { name: 'memory', open: async () => createMemoryRateLimiter() });

function fakeClock(start = 1000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => { now += ms; } };
}

t.test('rate-limit - memory: retryAfterMs is exact for the deficit', async (t) => {
  for (const perSecond of [10, 3, 0.5, 7.3]) {
    const clock = fakeClock();
    const rl = createMemoryRateLimiter({ now: clock.now });
    t.teardown(() => rl.close());
    const rule = { perSecond, burst: 2 };
    await rl.take('k', rule, 2);
    const denied = await rl.take('k', rule, 1);
    t.equal(denied.retryAfterMs, Math.ceil(1000 / perSecond), `${perSecond}/s: one token`);
    clock.advance(denied.retryAfterMs - 1);
    const early = await rl.take('k', rule, 1);
    t.equal(early.allowed, false, `${perSecond}/s: 1 ms early is denied`);
    t.equal(early.retryAfterMs, 1, `${perSecond}/s: and told to wait 1 ms`);
    clock.advance(1);
    t.match(await rl.take('k', rule, 1), { allowed: true, remaining: 0, retryAfterMs: 0 }, `${perSecond}/s: allowed exactly on time`);
  }
});

t.test('rate-limit - memory: a rule change clamps the bucket to the new burst', async (t) => {
  const clock = fakeClock();
  const rl = createMemoryRateLimiter({ now: clock.now });
  t.teardown(() => rl.close());
  t.match(await rl.take('k', { perSecond: 1, burst: 10 }), { remaining: 9 });
  t.match(await rl.take('k', { perSecond: 1, burst: 3 }), { allowed: true, remaining: 2 });
});

t.test('rate-limit - memory: memory stays bounded', async (t) => {
  const clock = fakeClock();
  const rl = createMemoryRateLimiter({ now: clock.now, maxKeys: 100, sweepIntervalMs: 10 });
  t.teardown(() => rl.close());
  const rule = { perSecond: 1, burst: 5 };
  for (let i = 0; i < 1000; i++) await rl.take(`k${i}`, rule);
  t.equal(rl.size, 100, 'never more than maxKeys buckets');
  await rl.take('k999', rule);
  await rl.take('k999', rule);
  t.match(await rl.take('k999', rule), { remaining: 1 }, 'a recently used bucket was kept with its state');
  t.match(await rl.take('k0', rule), { remaining: 4 }, 'the least recently used one was evicted and starts full');

  clock.advance(3500);
  await new Promise((r) => setTimeout(r, 60));
  t.equal(rl.size, 1, 'the sweep dropped the buckets that are full again, kept the one still refilling');
  clock.advance(1000);
  await new Promise((r) => setTimeout(r, 60));
  t.equal(rl.size, 0, 'and that one once full');
});

t.test('rate-limit - memory: invalid rules and costs are refused', async (t) => {
  const rl = createMemoryRateLimiter();
  t.teardown(() => rl.close());
  await t.rejects(rl.take('k', { perSecond: 0, burst: 1 }), { code: 'bad_request' });
  await t.rejects(rl.take('k', { perSecond: 1, burst: 2 }, 3), { code: 'bad_request' }, 'cost above burst could never be allowed');
  await t.rejects(rl.take('k', { perSecond: 1, burst: 2 }, 0), { code: 'bad_request' });
});

t.test('rate-limit - createRateLimiter builds the memory limiter', async (t) => {
  const log = pino({ level: 'silent' });
  const rl = await createRateLimiter({ adapter: 'memory', redisUrl: undefined, perSecond: 10, burst: 20, tenantPerSecond: 0 }, log);
  t.teardown(() => rl.close());
  t.equal(rl.kind, 'memory');
  t.match(await rl.take('k', { perSecond: 1, burst: 2 }), { allowed: true, remaining: 1 });
});
