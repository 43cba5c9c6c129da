import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';

/**
 * The README's "Try it" as a reader pastes it: the token line and the curl block run as one shell
 * script, as fast as the shell runs them (no sleep between the send and the history read), against
 * `chat all` (what `npm start` runs). The history it prints must hold the message just sent.
 */
const ROOT = resolve(import.meta.dirname, '..');

/** The bash blocks of the README's "Try it" section that talk to the server, in order. */
function tryItScript(port: number): string {
  const readme = readFileSync(resolve(ROOT, 'README.md'), 'utf8');
  const section = /^## Try it\n([\s\S]*?)^## /m.exec(readme)?.[1];
  if (!section) throw new Error('README has no "## Try it" section');
  const blocks = [...section.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!);
  if (blocks.length < 2) throw new Error('the "Try it" section lost its token and curl blocks');
  return blocks.join('\n').replaceAll('localhost:8080', `127.0.0.1:${port}`);
}

function runShell(script: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn('bash', ['-e', '-c', script], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('exit', (code) => resolveRun({ code, stdout, stderr }));
  });
}

let srv: ChatProcess;
t.before(async () => {
  srv = await startChatProcess({ env: { NODE_ENV: 'development' } });
});
t.teardown(async () => {
  await srv?.kill();
  if (srv) removeDir(srv.dataDir);
});

t.test('readme - the quick start pasted as one block shows the message in the history it prints', async (t) => {
  const script = tryItScript(srv.port);
  t.match(script, /curl -s -X POST .*\/messages/, 'the script sends a message');
  const run = await runShell(script, { DATA_DIR: srv.dataDir });
  t.equal(run.code, 0, `the script ran: ${run.stderr}`);
  // every curl prints one JSON document on one line, without a newline between them
  const history = run.stdout.slice(run.stdout.lastIndexOf('{"success"'));
  const body = JSON.parse(history) as { success: boolean; data: { messages: Array<{ content: string }> } };
  t.equal(body.success, true);
  t.strictSame(body.data.messages.map((m) => m.content), ['Hello world!'], 'the message sent a moment before is in history');
});
