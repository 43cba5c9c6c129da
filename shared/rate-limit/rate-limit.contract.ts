import type { Test } from 'tap';
import type { RateLimiter } from './rate-limit.ts';

/** The behaviour every RateLimiter adapter must show, against the port only; keys are unique per test. */
export interface RateLimitContractOptions {
  name: string;
  open: () => Promise<RateLimiter>;
}

const SLACK_MS = 5;

export function runRateLimitContract(t: Test, opts: RateLimitContractOptions): void {
  const open = async (t: Test): Promise<RateLimiter> => {
    const limiter = await opts.open();
    t.teardown(() => limiter.close());
    return limiter;
  };

  t.test(`rate-limit - a burst is allowed, then takes are denied (${opts.name})`, async (t) => {
    const rl = await open(t);
    const key = `user:t:${uid()}`;
    const rule = { perSecond: 1, burst: 5 };
    const decisions = [];
    for (let i = 0; i < 6; i++) decisions.push(await rl.take(key, rule));
    t.same(decisions.map((d) => d.allowed), [true, true, true, true, true, false]);
    t.same(decisions.map((d) => d.remaining), [4, 3, 2, 1, 0, 0], 'remaining whole tokens after each take');
    t.same(decisions.slice(0, 5).map((d) => d.retryAfterMs), [0, 0, 0, 0, 0], 'no wait when allowed');
    t.ok(decisions[5]!.retryAfterMs > 0, `denied with a wait (${decisions[5]!.retryAfterMs} ms)`);
  });

  t.test(`rate-limit - tokens refill over time (${opts.name})`, async (t) => {
    const rl = await open(t);
    const key = `user:t:${uid()}`;
    const rule = { perSecond: 4, burst: 2 };
    t.equal((await rl.take(key, rule)).allowed, true);
    t.equal((await rl.take(key, rule)).allowed, true);
    const denied = await rl.take(key, rule);
    t.equal(denied.allowed, false, 'empty');
    await sleep(denied.retryAfterMs + 30);
    const again = await rl.take(key, rule);
    t.equal(again.allowed, true, `refilled after retryAfterMs (${denied.retryAfterMs} ms)`);
    await sleep(1000);
    const full = [await rl.take(key, rule), await rl.take(key, rule), await rl.take(key, rule)];
    t.same(full.map((d) => d.allowed), [true, true, false], 'refills up to burst, not beyond');
  });

  t.test(`rate-limit - retryAfterMs is the time until cost tokens are back (${opts.name})`, async (t) => {
    const rl = await open(t);
    const key = `user:t:${uid()}`;
    const rule = { perSecond: 2, burst: 3 };
    for (let i = 0; i < 3; i++) await rl.take(key, rule);
    const one = await rl.take(key, rule, 1);
    const two = await rl.take(key, rule, 2);
    t.equal(one.allowed, false);
    t.equal(two.allowed, false);
    // 500 ms per token, less what refilled since the bucket was drained; SLACK_MS for backends counting whole ms
    t.ok(one.retryAfterMs > 250 && one.retryAfterMs <= 500 + SLACK_MS, `one token: ${one.retryAfterMs} ms`);
    t.ok(two.retryAfterMs > 750 && two.retryAfterMs <= 1000 + SLACK_MS, `two tokens: ${two.retryAfterMs} ms`);
  });

  t.test(`rate-limit - keys are independent (${opts.name})`, async (t) => {
    const rl = await open(t);
    const [a, b] = [`user:t:${uid()}`, `user:t:${uid()}`];
    const rule = { perSecond: 1, burst: 2 };
    await rl.take(a, rule);
    await rl.take(a, rule);
    t.equal((await rl.take(a, rule)).allowed, false, 'a is empty');
    t.same(await rl.take(b, rule), { allowed: true, remaining: 1, retryAfterMs: 0 }, 'b has its own bucket');
  });

  t.test(`rate-limit - a take may cost more than one token; a denied take costs nothing (${opts.name})`, async (t) => {
    const rl = await open(t);
    const key = `user:t:${uid()}`;
    const rule = { perSecond: 1, burst: 10 };
    t.match(await rl.take(key, rule, 4), { allowed: true, remaining: 6 });
    t.match(await rl.take(key, rule, 4), { allowed: true, remaining: 2 });
    const denied = await rl.take(key, rule, 4);
    t.match(denied, { allowed: false, remaining: 2 }, 'not enough for 4, nothing taken');
    t.ok(denied.retryAfterMs > 1500 && denied.retryAfterMs <= 2000 + SLACK_MS, `2 tokens short at 1/s: ${denied.retryAfterMs} ms`);
    t.match(await rl.take(key, rule, 2), { allowed: true, remaining: 0 }, 'the 2 left can still be taken');
  });

  t.test(`rate-limit - concurrent takes never overdraw a bucket (${opts.name})`, async (t) => {
    const rl = await open(t);
    const key = `user:t:${uid()}`;
    const rule = { perSecond: 1, burst: 10 };
    const decisions = await Promise.all(Array.from({ length: 50 }, () => rl.take(key, rule)));
    t.equal(decisions.filter((d) => d.allowed).length, 10, 'exactly burst allowed');
    t.same(decisions.filter((d) => d.allowed).map((d) => d.remaining).sort((x, y) => y - x), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  });
}

function uid(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
