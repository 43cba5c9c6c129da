import t from 'tap';
import { Writable } from 'node:stream';
import { startApiHarness } from '../test/support/api-harness.ts';
import { createLogger } from '../shared/telemetry/index.ts';
import { roomKey } from '../shared/domain/index.ts';
import { aesGcmCipher } from '../shared/secrets/index.ts';

// every line the api logs, at every level, to prove an API key or a secret is in none of them
let logged = '';
const sink = new Writable({ write(chunk, _enc, done) { logged += String(chunk); done(); } });
const h = await startApiHarness({ log: createLogger('trace', {}, sink), env: { TENANT_MAX_ROOMS: '7' } });
t.teardown(() => h.close());

const bearer = async (userId: string, tenant: string, roles: string[] = []) => ({ authorization: `Bearer ${await h.tokenWith(userId, tenant, roles)}` });
const admin = (tenant: string) => bearer('boss', tenant, ['tenant_admin']);
const withKey = (tenant: string, key: string) => ({ authorization: `Bearer ${key}`, 'x-tenant-id': tenant });

async function createKey(tenant: string, name = 'crm') {
  const r = await h.call('POST', `/v1/tenants/${tenant}/api-keys`, { headers: await admin(tenant), body: { name } });
  if (r.status !== 201) throw new Error(`key not created: ${JSON.stringify(r.body)}`);
  return r.data as { keyId: string; key: string; prefix: string };
}

t.test('tenants - the admin API answers only a tenant admin of that tenant', async (t) => {
  const paths = ['/v1/tenants/acme/quotas', '/v1/tenants/acme/settings', '/v1/tenants/acme/api-keys'];
  for (const path of paths) {
    t.equal((await h.call('GET', path)).status, 401, `${path}: no token`);
    const member = await h.call('GET', path, { headers: await bearer('alice', 'acme') });
    t.equal(member.status, 403, `${path}: a token without a tenant admin role`);
    t.equal(member.error?.code, 'forbidden');
    const other = await h.call('GET', path, { headers: await admin('globex') });
    t.equal(other.status, 403, `${path}: another tenant's admin`);
    t.equal((await h.call('GET', path, { headers: await admin('acme') })).status, 200, `${path}: the tenant's admin`);
    t.equal((await h.call('GET', path, { headers: await bearer('root', 'acme', ['admin']) })).status, 200, `${path}: the admin role too`);
  }
  const put = await h.call('PUT', '/v1/tenants/acme/quotas', { headers: await admin('globex'), body: { rooms: 1 } });
  t.equal(put.status, 403, 'writes too');
  t.equal(put.error?.code, 'forbidden');
});

t.test('tenants - quotas: defaults from config, the tenant\'s own values, null back to the default', async (t) => {
  const headers = await admin('quota-co');
  const first = await h.call('GET', '/v1/tenants/quota-co/quotas', { headers });
  t.strictSame(first.data, { quotas: { rooms: 7, membersPerRoom: 0, messagesPerSecond: 0, aiRequestsPerMinute: 0 }, overrides: {} });
  const set = await h.call('PUT', '/v1/tenants/quota-co/quotas', { headers, body: { rooms: 3, membersPerRoom: 10 } });
  t.equal(set.status, 200);
  t.strictSame(set.data, { quotas: { rooms: 3, membersPerRoom: 10, messagesPerSecond: 0, aiRequestsPerMinute: 0 }, overrides: { rooms: 3, membersPerRoom: 10 } });
  const reset = await h.call('PUT', '/v1/tenants/quota-co/quotas', { headers, body: { rooms: null, aiRequestsPerMinute: 5 } });
  t.strictSame(reset.data.overrides, { membersPerRoom: 10, aiRequestsPerMinute: 5 }, 'null resets, a quota left out stays');
  t.equal(reset.data.quotas.rooms, 7);
  t.strictSame((await h.call('GET', '/v1/tenants/quota-co/quotas', { headers })).data, reset.data, 'stored');
  for (const body of [{ rooms: -1 }, { rooms: 1.5 }, { unknown: 1 }, { rooms: 'many' }]) {
    const bad = await h.call('PUT', '/v1/tenants/quota-co/quotas', { headers, body });
    t.equal(bad.status, 400, JSON.stringify(body));
    t.equal(bad.error?.code, 'bad_request');
  }
});

