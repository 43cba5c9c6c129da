import t from 'tap';
import { backoffDelay, redeliveryDelayMs, REDELIVERY_BACKOFF } from './index.ts';

t.test('backoff - grows by the factor from the initial delay and stops at the max', async (t) => {
  const o = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0 };
  t.same([0, 1, 2, 3, 4, 10, 2000].map((n) => backoffDelay(n, o)), [100, 200, 400, 800, 1000, 1000, 1000]);
  t.equal(backoffDelay(-3, o), 100, 'a negative attempt counts as the first');
  t.same([0, 1, 2].map((n) => backoffDelay(n, { ...o, factor: 3 })), [100, 300, 900], 'any factor');
});

t.test('backoff - jitter takes a random share off each delay', async (t) => {
  const o = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 };
  t.equal(backoffDelay(1, o, () => 0), 200, 'random 0: the whole delay');
  t.equal(backoffDelay(1, o, () => 1), 100, 'random 1: half of it off');
  t.equal(backoffDelay(1, o, () => 0.25), 175, 'in between: rounded to whole ms');
  t.equal(backoffDelay(10, o, () => 1), 500, 'applied after the cap');
  const seen = new Set(Array.from({ length: 200 }, () => backoffDelay(3, o)));
  t.ok([...seen].every((d) => d >= 400 && d <= 800), 'Math.random by default, within the range');
});

t.test('backoff - the SDK reconnect formula (250 ms, x2, 10 s, jitter 0.5) is expressed exactly', async (t) => {
  const sdk = { initialDelayMs: 250, maxDelayMs: 10_000, factor: 2, jitter: 0.5 };
  const sdkFormula = (attempt: number, r: number) => Math.round(Math.min(10_000, 250 * 2 ** Math.max(0, attempt)) * (1 - 0.5 * r));
  for (const attempt of [0, 1, 3, 5, 6, 7, 20]) {
    for (const r of [0, 0.123, 0.5, 0.999]) t.equal(backoffDelay(attempt, sdk, () => r), sdkFormula(attempt, r), `attempt ${attempt}, random ${r}`);
  }
});

t.test('backoff - redelivery: 200 ms after the first delivery, doubling, at most 5 s, exact', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 7, 50].map(redeliveryDelayMs), [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  // the formulas this replaces: the buses' and the persister's (deliveryCount starts at 1)
  const buses = (n: number) => Math.min(5000, 200 * 2 ** Math.max(0, n - 1));
  const persister = (n: number) => Math.min(5000, 100 * 2 ** Math.min(n, 6));
  for (let n = 1; n <= 40; n++) {
    t.equal(redeliveryDelayMs(n), buses(n), `delivery ${n}: as the buses had it`);
    t.equal(redeliveryDelayMs(n), persister(n), `delivery ${n}: as the persister had it`);
  }
  t.equal(REDELIVERY_BACKOFF.jitter, 0);
  t.ok(Object.isFrozen(REDELIVERY_BACKOFF), 'shared by every adapter: cannot be changed by one');
});
