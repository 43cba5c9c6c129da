import t from 'tap';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startChatProcess, removeDir } from './support/chat-process.ts';
import {
  FAKE_TWILIO_NUMBER, FAKE_TWILIO_SID, FAKE_TWILIO_TOKEN, signMeta, signTwilio, startFakePlatforms, twilioInboundForm, twilioStatusForm, whatsappMessageWebhook,
} from './support/fake-platforms.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { TestClient } from './support/ws-client.ts';

/**
 * Issue 15, channels per tenant, against `chat all` with no channel variables at all: two tenants
 * each set their own WhatsApp credentials through the tenant admin API and are served on
 * /v1/channels/whatsapp/webhook/{tenantId}. A message signed with one tenant's app secret lands in
 * that tenant's room and is refused on the other's path; an agent's reply goes out with its
 * tenant's token and number only; the secrets are sealed in the store and in no answer or log.
 */
const ACME = { tenant: 'acme', appSecret: 'acme-meta-app-secret-e2e', accessToken: 'EAAacme-access-token-e2e', phoneNumberId: '1110001110', verifyToken: 'acme-verify' };
const GLOBEX = { tenant: 'globex', appSecret: 'globex-meta-app-secret-e2e', accessToken: 'EAAglobex-access-token-e2e', phoneNumberId: '2220002220', verifyToken: 'globex-verify' };
/** The admin API's mask: the last four characters of a value of 12 or more, else nothing. */
const mask = (v: string) => (v.length >= 12 ? `****${v.slice(-4)}` : '****');
const SECRETS = [ACME, GLOBEX].flatMap((x) => [x.appSecret, x.accessToken, x.verifyToken]);

const fake = await startFakePlatforms({ whatsappAccounts: [ACME, GLOBEX] });
t.teardown(() => fake.close());
const srv = await startChatProcess({
  env: { NODE_ID: '', NATS_URL: '', REDIS_URL: '', CASSANDRA_CONTACT_POINTS: '', BUS: 'memory', STORE: 'sqlite', CHANNELS_PER_TENANT: 'true', WHATSAPP_API_BASE: fake.base, TWILIO_API_BASE: fake.base },
});
t.teardown(async () => {
  await srv.kill();
  removeDir(srv.dataDir);
});

async function webhook(tenant: string | undefined, body: string, appSecret: string) {
  const res = await fetch(`${srv.http}/v1/channels/whatsapp/webhook${tenant === undefined ? '' : `/${tenant}`}`, {
    method: 'POST', body, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMeta(appSecret, body) },
  });
  return { status: res.status, body: await res.json() as any };
}

async function configure(x: typeof ACME) {
  const admin = restClient(srv.http, await devToken('boss', { tenant: x.tenant, roles: ['tenant_admin'] }));
  const put = await admin('PUT', `/v1/tenants/${x.tenant}/settings`, {
    secrets: { 'whatsapp.appSecret': x.appSecret, 'whatsapp.accessToken': x.accessToken, 'whatsapp.phoneNumberId': x.phoneNumberId, 'whatsapp.verifyToken': x.verifyToken },
  });
  return { admin, put };
}

