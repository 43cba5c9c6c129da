import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, ConfigError } from '../shared/config/index.ts';
import { createAuthenticator } from '../shared/auth/index.ts';
import { migrateStore } from '../shared/store/index.ts';
import { createLogger } from '../shared/telemetry/index.ts';
import { ChatError } from '../shared/protocol/index.ts';

const program = new Command()
  .name('chat')
  .description('chat-svc: real-time chat server (gateway, api and persister tiers)')
  .showHelpAfterError();

program.command('all')
  .description('run gateway + api + persister in one process on one port (the default for npm start)')
  .action(async () => (await import('./all.ts')).runAll());

program.command('gateway')
  .description('run the WebSocket gateway tier')
  .action(async () => (await import('../gateway/main.ts')).main());

program.command('api')
  .description('run the REST api tier')
  .action(async () => (await import('../api/main.ts')).main());

program.command('persister')
  .description('run the persister tier (stream -> store in batches)')
  .action(async () => (await import('../persister/main.ts')).main());

program.command('token')
  .description('print a signed token for a user (HS256 secret only: the dev secret or JWT_SECRET)')
  .argument('<user>', 'user id (the sub claim)')
  .option('--name <name>', 'display name (default: the user id)')
  .option('--tenant <tenant>', 'tenant (default: DEFAULT_TENANT)')
  .option('--roles <roles>', 'comma-separated roles claim', (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean))
  .option('--ttl <seconds>', 'lifetime in seconds', (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('a positive whole number of seconds');
    return n;
  }, 24 * 3600)
  .action(async (user: string, opts: { name?: string; tenant?: string; roles?: string[]; ttl: number }) => {
    const config = loadConfig();
    const auth = await createAuthenticator(config.auth);
    const token = await auth.sign({ sub: user, ...(opts.name ? { name: opts.name } : {}), ...(opts.tenant ? { tenant: opts.tenant } : {}), ...(opts.roles ? { roles: opts.roles } : {}) }, opts.ttl);
    process.stdout.write(token + '\n');
  });

program.command('migrate')
  .description('create or upgrade the store schema, then exit')
  .action(async () => {
    const config = loadConfig();
    const log = createLogger(config.logLevel, { service: 'chat-svc', tier: 'migrate' });
    process.stderr.write(`${await migrateStore(config.store, log)}\n`);
  });

program.command('vapid')
  .description('print a fresh VAPID key pair for Web Push, as environment lines (for development; keep the private key secret)')
  .action(async () => {
    const { default: webpush } = await import('web-push');
    const keys = webpush.generateVAPIDKeys();
    process.stdout.write(`VAPID_PUBLIC_KEY=${keys.publicKey}\nVAPID_PRIVATE_KEY=${keys.privateKey}\nVAPID_SUBJECT=mailto:admin@example.com\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`chat: ${err.message}\n`);
    process.exit(2);
  }
  // Our own errors say what went wrong and what to do; a stack would only hide that.
  if (err instanceof ChatError) {
    process.stderr.write(`chat: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`chat: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
