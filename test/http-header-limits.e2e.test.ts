import t from 'tap';
import net from 'node:net';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';

/**
 * Issue 12, finding 7: what oversized request headers meet. uWebSockets.js parses headers before
 * any of our code runs and cannot be told to answer 431, so these tests pin what it does instead
 * (README, "Limits"): a header block too large is cut without an answer, one with too many lines
 * is never answered and is closed when the HTTP idle timeout (10 s) passes, and neither holds up
 * anyone else.
 */
let srv: ChatProcess;
t.before(async () => { srv = await startChatProcess(); });
t.teardown(async () => {
  await srv?.kill();
  if (srv) removeDir(srv.dataDir);
});

interface Outcome { answer: string; ended: 'closed' | 'reset' | 'still open'; ms: number }

/** Sends raw bytes (in pieces `chunk` bytes apart when given) and reports what came back and how the connection ended. */
function raw(request: string, waitMs: number, chunk?: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect(srv.port, '127.0.0.1');
    const started = Date.now();
    let answer = '';
    const done = (ended: Outcome['ended']) => { clearTimeout(timer); socket.destroy(); resolve({ answer, ended, ms: Date.now() - started }); };
    const timer = setTimeout(() => done('still open'), waitMs);
    socket.on('data', (d) => { answer += d.toString('latin1'); });
    socket.on('error', () => done('reset'));
    socket.on('close', () => done('closed'));
    if (!chunk) return void socket.write(request);
    socket.setNoDelay(true);
    const send = (from: number) => {
      if (from >= request.length || socket.destroyed) return;
      socket.write(request.slice(from, from + chunk));
      setTimeout(() => send(from + chunk), 5);
    };
    send(0);
  });
}

const get = (headers: string[]) => `GET /health HTTP/1.1\r\nHost: x\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;
const lines = (n: number) => Array.from({ length: n }, (_, i) => `X-Line-${i}: v`);

t.test('http limits - an ordinary header block, even one arriving in pieces, is served', async (t) => {
  const r = await raw(get([`X-Pad: ${'a'.repeat(3 * 1024)}`, ...lines(40)]), 10_000, 1024);
  t.match(r.answer, /^HTTP\/1\.1 200 /);
});

t.test('http limits - a 256 KB header is cut without an answer, at once', async (t) => {
  const r = await raw(get([`X-Big: ${'a'.repeat(256 * 1024)}`]), 10_000);
  t.equal(r.answer, '', 'uWebSockets.js sends nothing (it has no 431)');
  t.not(r.ended, 'still open');
});

t.test('http limits - 49 header lines get no answer and are closed by the idle timeout; a neighbour is served meanwhile', async (t) => {
  // Host, 47 of ours and Connection: 49 header lines, one more than uWebSockets.js parses
  const stuck = raw(get(lines(47)), 30_000);
  const neighbour = await fetch(`${srv.http}/health`);
  t.equal(neighbour.status, 200, 'the neighbour is answered while the other request waits');
  const r = await stuck;
  t.equal(r.answer, '', 'never answered');
  t.equal(r.ended, 'closed', 'closed by the server, not left open');
  t.ok(r.ms >= 5_000, `after the idle timeout (${r.ms} ms)`);
  t.equal(srv.child.exitCode, null, 'the process lives');
  const one = await raw(get(lines(46)), 10_000);
  t.match(one.answer, /^HTTP\/1\.1 200 /, '48 header lines are still served');
});