t.test('channels per tenant - each tenant\'s credentials, set through the admin API, serve its own path and rooms only', async (t) => {
  for (const x of [ACME, GLOBEX]) {
    const { admin, put } = await configure(x);
    t.equal(put.status, 200, JSON.stringify(put.body));
    const got = await admin('GET', `/v1/tenants/${x.tenant}/settings`);
    t.strictSame(got.body.data.secrets, {
      'whatsapp.appSecret': mask(x.appSecret), 'whatsapp.accessToken': mask(x.accessToken), 'whatsapp.phoneNumberId': '****', 'whatsapp.verifyToken': mask(x.verifyToken),
    }, `${x.tenant}: masked`);
    for (const secret of SECRETS) t.notOk(JSON.stringify(got.body).includes(secret) || JSON.stringify(put.body).includes(secret), 'never in full');
  }

  const check = await fetch(`${srv.http}/v1/channels/whatsapp/webhook/acme?hub.mode=subscribe&hub.verify_token=acme-verify&hub.challenge=4242`);
  t.equal(check.status, 200);
  t.equal(await check.text(), '4242', "the subscription check with the tenant's verify token");
  t.equal((await fetch(`${srv.http}/v1/channels/whatsapp/webhook/acme?hub.mode=subscribe&hub.verify_token=globex-verify&hub.challenge=1`)).status, 403, "another tenant's verify token");

  const body = whatsappMessageWebhook('15551230001', 'wamid.TEN1', { type: 'text', text: { body: 'Hello Acme' } }, 'Ann');
  t.equal((await webhook('globex', body, ACME.appSecret)).status, 401, "acme's signature on globex's path");
  const first = await webhook('acme', body, ACME.appSecret);
  t.equal(first.status, 200, JSON.stringify(first.body));
  t.same(first.body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });

  const acmeAgent = restClient(`${srv.http}/v1/chat`, await devToken('agent', { tenant: 'acme' }));
  const globexAgent = restClient(`${srv.http}/v1/chat`, await devToken('agent', { tenant: 'globex' }));
  t.match((await acmeAgent('GET', '/rooms/wa_15551230001')).body.data, { roomId: 'wa_15551230001', createdBy: 'whatsapp:15551230001' }, "in acme's room");
  t.equal((await globexAgent('GET', '/rooms/wa_15551230001')).status, 404, 'not in globex');

  // unknown tenant, a tenant without WhatsApp credentials, the path without a tenant (no WHATSAPP_* set): one answer
  const kc = restClient(srv.http, await devToken('boss', { tenant: 'kilo', roles: ['tenant_admin'] }));
  t.equal((await kc('PUT', '/v1/tenants/kilo/settings', { secrets: { 'slack.signingSecret': 'kilo-slack-secret' } })).status, 200);
  const unknown = await webhook('nobody', body, ACME.appSecret);
  t.equal(unknown.status, 404);
  t.equal(unknown.body.error.code, 'not_found');
  for (const tenant of ['kilo', undefined]) {
    const other = await webhook(tenant, body, ACME.appSecret);
    t.same({ status: other.status, body: other.body }, { status: unknown.status, body: unknown.body }, `${tenant ?? 'no tenant'}: the same answer as an unknown tenant`);
  }
  t.equal((await fetch(`${srv.http}/v1/channels/whatsapp/webhook/nobody?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1`)).status, 404);

  // live: an agent of acme in the room sees the next message
  t.equal((await acmeAgent('POST', '/rooms/wa_15551230001/join')).status, 200);
  const ws = await TestClient.connect(`${srv.ws}/chat`, { token: await devToken('agent', { tenant: 'acme' }) });
  t.teardown(() => ws.close());
  await ws.next((x) => x.type === 'welcome');
  t.equal((await ws.request({ type: 'join_room', roomId: 'wa_15551230001' })).type, 'ack');
  const second = whatsappMessageWebhook('15551230001', 'wamid.TEN2', { type: 'text', text: { body: 'Still there?' } }, 'Ann');
  t.equal((await webhook('acme', second, ACME.appSecret)).status, 200);
  t.match((await ws.next((x) => x.type === 'new_message' && x.message.clientMsgId === 'wamid.TEN2')).message, { authorId: 'whatsapp:15551230001', content: 'Still there?' });
  const history = await eventually(async () => {
    const h = await acmeAgent('GET', '/rooms/wa_15551230001/messages?limit=50');
    return h.body.data?.messages?.length >= 2 ? h.body.data.messages : undefined;
  });
  t.same(history.map((m: any) => m.clientMsgId).sort(), ['wamid.TEN1', 'wamid.TEN2']);

  // globex's own message, with its own secret, goes to its own room of the same id
  t.equal((await webhook('globex', whatsappMessageWebhook('15551230001', 'wamid.GLX1', { type: 'text', text: { body: 'Hello Globex' } }), GLOBEX.appSecret)).status, 200);
  const globexHistory = await eventually(async () => {
    const h = await globexAgent('GET', '/rooms/wa_15551230001/messages?limit=50');
    return h.body.data?.messages?.length >= 1 ? h.body.data.messages : undefined;
  });
  t.same(globexHistory.map((m: any) => m.content), ['Hello Globex'], "globex's room holds globex's message only");

  // acme's agent answers: out with acme's token from acme's number, once; nothing with globex's
  const reply = await acmeAgent('POST', '/rooms/wa_15551230001/messages', { content: 'Yes, Acme here.' });
  t.equal(reply.status, 201);
  const sent = await ws.next((x) => x.type === 'message_status' && x.status === 'sent' && x.messageId === reply.body.data.message.messageId);
  t.match(sent, { channel: 'whatsapp', platformMessageId: /^wamid\.OUT/ });
  // a second reply in the same room goes out after the first was settled: once it is there, a
  // repeat of the first would have been too
  const later = await acmeAgent('POST', '/rooms/wa_15551230001/messages', { content: 'Anything else?' });
  t.equal(later.status, 201);
  await eventually(async () => fake.sends.some((s) => s.body?.text?.body === 'Anything else?'));
  const out = fake.sends.filter((s) => s.platform === 'whatsapp');
  t.same(out.map((s) => [s.body.text.body, s.path, s.authorization, s.status]), [
    ['Yes, Acme here.', `/v21.0/${ACME.phoneNumberId}/messages`, `Bearer ${ACME.accessToken}`, 200],
    ['Anything else?', `/v21.0/${ACME.phoneNumberId}/messages`, `Bearer ${ACME.accessToken}`, 200],
  ], "each reply once, with acme's credentials");
  t.notOk(fake.sends.some((s) => s.path.includes(GLOBEX.phoneNumberId) || s.authorization?.includes(GLOBEX.accessToken)), "nothing with globex's");

  const doc = await (await fetch(`${srv.http}/v1/openapi.json`)).json() as { paths: Record<string, any> };
  for (const platform of ['whatsapp', 'telegram', 'slack']) {
    t.same(doc.paths[`/v1/channels/${platform}/webhook/{tenantId}`]?.post?.security, [], `${platform}: the tenant path is documented, without a bearer token`);
  }
  t.ok(doc.paths['/v1/channels/whatsapp/webhook/{tenantId}'].get, 'its subscription check too');
});

