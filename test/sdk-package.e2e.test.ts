import t from 'tap';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { devToken } from './support/tokens.ts';

/**
 * The SDK as another project gets it: `npm run build:sdk`, `npm pack`, the tarball unpacked into a
 * scratch project's node_modules (no network: its one runtime dependency, msgpackr, is linked
 * from ours), then plain JavaScript imports `chat-svc/client` and talks to `chat all` running as
 * a real process, and a TypeScript file type-checks against the packed declarations.
 */
const ROOT = resolve(import.meta.dirname, '..');
const OUR_MODULES = realpathSync(join(ROOT, 'node_modules'));
const run = promisify(execFile);
const STEP_MS = 60_000;
/** Plain node for every step: no loader hooks inherited from the test runner. */
const { NODE_OPTIONS: _hooks, ...PLAIN_ENV } = process.env;

/** Runs a command; rejects with its output when it fails or takes longer than a step may. */
async function sh(file: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(file, args, { cwd, timeout: STEP_MS, maxBuffer: 16 * 1024 * 1024, env: { ...PLAIN_ENV, npm_config_update_notifier: 'false' } });
    return stdout;
  } catch (err) {
    const e = err as { message: string; stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

function link(scratch: string, name: string): void {
  const at = join(scratch, 'node_modules', name);
  mkdirSync(resolve(at, '..'), { recursive: true });
  symlinkSync(join(OUR_MODULES, name), at, 'dir');
}

interface PackResult { filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }

const work = mkdtempSync(join(tmpdir(), 'chat-sdk-pack-'));
const scratch = join(work, 'scratch');
let srv: ChatProcess | undefined;

t.teardown(async () => {
  await srv?.kill();
  if (srv) removeDir(srv.dataDir);
  rmSync(work, { recursive: true, force: true });
});

t.test('sdk package - builds, packs and is imported by a scratch project', async (t) => {
  await sh('npm', ['run', '-s', 'build:sdk'], ROOT);
  const [pack] = JSON.parse(await sh('npm', ['pack', '--json', '--ignore-scripts', '--offline', '--pack-destination', work], ROOT)) as PackResult[];
  const files = pack!.files.map((f) => f.path).sort();

  t.ok(files.includes('package.json') && files.includes('README.md'), 'package.json and README are in the tarball');
  for (const f of ['dist/sdk/shared/client/index.js', 'dist/sdk/shared/client/index.d.ts', 'dist/sdk/shared/protocol/errors.js', 'dist/sdk/shared/ids/snowflake.js']) {
    t.ok(files.includes(f), `${f} is in the tarball`);
  }
  t.strictSame(files.filter((f) => !(f.startsWith('dist/sdk/') || ['package.json', 'README.md', 'bin/chat.js'].includes(f))), [],
    'nothing but the SDK build, package.json, README and the bin entry');
  t.strictSame(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), [], 'no TypeScript sources');
  t.strictSame(files.filter((f) => f.includes('.test.')), [], 'no tests');
  t.ok(pack!.size < 100_000, `the tarball is small (${pack!.size} bytes)`);

  // The tarball unpacked as npm would install it, without asking a registry for its dependencies.
  mkdirSync(join(scratch, 'node_modules'), { recursive: true });
  await sh('tar', ['-xzf', join(work, pack!.filename), '-C', join(scratch, 'node_modules')], work);
  renameSync(join(scratch, 'node_modules', 'package'), join(scratch, 'node_modules', 'chat-svc'));
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  copyFileSync(join(ROOT, 'test/support/sdk-consumer.mjs'), join(scratch, 'consumer.mjs'));
  link(scratch, 'ws');
  const manifest = JSON.parse(readFileSync(join(scratch, 'node_modules/chat-svc/package.json'), 'utf8')) as { exports: Record<string, unknown> };
  t.ok(manifest.exports['./client'], 'the package exports ./client');

  srv = await startChatProcess({ env: { PERSIST_INTERVAL_MS: '20' } });
  const [alice, bob] = await Promise.all([devToken('alice'), devToken('bob')]);
  const roomId = `sdk_${process.pid}`;
  const consumer = async (...args: string[]) => JSON.parse(await sh(process.execPath, [join(scratch, 'consumer.mjs'), ...args], scratch)) as Record<string, any>;

  // First without msgpackr anywhere the scratch project can see: a JSON client must not need it.
  const json = await consumer('json', srv.http, roomId, alice);
  t.equal(json['error'], undefined, 'the JSON run went through');
  t.equal(json['sdk'], pathToFileURL(join(realpathSync(scratch), 'node_modules/chat-svc/dist/sdk/shared/client/index.js')).href,
    'chat-svc/client resolves to the unpacked package, not to this repository');
  t.equal(json['msgpackrResolvable'], false, 'msgpackr is not installed in the scratch project');
  t.strictSame(json['backoff'], [50, 100, 200, 400, 500], 'backoffDelay: doubling, capped, jitter applied');
  t.strictSame(json['retryable'], { rate_limited: true, unavailable: true, forbidden: false, bad_frame: false, not_a_code: false },
    'ChatClientError.retryable follows the error registry');
  t.equal(json['isRetryable'], true);
  t.equal(json['clientMsgIds'], 2, 'client message ids differ');
  t.equal(json['createdRoom'], roomId, 'REST through the packed ChatRest');
  t.strictSame(json['welcome'], { type: 'welcome', userId: 'alice', format: 'json', rooms: [roomId] }, 'welcome over a JSON WebSocket');
  t.equal(json['ack']?.duplicate, false);
  t.match(json['ack']?.messageId, /^\d+$/, 'the send was acked with a message id');
  t.strictSame(json['received'], { messageId: json['ack']?.messageId, author: 'alice' }, 'and the sender received its own message');
  t.strictSame(json['refused'], { isChatClientError: true, code: 'not_found' }, 'a refused request rejects with the server\'s code');

  // Then with msgpackr: the lazily loaded codec works from the built files too.
  link(scratch, 'msgpackr');
  const packed = await consumer('msgpack', srv.http, roomId, alice, bob);
  t.equal(packed['error'], undefined, 'the msgpack run went through');
  t.strictSame(packed['welcome'], { type: 'welcome', userId: 'bob', format: 'msgpack' }, 'welcome over a msgpack WebSocket');
  t.equal(packed['joined'], true);
  t.strictSame(packed['history'], ['hello from the tarball'], 'history over REST');
  t.strictSame(packed['received'], { messageId: packed['received']?.messageId, sameAsAck: true, author: 'alice' }, 'another user\'s message arrived over msgpack');
});

t.test('sdk package - the packed declarations type-check a consumer', async (t) => {
  // Declarations refer to the protocol's schema types, from a dependency of the package.
  link(scratch, '@sinclair/typebox');
  writeFileSync(join(scratch, 'app.ts'), [
    `import { ChatClient, ChatClientError, backoffDelay, type ChatClientOptions, type Message } from 'chat-svc/client';`,
    `const options: ChatClientOptions = { url: 'http://localhost:8080', token: () => 'token', WebSocket: null, format: 'msgpack' };`,
    `const chat = new ChatClient(options);`,
    `chat.on('message', (f) => { const m: Message = f.message; console.log(m.content.toUpperCase(), f.seq + 1); });`,
    `chat.send('room', 'hi').then((ack) => ack.messageId.length, (e: unknown) => e instanceof ChatClientError && e.code);`,
    `const delay: number = backoffDelay(1, { initialDelayMs: 1, maxDelayMs: 2, factor: 2, jitter: 0 });`,
    `// @ts-expect-error a number is not a token: the declarations are real types, not any`,
    `new ChatClient({ url: 'x', token: delay });`,
    '',
  ].join('\n'));
  writeFileSync(join(scratch, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2023', 'dom'], types: [], strict: true, noEmit: true, skipLibCheck: false,
    },
    files: ['app.ts'],
  }));
  const tsc = join(OUR_MODULES, 'typescript/bin/tsc');
  const out = await sh(process.execPath, [tsc, '-p', scratch], scratch).catch((err: Error) => err.message);
  t.equal(out.trim(), '', 'tsc found no errors');
});