t.test('tenants - settings: config as stored, secrets masked on every read and in no log', async (t) => {
  const headers = await admin('secret-co');
  const long = 'EAAG-whatsapp-token-0123456789abcdef';
  const short = 'tg-short';
  const put = await h.call('PUT', '/v1/tenants/secret-co/settings', {
    headers, body: { config: { whatsapp: { phoneNumberId: '1234' } }, secrets: { whatsappToken: long, telegramSecret: short } },
  });
  t.equal(put.status, 200);
  t.strictSame(put.data.config, { whatsapp: { phoneNumberId: '1234' } });
  t.strictSame(put.data.secrets, { whatsappToken: '****cdef', telegramSecret: '****' }, 'masked, short ones wholly');
  const got = await h.call('GET', '/v1/tenants/secret-co/settings', { headers });
  t.strictSame(got.data.secrets, put.data.secrets);
  t.notOk(JSON.stringify(got.body).includes(long) || JSON.stringify(got.body).includes(short), 'never in full');
  const stored = await h.store.getTenant('secret-co');
  t.match(stored?.secrets['whatsappToken'], /^v1:[0-9a-f]{8}:/, 'sealed in the store');
  t.notOk(JSON.stringify(stored).includes(long), 'never in the clear there');

  const removed = await h.call('PUT', '/v1/tenants/secret-co/settings', { headers, body: { secrets: { telegramSecret: null } } });
  t.strictSame(removed.data.secrets, { whatsappToken: '****cdef' }, 'null removes a secret, one left out stays');
  t.strictSame(removed.data.config, { whatsapp: { phoneNumberId: '1234' } }, 'config left as it was');
  const bad = await h.call('PUT', '/v1/tenants/secret-co/settings', { headers, body: { secrets: { 'bad name': 'x' } } });
  t.equal(bad.status, 400);
  const badId = await h.call('PUT', '/v1/tenants/secret-co/settings', { headers, body: { secrets: { 'whatsapp.phoneNumberId': '12/../x' } } });
  t.equal(badId.status, 400, 'a channel credential of the wrong form');
  t.match(badId.error?.message, /whatsapp.phoneNumberId/);
  t.equal((await h.call('GET', '/v1/tenants/secret-co/settings', { headers: await admin('acme') })).status, 403, "another tenant's admin");
  t.notOk(logged.includes(long) || logged.includes(short), 'no secret in the logs');
  t.ok(logged.length > 0, 'the api did log');
});

