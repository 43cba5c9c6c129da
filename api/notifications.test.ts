import { createECDH, randomBytes } from 'node:crypto';
import t from 'tap';
import { startApiHarness } from '../test/support/api-harness.ts';

/** A browser-like subscription's keys: an uncompressed P-256 point and 16 bytes of auth. */
function browserKeys(): { p256dh: string; auth: string } {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') };
}

// public addresses by IP literal: accepted without DNS
const PUBLIC_URL = 'https://93.184.216.34/hooks/chat';

t.test('notification prefs - defaults, set, validated, per user', async (t) => {
  const h = await startApiHarness();
  t.teardown(() => h.close());
  const ann = h.as('ann');
  t.strictSame((await ann.get('/me/notifications')).data, { level: 'all', mutedRooms: [] }, 'defaults before any put');
  const put = await ann.put('/me/notifications', { level: 'mentions', mutedRooms: ['general', 'random'] });
  t.equal(put.status, 200);
  t.strictSame((await ann.get('/me/notifications')).data, { level: 'mentions', mutedRooms: ['general', 'random'] });
  t.strictSame((await h.as('ben').get('/me/notifications')).data, { level: 'all', mutedRooms: [] }, "another user's are their own");
  for (const body of [{ level: 'loud' }, { level: 'all', mutedRooms: ['not a room id!'] }, { level: 'all', mutedRooms: ['a', 'a'] }, {}]) {
    const r = await ann.put('/me/notifications', body);
    t.equal(r.status, 400, `refused: ${JSON.stringify(body)}`);
    t.equal(r.error?.code, 'bad_request');
  }
});

t.test('webhooks - SSRF: loopback, metadata, private, link-local addresses and other schemes get 400; a public one is registered', async (t) => {
  const h = await startApiHarness();
  t.teardown(() => h.close());
  const ann = h.as('ann');
  for (const url of [
    'http://127.0.0.1:8080/hook', 'http://localhost/hook', 'http://169.254.169.254/latest/meta-data/', 'http://10.1.2.3/',
    'http://192.168.1.10/', 'http://172.16.0.1/', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://0.0.0.0/', 'http://[fe80::1]/',
    'ftp://93.184.216.34/', 'file:///etc/passwd', 'gopher://93.184.216.34/', 'not a url',
  ]) {
    const r = await ann.post('/webhooks', { url });
    t.equal(r.status, 400, `refused: ${url}`);
    t.equal(r.error?.code, 'bad_request');
  }
  t.strictSame((await ann.get('/webhooks')).data.webhooks, [], 'nothing was stored');
  const ok = await ann.post('/webhooks', { url: PUBLIC_URL });
  t.equal(ok.status, 201);
  t.match(ok.data, { webhookId: /^wh_/, scope: 'user', url: PUBLIC_URL, status: 'active', consecutiveFailures: 0, secret: /^whsec_.{40,}/ });
});

t.test('webhooks - the secret is shown once; GET shows a hint and the health; tenant webhooks need the admin role', async (t) => {
  const h = await startApiHarness();
  t.teardown(() => h.close());
  const ann = h.as('ann');
  const created = (await ann.post('/webhooks', { url: PUBLIC_URL })).data;
  const got = await ann.get(`/webhooks/${created.webhookId}`);
  t.equal(got.status, 200);
  t.notOk('secret' in got.data, 'no secret after creation');
  t.equal(got.data.secretHint, `whsec_…${created.secret.slice(-4)}`);
  t.notOk(JSON.stringify((await ann.get('/webhooks')).data).includes(created.secret), 'the list never shows it');
  t.equal((await h.as('ben').get(`/webhooks/${created.webhookId}`)).status, 404, "another user's webhook is not found");

  const refused = await ann.post('/webhooks', { url: PUBLIC_URL, scope: 'tenant' });
  t.equal(refused.status, 403, 'a tenant webhook without the admin role');
  t.equal(refused.error?.code, 'forbidden');
  const admin = h.as('boss', 'acme', ['admin']);
  const tenantHook = await admin.post('/webhooks', { url: PUBLIC_URL, scope: 'tenant' });
  t.equal(tenantHook.status, 201);
  t.equal(tenantHook.data.scope, 'tenant');
  t.strictSame((await admin.get('/webhooks')).data.webhooks.map((w: { webhookId: string }) => w.webhookId), [tenantHook.data.webhookId]);
  t.equal((await ann.get(`/webhooks/${tenantHook.data.webhookId}`)).status, 404, 'a member cannot see the tenant webhook');
  t.equal((await h.as('boss', 'other', ['admin']).get(`/webhooks/${tenantHook.data.webhookId}`)).status, 404, "another tenant's admin neither");
  t.strictSame((await admin.del(`/webhooks/${tenantHook.data.webhookId}`)).data, { deleted: true });
  t.equal((await admin.get(`/webhooks/${tenantHook.data.webhookId}`)).status, 404);
});

t.test('push subscriptions - stored per user; a malformed key gets 400; the VAPID key route says when push is off', async (t) => {
  const h = await startApiHarness();
  t.teardown(() => h.close());
  const ann = h.as('ann');
  const endpoint = 'https://93.184.216.34/push/abc';
  const keys = browserKeys();
  const made = await ann.post('/push/subscriptions', { endpoint, expirationTime: null, keys });
  t.equal(made.status, 201);
  t.equal(made.data.endpoint, endpoint);
  t.strictSame((await ann.get('/push/subscriptions')).data.subscriptions.map((s: { endpoint: string }) => s.endpoint), [endpoint]);
  t.strictSame((await h.as('ben').get('/push/subscriptions')).data.subscriptions, [], "another user's are their own");

  const offCurve = Buffer.alloc(65, 1);
  offCurve[0] = 4;
  for (const [what, bad] of [
    ['p256dh too short', { ...keys, p256dh: Buffer.alloc(33, 2).toString('base64url') }],
    ['p256dh not on the curve', { ...keys, p256dh: offCurve.toString('base64url') }],
    ['p256dh not base64url', { ...keys, p256dh: '!!!!' }],
    ['auth too short', { ...keys, auth: randomBytes(8).toString('base64url') }],
    ['auth missing', { p256dh: keys.p256dh }],
  ] as const) {
    const r = await ann.post('/push/subscriptions', { endpoint: 'https://93.184.216.34/push/other', keys: bad });
    t.equal(r.status, 400, what);
    t.equal(r.error?.code, 'bad_request', what);
  }
  const ssrf = await ann.post('/push/subscriptions', { endpoint: 'http://169.254.169.254/push', keys });
  t.equal(ssrf.status, 400, 'an endpoint at the metadata address');
  t.equal((await ann.get('/push/subscriptions')).data.subscriptions.length, 1, 'nothing more was stored');

  t.equal((await ann.del(`/push/subscriptions?endpoint=${encodeURIComponent(endpoint)}`)).status, 200);
  t.strictSame((await ann.get('/push/subscriptions')).data.subscriptions, []);
  t.equal((await ann.del(`/push/subscriptions?endpoint=${encodeURIComponent(endpoint)}`)).status, 404, 'gone already');
  const vapid = await ann.get('/push/vapid-public-key');
  t.equal(vapid.status, 404, 'no VAPID keys configured here');
});