t.test('channels per tenant - Twilio: the signature covers the tenant\'s own public URL, and its replies call back there', async (t) => {
  const publicUrl = 'https://chat.example.test/v1/channels/twilio/webhook/smsco';
  const admin = restClient(srv.http, await devToken('boss', { tenant: 'smsco', roles: ['tenant_admin'] }));
  const bad = await admin('PUT', '/v1/tenants/smsco/settings', { secrets: { 'twilio.authToken': FAKE_TWILIO_TOKEN, 'twilio.fromNumber': '15005550006' } });
  t.equal(bad.status, 400, 'a number that is not E.164');
  t.equal((await admin('PUT', '/v1/tenants/smsco/settings', {
    secrets: { 'twilio.authToken': FAKE_TWILIO_TOKEN, 'twilio.webhookUrl': publicUrl, 'twilio.accountSid': FAKE_TWILIO_SID, 'twilio.fromNumber': FAKE_TWILIO_NUMBER },
  })).status, 200);
  const post = (fields: Record<string, string>, signedUrl: string, query = '') => fetch(`${srv.http}/v1/channels/twilio/webhook/smsco${query}`, {
    method: 'POST', body: new URLSearchParams(fields).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signTwilio(FAKE_TWILIO_TOKEN, signedUrl, fields) },
  });
  const form = twilioInboundForm('+15557770001', 'SMtenant0001', { Body: 'Hi SMS co' });
  t.equal((await post(form, 'https://chat.example.test/v1/channels/twilio/webhook')).status, 401, 'signed over another URL');
  const ok = await post(form, publicUrl);
  t.equal(ok.status, 200);
  t.match(await ok.text(), /<Response><\/Response>/, 'TwiML');
  const agent = restClient(`${srv.http}/v1/chat`, await devToken('agent', { tenant: 'smsco' }));
  const history = await eventually(async () => {
    const h = await agent('GET', '/rooms/sms_15557770001/messages?limit=50');
    return h.body.data?.messages?.length >= 1 ? h.body.data.messages : undefined;
  });
  t.match(history, [{ authorId: 'twilio:15557770001', content: 'Hi SMS co' }], "in smsco's room");

  t.equal((await agent('POST', '/rooms/sms_15557770001/join')).status, 200);
  const reply = await agent('POST', '/rooms/sms_15557770001/messages', { content: 'Hello from SMS co' });
  t.equal(reply.status, 201);
  const out = await eventually(async () => fake.sends.find((s) => s.platform === 'twilio' && s.body?.Body === 'Hello from SMS co'));
  t.equal(out.status, 201, "sent with smsco's account");
  const callback = new URL(out.body.StatusCallback);
  t.equal(`${callback.origin}${callback.pathname}`, publicUrl, "the status callback is the tenant's URL");
  const status = twilioStatusForm('+15557770001', 'SMtenantOUT1', 'delivered');
  t.equal((await post(status, publicUrl + callback.search, callback.search)).status, 200, 'its status callback verifies on the tenant path');
});

t.test('channels per tenant - the secrets are sealed in the store under a 0600 key file, and in no log line', async (t) => {
  t.equal(statSync(join(srv.dataDir, 'secrets.key')).mode & 0o777, 0o600, 'the embedded key file, made on first start');
  const db = new Database(join(srv.dataDir, 'chat.db'), { readonly: true });
  t.teardown(() => db.close());
  const rows = db.prepare('SELECT tenant, body FROM tenants').all() as Array<{ tenant: string; body: string }>;
  t.same(rows.map((r) => r.tenant).sort(), ['acme', 'globex', 'kilo', 'smsco']);
  for (const row of rows) {
    for (const secret of [...SECRETS, 'kilo-slack-secret', FAKE_TWILIO_TOKEN]) t.notOk(row.body.includes(secret), `${row.tenant}: no secret in the clear`);
    for (const value of Object.values(JSON.parse(row.body).secrets as Record<string, string>)) t.match(value, /^v1:[0-9a-f]{8}:/);
  }
  const logs = srv.output.join('\n');
  t.ok(logs.includes('channel reply sent'), 'the process did log its work');
  for (const secret of [...SECRETS, 'kilo-slack-secret', FAKE_TWILIO_TOKEN]) t.notOk(logs.includes(secret), 'no secret in the logs');
  t.notOk(logs.includes(await import('node:fs').then((fs) => fs.readFileSync(join(srv.dataDir, 'secrets.key'), 'utf8').trim())), 'nor the key');
});
