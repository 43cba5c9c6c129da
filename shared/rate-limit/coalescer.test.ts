import t from 'tap';
import { Coalescer } from './coalescer.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('coalescer - the first offer applies at once, the last of its window when the window ends, the rest never', async (t) => {
  const applied: Array<[string, number]> = [];
  const c = new Coalescer<number>(100, (err) => t.fail(String(err)));
  t.teardown(() => c.close());
  const apply = (key: string) => async (v: number) => { applied.push([key, v]); return v * 10; };
  t.equal(await c.offer('a', 1, apply('a')), 10, 'applied now: the caller gets its result');
  for (let v = 2; v <= 50; v++) t.equal(c.offer('a', v, apply('a')), undefined, `held: ${v}`);
  t.equal(await c.offer('b', 7, apply('b')), 70, 'another key has its own window');
  t.same(applied, [['a', 1], ['b', 7]]);
  for (let i = 0; i < 100 && applied.length < 3; i++) await sleep(20);
  t.same(applied, [['a', 1], ['b', 7], ['a', 50]], 'only the last held value, once');
  t.equal(c.offer('a', 51, apply('a')), undefined, 'applying the held value opened a new window');
  for (let i = 0; i < 100 && c.size > 0; i++) await sleep(20);
  t.same(applied.at(-1), ['a', 51]);
  t.equal(c.size, 0, 'windows with nothing held close: nothing is kept');
});

t.test('coalescer - a window of 0 applies everything; a failure of a held value is reported', async (t) => {
  const now = new Coalescer<number>(0, () => t.fail('no error expected'));
  let n = 0;
  for (let i = 0; i < 5; i++) await now.offer('k', i, async () => { n++; });
  t.equal(n, 5);
  const errors: unknown[] = [];
  const c = new Coalescer<number>(50, (err) => errors.push(err));
  t.teardown(() => c.close());
  await c.offer('k', 1, async () => {});
  c.offer('k', 2, async () => { throw new Error('held failed'); });
  for (let i = 0; i < 100 && errors.length === 0; i++) await sleep(10);
  t.match(errors, [{ message: 'held failed' }]);
});

t.test('coalescer - drop forgets what is held', async (t) => {
  const applied: number[] = [];
  const c = new Coalescer<number>(50, () => {});
  t.teardown(() => c.close());
  await c.offer('k', 1, async (v) => { applied.push(v); });
  c.offer('k', 2, async (v) => { applied.push(v); });
  c.drop('k');
  await sleep(120);
  t.same(applied, [1]);
});
