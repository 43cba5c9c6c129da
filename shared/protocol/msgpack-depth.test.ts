import t from 'tap';
import { Packr } from 'msgpackr';
import { msgpackNestsDeeper } from './msgpack-depth.ts';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const nested = (depth: number, leaf: unknown = 1): unknown => {
  let v: unknown = leaf;
  for (let i = 1; i < depth; i++) v = i % 2 ? [v] : { k: v };
  return [v];
};

t.test('msgpack depth - measures what the encoder wrote, up to and past the limit', async (t) => {
  t.equal(msgpackNestsDeeper(packr.pack(nested(32)), 32), false);
  t.equal(msgpackNestsDeeper(packr.pack(nested(33)), 32), true);
  t.equal(msgpackNestsDeeper(packr.pack({ type: 'send_message', roomId: 'r', content: 'hi', metadata: { a: [1, { b: null }] } }), 32), false);
  t.equal(msgpackNestsDeeper(Buffer.concat([Buffer.alloc(100_000, 0x91), Buffer.from([0xc0])]), 32), true, '100,000 levels, no recursion');
});

t.test('msgpack depth - skips every scalar by its length, so bytes inside strings, binaries and extensions are not read as containers', async (t) => {
  const inert = Buffer.alloc(300, 0x91).toString('latin1');
  const scalars: unknown[] = [
    inert, 'x'.repeat(40), 'y'.repeat(300), 'z'.repeat(70_000), Buffer.alloc(10, 0x91), Buffer.alloc(300, 0x91), Buffer.alloc(70_000, 0x91),
    0, 127, -1, -32, -33, 200, 40_000, 2 ** 31, -(2 ** 31), 2 ** 40, 1.5, true, false, null, new Date(0), new Date(2 ** 40), 2n ** 63n - 1n,
  ];
  const deepAfter = { scalars, tail: nested(33) };
  t.equal(msgpackNestsDeeper(packr.pack(deepAfter), 32), true, 'the deep part after them is found');
  t.equal(msgpackNestsDeeper(packr.pack({ scalars, tail: nested(30) }), 32), false, 'and nothing in them counts');
  const ext = (bytes: number[]) => Buffer.concat([Buffer.from([0x82, 0xa1, 0x61]), Buffer.from(bytes), Buffer.from([0xa1, 0x62]), packr.pack(nested(33))]);
  for (const [what, bytes] of [
    ['fixext 1', [0xd4, 0x05, 0x91]], ['fixext 2', [0xd5, 0x05, 0x91, 0x91]], ['fixext 4', [0xd6, 0x05, 0x91, 0x91, 0x91, 0x91]],
    ['fixext 8', [0xd7, 0x05, ...Array(8).fill(0x91)]], ['fixext 16', [0xd8, 0x05, ...Array(16).fill(0x91)]],
    ['ext 8', [0xc7, 0x03, 0x05, 0x91, 0x91, 0x91]], ['ext 16', [0xc8, 0x00, 0x02, 0x05, 0x91, 0x91]], ['ext 32', [0xc9, 0, 0, 0, 0x01, 0x05, 0x91]],
  ] as const) {
    t.equal(msgpackNestsDeeper(ext([...bytes]), 32), true, what);
  }
});

t.test('msgpack depth - malformed or truncated input is left to the decoder', async (t) => {
  for (const bytes of [[0xc1], [0xdd, 0x7f, 0xff, 0xff, 0xff, 0x01], [0xdb, 0xff, 0xff, 0xff, 0xff, 0x61], [0x92], []]) {
    t.equal(msgpackNestsDeeper(Buffer.from(bytes), 32), false, JSON.stringify(bytes));
  }
});
