import t from 'tap';
import { startChatProcess, removeDir } from './support/chat-process.ts';

/**
 * A second `chat all` on a port another one already serves must not start and silently split the
 * requests between two servers with different data: it exits with an error naming the port.
 */
t.test('double bind - a second chat all on a busy port exits with "address in use" naming the port', async (t) => {
  const first = await startChatProcess();
  t.teardown(async () => { await first.kill(); removeDir(first.dataDir); });
  const second = startChatProcess({ env: { PORT: String(first.port) }, timeoutMs: 60_000 });
  const err = await second.then(() => undefined, (e: unknown) => e as Error);
  t.ok(err, 'the second process did not start listening');
  t.match(err?.message ?? '', /exited with 1 before listening/, 'it exited with status 1');
  t.match(err?.message ?? '', new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port}: the address is in use`), 'and said which port is in use');
  const res = await fetch(`${first.http}/health`);
  t.equal(res.status, 200, 'the first server still serves');
});