t.test('tenants - API keys: shown once, listed without the key, stored hashed', async (t) => {
  const headers = await admin('keys-co');
  const created = await createKey('keys-co', 'crm sync');
  t.match(created, { keyId: /^[0-9a-f]{16}$/, name: 'crm sync', createdBy: 'boss' });
  t.match(created.key, /^ctk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  t.equal(created.prefix, `ctk_${created.keyId}_`);
  const list = await h.call('GET', '/v1/tenants/keys-co/api-keys', { headers });
  t.equal(list.data.apiKeys.length, 1);
  t.notOk(JSON.stringify(list.body).includes(created.key.slice(22)), 'the list never shows the key');
  const stored = await h.store.getApiKey('keys-co', created.keyId);
  t.notOk(JSON.stringify(stored).includes(created.key.slice(22)), 'the store holds no key in clear');
  t.equal((await h.call('GET', '/v1/tenants/keys-co/api-keys', { headers: await admin('acme') })).status, 403, "another tenant's admin");
  const missing = await h.call('DELETE', '/v1/tenants/keys-co/api-keys/0123456789abcdef', { headers });
  t.equal(missing.status, 404);
  t.equal(missing.error?.code, 'not_found');
});

t.test('tenants - an API key with X-Tenant-ID acts as the tenant\'s service', async (t) => {
  const { key } = await createKey('svc-co');
  const me = await h.call('GET', '/v1/chat/me', { headers: withKey('svc-co', key) });
  t.equal(me.status, 200);
  t.match(me.data, { tenant: 'svc-co', roles: ['tenant_service'], userId: /^service:/ });
  const room = await h.call('POST', '/v1/chat/rooms', { headers: withKey('svc-co', key), body: { name: 'support', type: 'public' } });
  t.equal(room.status, 201, 'it can create rooms');
  const sent = await h.call('POST', `/v1/chat/rooms/${room.data.roomId}/messages`, { headers: withKey('svc-co', key), body: { content: 'hello from the CRM' } });
  t.equal(sent.status, 201, 'and send messages');
  t.equal((await h.store.getRoom(roomKey('svc-co', room.data.roomId)))?.tenant, 'svc-co', 'in its own tenant');
  t.equal(sent.data.authorId ?? sent.data.message?.authorId, me.data.userId, 'written by the service');
  const manage = await h.call('GET', '/v1/tenants/svc-co/quotas', { headers: withKey('svc-co', key) });
  t.equal(manage.status, 403, 'a key does not manage the tenant');
});

t.test('tenants - API keys refused: wrong key, revoked key, another tenant, unknown tenant, no X-Tenant-ID, in the URL', async (t) => {
  const a = await createKey('key-a');
  const b = await createKey('key-b');
  const refused = async (headers: Record<string, string>, status: number, code: string, what: string, path = '/v1/chat/me') => {
    const r = await h.call('GET', path, { headers });
    t.equal(r.status, status, what);
    t.equal(r.error?.code, code, what);
    return r;
  };
  const wrong = a.key.slice(0, -4) + (a.key.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  const r = await refused(withKey('key-a', wrong), 401, 'unauthorized', 'a wrong secret');
  t.notOk(JSON.stringify(r.body).includes(wrong.slice(22)), 'the answer does not repeat the key');
  await refused(withKey('key-a', 'ctk_garbage'), 401, 'unauthorized', 'a malformed key');
  await refused(withKey('key-a', b.key), 401, 'unauthorized', "another tenant's key");
  await refused(withKey('nobody-here', a.key), 404, 'not_found', 'an unknown tenant');
  await refused({ authorization: `Bearer ${a.key}` }, 401, 'unauthorized', 'no X-Tenant-ID');

  t.equal((await h.call('GET', '/v1/chat/me', { headers: withKey('key-a', a.key) })).status, 200, 'the right key works');
  const revoked = await h.call('DELETE', `/v1/tenants/key-a/api-keys/${a.keyId}`, { headers: await admin('key-a') });
  t.equal(revoked.status, 200);
  t.ok(revoked.data.revokedAt, 'revoked');
  await refused(withKey('key-a', a.key), 401, 'unauthorized', 'a revoked key');
  t.equal((await h.call('DELETE', `/v1/tenants/key-a/api-keys/${a.keyId}`, { headers: await admin('key-a') })).data.revokedAt, revoked.data.revokedAt, 'revoking again changes nothing');
  t.equal((await h.call('GET', '/v1/chat/me', { headers: withKey('key-b', b.key) })).status, 200, "the other tenant's key still works");

  for (const k of [a.key, b.key, wrong]) t.notOk(logged.includes(k.slice(22)), 'no key (nor its secret part) in the logs');
});

t.test('tenants - a token with X-Tenant-ID must be of that tenant', async (t) => {
  const same = await h.call('GET', '/v1/chat/me', { headers: { ...(await bearer('alice', 'acme')), 'x-tenant-id': 'acme' } });
  t.equal(same.status, 200, "the token's own tenant (seed 003 sends both)");
  const other = await h.call('GET', '/v1/chat/me', { headers: { ...(await bearer('alice', 'acme')), 'x-tenant-id': 'globex' } });
  t.equal(other.status, 403);
  t.equal(other.error?.code, 'forbidden');
});

t.test('tenants - without a secrets key a secret cannot be written (503), and quotas still can', async (t) => {
  const keyless = await startApiHarness({ secrets: aesGcmCipher({ current: undefined, previous: [] }) });
  t.teardown(() => keyless.close());
  const headers = { authorization: `Bearer ${await keyless.tokenWith('boss', 'nokey-co', ['tenant_admin'])}` };
  const put = await keyless.call('PUT', '/v1/tenants/nokey-co/settings', { headers, body: { secrets: { 'slack.botToken': 'xoxb-never-stored' } } });
  t.equal(put.status, 503);
  t.equal(put.error?.code, 'unavailable');
  t.match(put.error?.message, /SECRETS_KEY/);
  t.equal(await keyless.store.getTenant('nokey-co'), undefined, 'nothing stored');
  t.equal((await keyless.call('PUT', '/v1/tenants/nokey-co/quotas', { headers, body: { rooms: 2 } })).status, 200);
});
