import t from 'tap';
import { TokenExpiry } from './token-expiry.ts';

t.test('token expiry - items are ended after their expiry, in the second after it, and not before', async (t) => {
  const ended: string[] = [];
  const start = Date.now();
  const w = new TokenExpiry<string>((item) => ended.push(`${item}@${Date.now() - start}`));
  t.teardown(() => w.close());
  w.watch('soon', start + 1000);
  w.watch('later', start + 60_000);
  w.watch('never', undefined);
  w.watch('moved', start + 1000);
  w.watch('moved', start + 60_000);
  w.watch('gone', start + 1000);
  w.unwatch('gone');
  t.equal(w.size, 3, 'a token without exp is not watched');
  for (let i = 0; i < 400 && ended.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(ended.length, 1);
  const [item, at] = ended[0]!.split('@');
  t.equal(item, 'soon', 'only the one due; the re-watched and unwatched ones are not ended');
  t.ok(Number(at) >= 1000, `not before its exp (${at} ms)`);
  t.equal(w.size, 2);
});
