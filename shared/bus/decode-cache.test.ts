import t from 'tap';
import { encodeMsgpack } from '../protocol/index.ts';
import { DecodeCache } from './decode-cache.ts';

t.test('decode cache - one bytes object decodes once; equal bytes in another object decode for themselves', async (t) => {
  const cache = new DecodeCache();
  const bytes = encodeMsgpack({ kind: 'message.created', n: 1 });
  const first = cache.decode(bytes);
  t.same(first, { kind: 'message.created', n: 1 });
  t.equal(cache.decode(bytes), first, 'the same value for the same bytes');
  const copy = Uint8Array.from(bytes);
  const other = cache.decode(copy);
  t.same(other, first);
  t.not(other, first, 'keyed by the object, not its content');
});

t.test('decode cache - bounded by count: the oldest entries are decoded again once 4096 newer ones came', async (t) => {
  const cache = new DecodeCache();
  const oldest = encodeMsgpack({ n: -1 });
  const kept = cache.decode(oldest);
  const recent = encodeMsgpack({ n: -2 });
  for (let i = 0; i < 4094; i++) cache.decode(encodeMsgpack({ n: i }));
  const recentValue = cache.decode(recent);
  t.equal(cache.decode(oldest), kept, 'still held with 4096 entries');
  cache.decode(encodeMsgpack({ n: 'one more' }));
  const again = cache.decode(oldest);
  t.same(again, { n: -1 });
  t.not(again, kept, 'evicted, decoded anew');
  t.equal(cache.decode(recent), recentValue, 'a newer entry stayed');
});

t.test('decode cache - bounded by size: large events push the oldest out after 4 MiB', async (t) => {
  const cache = new DecodeCache();
  const small = encodeMsgpack({ n: 'small' });
  const kept = cache.decode(small);
  const big = () => encodeMsgpack({ content: 'x'.repeat(1024 * 1024) });
  for (let i = 0; i < 3; i++) cache.decode(big());
  t.equal(cache.decode(small), kept, 'about 3 MiB held: still there');
  cache.decode(big());
  t.not(cache.decode(small), kept, 'past 4 MiB the oldest went');
});

t.test('decode cache - bytes that are not msgpack throw and are not cached', async (t) => {
  const cache = new DecodeCache();
  const bad = new Uint8Array([0x92, 0x01]); // an array of two holding one
  t.throws(() => cache.decode(bad));
  t.throws(() => cache.decode(bad), 'still throws: nothing was kept for it');
});
