import t from 'tap';
import { MAX_NESTING_DEPTH, plainDataProblem } from './plain-data.ts';

const nested = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 1; i < depth; i++) v = i % 2 ? [v] : { k: v };
  return [v];
};

t.test('plain data - nesting up to the limit passes, one level more is refused, a million levels do not overflow the stack', async (t) => {
  t.equal(plainDataProblem(nested(MAX_NESTING_DEPTH)), undefined);
  t.match(plainDataProblem(nested(MAX_NESTING_DEPTH + 1)), /nest at most 32 levels/);
  let deep: unknown = null;
  for (let i = 0; i < 1_000_000; i++) deep = [deep];
  t.match(plainDataProblem(deep), /nest/);
});

t.test('plain data - only what JSON has, with exact whole numbers', async (t) => {
  t.equal(plainDataProblem({ s: 'x', b: true, n: null, f: -0.5, i: Number.MAX_SAFE_INTEGER, a: [1, 'x', { o: Object.create(null) }] }), undefined);
  t.equal(plainDataProblem(Object.assign(Object.create(null), { a: 1 })), undefined, 'a map without a prototype (msgpack may decode to one)');
  const refused: Array<[string, unknown, RegExp]> = [
    ['bigint', { n: 2n ** 64n }, /64-bit/],
    ['unsafe integer', { n: 2 ** 53 }, /whole numbers/],
    ['NaN', [Number.NaN], /finite/],
    ['Infinity', { x: { y: -Infinity } }, /finite/],
    ['binary', { b: new Uint8Array(2) }, /only strings/],
    ['Map', { m: new Map() }, /only strings/],
    ['function', { f: () => 1 }, /only strings/],
  ];
  for (const [what, value, problem] of refused) t.match(plainDataProblem(value), problem, what);
});

t.test('plain data - undefined and dates are taken as JSON.stringify takes them: dropped (null in an array), an ISO string', async (t) => {
  const at = new Date(Date.UTC(2026, 0, 2));
  const value: Record<string, unknown> = { a: undefined, b: [1, undefined, { c: undefined, d: 2, at }], when: at, bad: new Date(Number.NaN) };
  t.equal(plainDataProblem(value), undefined);
  t.same(value, { b: [1, null, { d: 2, at: '2026-01-02T00:00:00.000Z' }], when: '2026-01-02T00:00:00.000Z', bad: null });
  t.notOk('a' in value, 'the property is gone, not undefined');
  t.match(plainDataProblem(undefined), /only strings/, 'a document that is nothing is not data');
});

t.test('plain data - a JSON "__proto__" key is walked like any other (nothing hides under it)', async (t) => {
  const deep = `${'{"a":'.repeat(100)}1${'}'.repeat(100)}`;
  t.match(plainDataProblem(JSON.parse(`{"m":{"__proto__":${deep}}}`)), /nest/);
  t.match(plainDataProblem(JSON.parse('{"__proto__":{"n":1e400}}')), /finite/);
});
