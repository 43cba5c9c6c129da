import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createSqliteStore, type Store } from '../store/index.ts';
import { silentLogger } from '../telemetry/index.ts';
import { createTestKeyspace, testContactPoints } from '../../test/support/cassandra-keyspace.ts';
import { aesGcmCipher, createSecretCipher, TenantSecrets } from './index.ts';

const TOKEN = 'EAAG-whatsapp-access-token-0123456789';
const APP_SECRET = 'meta-app-secret-abcdef';

function tempDir(t: import('tap').Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'chat-secrets-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** What the store holds for a tenant, as its bytes: the tenant record's JSON. */
async function sealingChecks(t: import('tap').Test, store: Store, rawBody: (tenant: string) => Promise<string>) {
  const key = randomBytes(32);
  const vault = new TenantSecrets(store, aesGcmCipher({ current: key, previous: [] }));
  await vault.update('acme', (r) => ({ ...r, config: { note: 'kept as is' }, secrets: { 'whatsapp.accessToken': TOKEN, 'whatsapp.appSecret': APP_SECRET } }));
  const raw = await rawBody('acme');
  t.notOk(raw.includes(TOKEN) || raw.includes(APP_SECRET), 'no secret in the stored row');
  t.match(JSON.parse(raw).secrets, { 'whatsapp.accessToken': /^v1:[0-9a-f]{8}:/, 'whatsapp.appSecret': /^v1:/ });
  t.ok(raw.includes('kept as is'), 'the rest of the record as it was');
  t.same((await vault.read('acme'))?.secrets, { 'whatsapp.accessToken': TOKEN, 'whatsapp.appSecret': APP_SECRET }, 'read back in the clear');
  t.equal(await vault.read('nobody'), undefined);

  // a record written before sealing existed: plain values read, and are sealed on its next write
  const now = new Date().toISOString();
  await store.putTenant({ tenant: 'legacy', quotas: {}, config: {}, secrets: { 'telegram.botToken': '123:legacy-bot-token' }, createdAt: now, updatedAt: now });
  t.same((await vault.read('legacy'))?.secrets, { 'telegram.botToken': '123:legacy-bot-token' }, 'a plain legacy value reads');
  await vault.update('legacy', (r) => ({ ...r, quotas: { rooms: 3 } }));
  const rewritten = await rawBody('legacy');
  t.notOk(rewritten.includes('legacy-bot-token'), 'sealed by a write that changed something else');
  t.same((await vault.read('legacy'))?.secrets, { 'telegram.botToken': '123:legacy-bot-token' });

  // a rotation: the old key previous; a write seals again under the new key
  const newKey = randomBytes(32);
  const rotated = new TenantSecrets(store, aesGcmCipher({ current: newKey, previous: [key] }));
  t.same((await rotated.read('acme'))?.secrets['whatsapp.accessToken'], TOKEN, 'the previous key reads');
  await rotated.update('acme', (r) => r);
  t.same((await new TenantSecrets(store, aesGcmCipher({ current: newKey, previous: [] })).read('acme'))?.secrets['whatsapp.accessToken'], TOKEN, 'rewritten under the new key alone');

  // without a key: quotas still change (secrets left as stored), a new secret is refused
  const keyless = new TenantSecrets(store, aesGcmCipher({ current: undefined, previous: [] }));
  await store.putTenant({ tenant: 'plain-co', quotas: {}, config: {}, secrets: { 'slack.botToken': 'xoxb-plain' }, createdAt: now, updatedAt: now });
  await keyless.update('plain-co', (r) => ({ ...r, quotas: { rooms: 1 } }));
  t.same(await store.getTenant('plain-co').then((r) => r?.quotas), { rooms: 1 });
  await t.rejects(keyless.update('plain-co', (r) => ({ ...r, secrets: { ...r.secrets, 'slack.signingSecret': 'new' } })), { name: 'SecretsError', reason: 'no_key', code: 'unavailable' });
  await t.rejects(keyless.read('acme'), { name: 'SecretsError', reason: 'unknown_key' }, 'a sealed value without its key is refused, not shown');
}

t.test('tenant secrets - SQLite: the row holds sealed values, never the secret; legacy plain values read and are sealed on the next write', async (t) => {
  const dir = tempDir(t);
  const store = createSqliteStore({ dataDir: dir });
  t.teardown(() => store.close());
  const raw = new Database(join(dir, 'chat.db'), { readonly: true });
  t.teardown(() => raw.close());
  await sealingChecks(t, store, async (tenant) => (raw.prepare('SELECT body FROM tenants WHERE tenant = ?').get(tenant) as { body: string }).body);
});

const contactPoints = testContactPoints();
if (contactPoints.length === 0) {
  t.test('tenant secrets - Cassandra: the row holds sealed values', { skip: 'neither CHAT_TEST_CASSANDRA nor CASSANDRA_CONTACT_POINTS is set' }, async () => undefined);
} else {
  t.test('tenant secrets - Cassandra: the row holds sealed values, never the secret', async (t) => {
    const ks = await createTestKeyspace(contactPoints, { localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? 'datacenter1' });
    t.teardown(() => ks.drop());
    const store = await ks.open({ empty: true });
    t.teardown(() => store.close());
    const cassandra = (await import('cassandra-driver')).default;
    const client = new cassandra.Client({ contactPoints, localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? 'datacenter1' });
    t.teardown(() => client.shutdown());
    await sealingChecks(t, store, async (tenant) => String((await client.execute(`SELECT body FROM ${ks.keyspace}.tenants WHERE tenant = ?`, [tenant], { prepare: true })).first()?.['body']));
  });
}

t.test('secrets key - embedded: a key file made once, 0600, the same key on the next start; distributed without SECRETS_KEY seals nothing', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'nested', 'secrets.key');
  const first = await createSecretCipher({ source: 'file', path, previousKeys: [] }, silentLogger());
  t.equal(statSync(path).mode & 0o777, 0o600, 'readable by its owner only');
  const sealed = first.seal('token', 'ctx');
  const again = await createSecretCipher({ source: 'file', path, previousKeys: [] }, silentLogger());
  t.equal(again.open(sealed, 'ctx'), 'token', 'the same key after a restart');
  t.match(readFileSync(path, 'utf8'), /^[A-Za-z0-9+/]{43}=\n$/, 'base64, as SECRETS_KEY takes it');

  const key = randomBytes(32).toString('hex');
  const fromEnv = await createSecretCipher({ source: 'env', key, previousKeys: [readFileSync(path, 'utf8')] }, silentLogger());
  t.equal(fromEnv.open(sealed, 'ctx'), 'token', 'moving to SECRETS_KEY: the file\'s key as SECRETS_KEY_PREVIOUS');
  const none = await createSecretCipher({ source: 'none', previousKeys: [] }, silentLogger());
  t.equal(none.canSeal, false);
  t.throws(() => none.seal('x', 'ctx'), { name: 'SecretsError', reason: 'no_key' });
});
