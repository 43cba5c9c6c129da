import t from 'tap';
import { Snowflake, idTime, idAtTime, compareIds, isId, EPOCH_MS, MAX_NODE_ID } from './snowflake.ts';

t.test('snowflake - ids grow strictly and carry their time and node', async (t) => {
  let now = EPOCH_MS + 1_000_000;
  const ids = new Snowflake(7, () => now);
  const a = ids.next();
  const b = ids.next();
  now += 5;
  const c = ids.next();
  t.ok(compareIds(a, b) < 0 && compareIds(b, c) < 0, 'strictly increasing');
  t.equal(idTime(a), EPOCH_MS + 1_000_000);
  t.equal(idTime(c), EPOCH_MS + 1_000_005);
  t.equal(Number((BigInt(a) >> 12n) & 0x3ffn), 7, 'node id bits');
});

t.test('snowflake - 5000 ids in one millisecond stay unique and ordered', async (t) => {
  const ids = new Snowflake(1, () => EPOCH_MS + 42);
  const seen: string[] = [];
  for (let i = 0; i < 5000; i++) seen.push(ids.next());
  t.equal(new Set(seen).size, 5000);
  t.same([...seen].sort(compareIds), seen);
});

t.test('snowflake - a clock stepping back never repeats an id', async (t) => {
  let now = EPOCH_MS + 10_000;
  const ids = new Snowflake(3, () => now);
  const before = ids.next();
  now -= 2000;
  const after = ids.next();
  t.ok(compareIds(before, after) < 0);
});

t.test('snowflake - node id range and helpers', async (t) => {
  t.throws(() => new Snowflake(MAX_NODE_ID + 1), RangeError);
  t.throws(() => new Snowflake(-1), RangeError);
  t.ok(compareIds(idAtTime(EPOCH_MS + 100), new Snowflake(0, () => EPOCH_MS + 100).next()) <= 0);
  t.equal(compareIds('9', '10'), -1, 'numeric, not lexicographic');
  t.equal(isId('123'), true);
  t.equal(isId('12a'), false);
  t.equal(isId('99999999999999999999'), false, 'beyond 63 bits');
});
