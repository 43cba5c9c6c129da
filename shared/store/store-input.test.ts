import t from 'tap';
import { isId } from '../ids/index.ts';
import { MAX_ID, bound, cursor, parseId, parseTime } from './store-input.ts';

t.test('store input - parseId takes exactly what isId takes, as its value', async (t) => {
  const cases = [
    '0', '7', '042', '387283601365925928', MAX_ID.toString(), MAX_ID.toString().padStart(20, '0'), '00000000000000000042',
    (MAX_ID + 1n).toString(), '99999999999999999999', '000000000000000000042', '-1', '+1', '1.0', '1e3', ' 1', '', 'abc',
  ];
  for (const value of cases) {
    const n = parseId(value);
    t.equal(n !== undefined, isId(value), `${JSON.stringify(value)}: the store and isId agree`);
    if (n !== undefined) t.equal(n, BigInt(value));
  }
  t.equal(parseId('00000000000000000042'), 42n, 'twenty digits with leading zeros are an id');
  t.equal(parseId(42), undefined, 'only strings are ids');
  t.equal(parseId(undefined), undefined);
  t.throws(() => cursor('x', 'before'), { name: 'ChatError', code: 'bad_request', message: 'before: "x" is not a message id' });
});

t.test('store input - bound and parseTime', async (t) => {
  t.strictSame([bound(-1), bound(Number.NaN), bound(0), bound(2.9), bound(1e12)], [0, 0, 0, 2, 2 ** 31 - 1]);
  t.equal(parseTime('2025-01-01T00:00:00.000Z', 'at'), Date.UTC(2025, 0, 1));
  t.throws(() => parseTime('soon', 'touchRoom:'), { name: 'ChatError', code: 'bad_request', message: 'touchRoom: "soon" is not a time' });
});
