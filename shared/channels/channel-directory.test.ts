import t from 'tap';
import { loadConfig } from '../config/index.ts';
import { createChannelDirectory } from './channel-directory.ts';
import { createChannels } from './index.ts';
import { metaSignature } from './signatures.ts';
import { credentialProblem } from './tenant-credentials.ts';

const config = loadConfig({ WHATSAPP_APP_SECRET: 'env-app-secret', CHANNELS_TENANT: 'main', CHANNELS_PER_TENANT: 'true' }).channels;
const body = Buffer.from('{"object":"whatsapp_business_account","entry":[]}');
const signedBy = (secret: string) => ({ 'x-hub-signature-256': metaSignature(secret, body) });

/** A store of tenants' secrets that counts its reads. */
function secretsSource(initial: Record<string, Record<string, string>>) {
  const tenants = new Map(Object.entries(initial));
  const source = {
    reads: 0,
    set: (tenant: string, secrets: Record<string, string>) => tenants.set(tenant, secrets),
    secretsOf: async (tenant: string) => {
      source.reads++;
      return tenants.get(tenant);
    },
  };
  return source;
}

t.test('channel directory - the deployment\'s credentials serve CHANNELS_TENANT; a tenant\'s stored ones serve that tenant only', async (t) => {
  const source = secretsSource({
    acme: { 'whatsapp.appSecret': 'acme-app-secret', 'whatsapp.accessToken': 'acme-token', 'telegram.botToken': '1:acme' /* no secretToken: no Telegram */ },
    main: { 'slack.signingSecret': 'main-slack' },
  });
  const dir = createChannelDirectory({ envTenant: 'main', env: createChannels(config), stored: { secretsOf: source.secretsOf, config } });
  const envWa = await dir.get('main', 'whatsapp');
  t.doesNotThrow(() => envWa!.verify(signedBy('env-app-secret'), body), 'CHANNELS_TENANT: WHATSAPP_APP_SECRET');
  t.ok(await dir.get('main', 'slack'), 'CHANNELS_TENANT: a platform the environment does not configure comes from its stored secrets');
  const acmeWa = await dir.get('acme', 'whatsapp');
  t.doesNotThrow(() => acmeWa!.verify(signedBy('acme-app-secret'), body), "acme: its own app secret");
  t.throws(() => acmeWa!.verify(signedBy('env-app-secret'), body), { code: 'unauthorized' }, "acme: not the deployment's");
  t.equal(await dir.get('acme', 'telegram'), undefined, 'a platform missing a required credential: none');
  t.equal(await dir.get('acme', 'slack'), undefined);
  t.equal(await dir.get('nobody', 'whatsapp'), undefined, 'an unknown tenant: none');
  const reads = source.reads;
  await Promise.all([dir.get('acme', 'whatsapp'), dir.get('acme', 'slack'), dir.get('nobody', 'whatsapp')]);
  t.equal(source.reads, reads, 'remembered, unknown tenants too');
});

t.test('channel directory - a tenant\'s change is seen at once after invalidate here, and within the TTL elsewhere', async (t) => {
  let now = 1_000_000;
  const source = secretsSource({ acme: { 'whatsapp.appSecret': 'first' } });
  const opts = { envTenant: 'main', env: new Map(), stored: { secretsOf: source.secretsOf, config }, ttlMs: 15_000, now: () => now };
  const here = createChannelDirectory(opts);
  const elsewhere = createChannelDirectory(opts);
  const before = (await here.get('acme', 'whatsapp'))!;
  t.doesNotThrow(() => before.verify(signedBy('first'), body));
  await elsewhere.get('acme', 'whatsapp');
  source.set('acme', { 'whatsapp.appSecret': 'second' });
  here.invalidate('acme');
  (await here.get('acme', 'whatsapp'))!.verify(signedBy('second'), body);
  t.pass('this process: the new secret at once');
  const stale = (await elsewhere.get('acme', 'whatsapp'))!;
  t.throws(() => stale.verify(signedBy('second'), body), { code: 'unauthorized' }, 'another process: the old one within the TTL');
  now += 15_001;
  (await elsewhere.get('acme', 'whatsapp'))!.verify(signedBy('second'), body);
  t.pass('another process: the new one after the TTL');
  source.set('acme', {});
  here.invalidate('acme');
  t.equal(await here.get('acme', 'whatsapp'), undefined, 'credentials removed: none');
});

t.test('channel directory - secrets that cannot be read fail the call and are not remembered; without CHANNELS_PER_TENANT only the environment serves', async (t) => {
  let fail = true;
  const dir = createChannelDirectory({
    envTenant: 'main', env: new Map(),
    stored: { secretsOf: async () => { if (fail) throw new Error('store down'); return { 'whatsapp.appSecret': 's' }; }, config },
  });
  await t.rejects(dir.get('acme', 'whatsapp'), /store down/);
  fail = false;
  t.ok(await dir.get('acme', 'whatsapp'), 'read again on the next call');

  const envOnly = createChannelDirectory({ envTenant: 'main', env: createChannels(config) });
  t.ok(await envOnly.get('main', 'whatsapp'));
  t.equal(await envOnly.get('acme', 'whatsapp'), undefined);
});

t.test('channel credentials - values with a form are checked when written', async (t) => {
  t.equal(credentialProblem('whatsapp.phoneNumberId', '1098765432'), undefined);
  t.match(credentialProblem('whatsapp.phoneNumberId', '12/../../x'), /whatsapp.phoneNumberId/);
  t.match(credentialProblem('telegram.secretToken', 'has spaces'), /telegram.secretToken/);
  t.equal(credentialProblem('anything.else', 'has spaces'), undefined);
});
