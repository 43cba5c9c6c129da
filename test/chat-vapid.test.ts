import { execFile } from 'node:child_process';
import { createECDH } from 'node:crypto';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { loadConfig } from '../shared/config/index.ts';

const ROOT = resolve(import.meta.dirname, '..');

t.test('chat vapid - prints a fresh P-256 key pair as environment lines that the config accepts', async (t) => {
  const run = () => promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'bin/chat.ts'), 'vapid'], { cwd: ROOT, timeout: 30_000 });
  const [a, b] = await Promise.all([run(), run()]);
  const env = Object.fromEntries(a.stdout.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]));
  t.strictSame(Object.keys(env), ['VAPID_PUBLIC_KEY', 'VAPID_PRIVATE_KEY', 'VAPID_SUBJECT']);
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(Buffer.from(env['VAPID_PRIVATE_KEY']!, 'base64url'));
  t.equal(ecdh.getPublicKey().toString('base64url'), env['VAPID_PUBLIC_KEY'], 'the public key is the private key\'s');
  t.not(a.stdout, b.stdout, 'a fresh pair each time');
  const config = loadConfig({ NODE_ENV: 'test', ...env });
  t.equal(config.notify.vapid?.publicKey, env['VAPID_PUBLIC_KEY']);
  t.throws(() => loadConfig({ NODE_ENV: 'test', VAPID_PUBLIC_KEY: env['VAPID_PUBLIC_KEY'] }), /set all three or none/);
  t.throws(() => loadConfig({ NODE_ENV: 'test', NOTIFY_ALLOW_NETWORKS: 'localhost' }), /NOTIFY_ALLOW_NETWORKS/);
  t.throws(() => loadConfig({ NODE_ENV: 'test', ...env, VAPID_PUBLIC_KEY: 'abc' }), /VAPID_PUBLIC_KEY: expected/);
  t.throws(() => loadConfig({ NODE_ENV: 'test', ...env, VAPID_PRIVATE_KEY: env['VAPID_PUBLIC_KEY']! }), /VAPID_PRIVATE_KEY: expected/);
});
