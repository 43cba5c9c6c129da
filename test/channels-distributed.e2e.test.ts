import t from 'tap';
import { startNatsServer } from './support/nats-server.ts';
import { startChatCluster } from './support/chat-cluster.ts';
import {
  FAKE_ACCESS_TOKEN, FAKE_PAGE_TOKEN, FAKE_PHONE_NUMBER_ID, FAKE_TWILIO_NUMBER, FAKE_TWILIO_SID, FAKE_TWILIO_TOKEN, messengerEvent, messengerWebhook, signMeta, signTwilio,
  startFakePlatforms, twilioInboundForm, whatsappMessageWebhook, type PlatformSend,
} from './support/fake-platforms.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * Channels on JetStream with real processes: `chat api` takes the webhook and is the channel
 * sender, a durable consumer of its own beside the persister's. A kill -9 of the api while a reply
 * waits for its next try: the new api process gets the event once the dead one's ack wait ran out
 * and sends it once; replies already sent are not sent again, and a replayed webhook taken by the
 * new process is still stored once.
 */
const APP_SECRET = 'meta-app-secret-distributed';
const FB_SECRET = 'messenger-app-secret-distributed';
const TWILIO_URL = 'https://chat.example.test/v1/channels/twilio/webhook';
const nats = await startNatsServer();
t.teardown(() => nats.destroy());
const fake = await startFakePlatforms();
t.teardown(() => fake.close());
const cluster = await startChatCluster({
  natsUrl: nats.url, gateways: 1, persisters: 1,
  env: {
    RATE_LIMIT_PER_SECOND: '100',
    WHATSAPP_APP_SECRET: APP_SECRET, WHATSAPP_ACCESS_TOKEN: FAKE_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID: FAKE_PHONE_NUMBER_ID, WHATSAPP_API_BASE: fake.base,
    MESSENGER_APP_SECRET: FB_SECRET, MESSENGER_PAGE_ACCESS_TOKEN: FAKE_PAGE_TOKEN, MESSENGER_API_BASE: fake.base,
    TWILIO_AUTH_TOKEN: FAKE_TWILIO_TOKEN, TWILIO_ACCOUNT_SID: FAKE_TWILIO_SID, TWILIO_FROM_NUMBER: FAKE_TWILIO_NUMBER, TWILIO_WEBHOOK_URL: TWILIO_URL, TWILIO_API_BASE: fake.base,
    // the first retry waits ~5 s: the kill lands while the reply waits for it
    CHANNELS_RETRY_INITIAL_MS: '5000', CHANNELS_RETRY_MAX_MS: '5000', CHANNELS_ACK_WAIT_MS: '1500',
  },
});
t.teardown(() => cluster.stop());
/** The api process that is running: each test's kill -9 replaces it. */
let liveApi = cluster.api;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The text of a send, in each platform's own shape. */
const textOf = (s: PlatformSend): unknown => (s.platform === 'messenger' ? s.body?.message?.text : s.platform === 'twilio' ? s.body?.Body : s.body?.text?.body);
const texts = (text: string, platform: PlatformSend['platform'] = 'whatsapp') => fake.sends.filter((s) => s.platform === platform && textOf(s) === text);

async function webhook(http: string, body: string) {
  const res = await fetch(`${http}/v1/channels/whatsapp/webhook`, {
    method: 'POST', body, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMeta(APP_SECRET, body) },
  });
  return { status: res.status, body: await res.json() as any };
}

t.test('channels on NATS - each reply reaches the platform exactly once across a kill -9 of the api', async (t) => {
  const first = whatsappMessageWebhook('15557654321', 'wamid.DIST1', { type: 'text', text: { body: 'Is anyone there?' } });
  t.same((await webhook(cluster.api.http, first)).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });
  const agent = restClient(`${cluster.api.http}/v1/chat`, await devToken('agent'));
  t.equal((await agent('POST', '/rooms/wa_15557654321/join')).status, 200);

  t.equal((await agent('POST', '/rooms/wa_15557654321/messages', { content: 'reply one' })).status, 201);
  await eventually(async () => texts('reply one').length >= 1, 15_000);

  fake.fail('whatsapp', 500);
  t.equal((await agent('POST', '/rooms/wa_15557654321/messages', { content: 'reply two' })).status, 201);
  await eventually(async () => texts('reply two').length >= 1, 15_000);
  t.equal(texts('reply two')[0]!.status, 500, 'the first try failed; the next waits ~5 s');
  await cluster.api.kill();

  const api = await cluster.add('api');
  liveApi = api;
  await eventually(async () => texts('reply two').some((s) => s.status === 200), 20_000);
  // its logs come through a pipe, possibly after the platform got the request
  t.ok(await eventually(async () => api.output.some((l) => l.includes('channel reply sent'))), 'sent by the new process');

  const agent2 = restClient(`${api.http}/v1/chat`, await devToken('agent'));
  t.equal((await agent2('POST', '/rooms/wa_15557654321/messages', { content: 'reply three' })).status, 201);
  await eventually(async () => texts('reply three').length >= 1, 15_000);
  t.same((await webhook(api.http, first)).body.data, { stored: 0, duplicate: 1, status: 0, ignored: 0 }, 'a replay taken by the new process is a duplicate');

  await sleep(4000);
  t.same(texts('reply one').map((s) => s.status), [200], 'reply one: once');
  t.same(texts('reply two').map((s) => s.status), [500, 200], 'reply two: one failed try, then once from the new process');
  t.same(texts('reply three').map((s) => s.status), [200], 'reply three: once');
  t.equal(fake.sends.filter((s) => s.body?.text?.body === 'Is anyone there?').length, 0, 'the person\'s own message is not sent back');
  const history = await eventually(async () => {
    const h = await agent2('GET', '/rooms/wa_15557654321/messages?limit=50');
    return h.body.data?.messages?.length >= 4 ? h.body.data.messages : undefined;
  }, 10_000);
  t.equal(history.filter((m: any) => m.clientMsgId === 'wamid.DIST1').length, 1, 'the inbound message once in history');
});

