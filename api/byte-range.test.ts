import t from 'tap';
import { parseByteRange } from './byte-range.ts';

t.test('byte range - the forms of RFC 9110', async (t) => {
  t.same(parseByteRange('bytes=0-99', 1000), { start: 0, end: 99 });
  t.same(parseByteRange('bytes=900-', 1000), { start: 900, end: 999 }, 'open end');
  t.same(parseByteRange('bytes=-100', 1000), { start: 900, end: 999 }, 'suffix');
  t.same(parseByteRange('bytes=-5000', 1000), { start: 0, end: 999 }, 'a suffix longer than the file is the file');
  t.same(parseByteRange('bytes=990-5000', 1000), { start: 990, end: 999 }, 'end clipped');
  t.same(parseByteRange('bytes=999-999', 1000), { start: 999, end: 999 });
});

t.test('byte range - unsatisfiable and ignored ranges', async (t) => {
  t.equal(parseByteRange('bytes=1000-', 1000), 'unsatisfiable');
  t.equal(parseByteRange('bytes=-0', 1000), 'unsatisfiable');
  t.equal(parseByteRange('bytes=0-', 0), 'unsatisfiable', 'nothing to give of an empty file');
  for (const h of [undefined, '', 'bytes=0-1,5-6', 'items=0-1', 'bytes=5-2', 'bytes=-', 'bytes=a-b', 'bytes 0-1']) {
    t.equal(parseByteRange(h, 1000), undefined, `${JSON.stringify(h)} serves the whole file`);
  }
});