async function messengerWebhookPost(http: string, body: string) {
  const res = await fetch(`${http}/v1/channels/messenger/webhook`, {
    method: 'POST', body, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMeta(FB_SECRET, body) },
  });
  return { status: res.status, body: await res.json() as any };
}

async function twilioWebhookPost(http: string, fields: Record<string, string>) {
  const res = await fetch(`${http}/v1/channels/twilio/webhook`, {
    method: 'POST', body: new URLSearchParams(fields).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signTwilio(FAKE_TWILIO_TOKEN, TWILIO_URL, fields) },
  });
  return { status: res.status, text: await res.text() };
}

t.test('channels on NATS - Messenger and SMS replies reach their platform exactly once across a kill -9 of the api', async (t) => {
  const psid = '7771234567890123';
  const fbRoom = `fbm_${psid}`;
  const smsRoom = 'sms_15557654321';
  const firstFb = messengerWebhook(messengerEvent(psid, { message: { mid: 'm_DIST1', text: 'Hello from Messenger' } }));
  t.same((await messengerWebhookPost(liveApi.http, firstFb)).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });
  const firstSms = twilioInboundForm('+15557654321', 'SMdist000000000000000000000000001', { Body: 'Hello by SMS' });
  t.equal((await twilioWebhookPost(liveApi.http, firstSms)).status, 200);
  const agent = restClient(`${liveApi.http}/v1/chat`, await devToken('agent'));
  // the SMS room is made by its first message, which the api took before answering
  t.equal((await agent('POST', `/rooms/${fbRoom}/join`)).status, 200);
  t.equal((await agent('POST', `/rooms/${smsRoom}/join`)).status, 200);

  for (const room of [fbRoom, smsRoom]) t.equal((await agent('POST', `/rooms/${room}/messages`, { content: `${room} one` })).status, 201);
  await eventually(async () => texts(`${fbRoom} one`, 'messenger').length >= 1 && texts(`${smsRoom} one`, 'twilio').length >= 1, 15_000);

  fake.fail('messenger', 500);
  fake.fail('twilio', 500);
  for (const room of [fbRoom, smsRoom]) t.equal((await agent('POST', `/rooms/${room}/messages`, { content: `${room} two` })).status, 201);
  await eventually(async () => texts(`${fbRoom} two`, 'messenger').length >= 1 && texts(`${smsRoom} two`, 'twilio').length >= 1, 15_000);
  await liveApi.kill();

  const api = await cluster.add('api');
  liveApi = api;
  await eventually(async () => texts(`${fbRoom} two`, 'messenger').some((s) => s.status === 200) && texts(`${smsRoom} two`, 'twilio').some((s) => s.status === 201), 20_000);
  const agent2 = restClient(`${api.http}/v1/chat`, await devToken('agent'));
  for (const room of [fbRoom, smsRoom]) t.equal((await agent2('POST', `/rooms/${room}/messages`, { content: `${room} three` })).status, 201);
  // a room's replies go out in order: once "three" is out, "two" was settled and acked
  await eventually(async () => texts(`${fbRoom} three`, 'messenger').length >= 1 && texts(`${smsRoom} three`, 'twilio').length >= 1, 15_000);
  t.same((await messengerWebhookPost(api.http, firstFb)).body.data, { stored: 0, duplicate: 1, status: 0, ignored: 0 }, 'a Messenger replay taken by the new process is a duplicate');
  t.equal((await twilioWebhookPost(api.http, firstSms)).status, 200);

  await sleep(4000);
  t.same(texts(`${fbRoom} one`, 'messenger').map((s) => s.status), [200], 'Messenger reply one: once');
  t.same(texts(`${fbRoom} two`, 'messenger').map((s) => s.status), [500, 200], 'Messenger reply two: one failed try, then once from the new process');
  t.same(texts(`${fbRoom} three`, 'messenger').map((s) => s.status), [200], 'Messenger reply three: once');
  t.same(texts(`${smsRoom} one`, 'twilio').map((s) => s.status), [201], 'SMS reply one: once');
  t.same(texts(`${smsRoom} two`, 'twilio').map((s) => s.status), [500, 201], 'SMS reply two: one failed try, then once from the new process');
  t.same(texts(`${smsRoom} three`, 'twilio').map((s) => s.status), [201], 'SMS reply three: once');
  const smsHistory = await eventually(async () => {
    const h = await agent2('GET', `/rooms/${smsRoom}/messages?limit=50`);
    return h.body.data?.messages?.length >= 4 ? h.body.data.messages : undefined;
  }, 10_000);
  t.equal(smsHistory.filter((m: any) => m.clientMsgId === 'SMdist000000000000000000000000001').length, 1, 'the inbound SMS once in history, its replay too');
});
