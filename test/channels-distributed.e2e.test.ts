import t from 'tap';
import { startNatsServer } from './support/nats-server.ts';
import { startChatCluster } from './support/chat-cluster.ts';
import {
  FAKE_ACCESS_TOKEN, FAKE_BOT_TOKEN, FAKE_PAGE_TOKEN, FAKE_PHONE_NUMBER_ID, FAKE_SLACK_TOKEN, FAKE_TWILIO_NUMBER, FAKE_TWILIO_SID, FAKE_TWILIO_TOKEN, messengerEvent,
  messengerWebhook, signMeta, signSlack, signTwilio, slackMessageEvent, startFakePlatforms, telegramMessageUpdate, twilioInboundForm, whatsappMessageWebhook,
  type FakePlatform, type PlatformSend,
} from './support/fake-platforms.ts';
import { createSqliteStore } from '../shared/store/index.ts';
import { roomKey } from '../shared/domain/index.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * Channels on JetStream with real processes: `chat api` takes the webhook and is the channel
 * sender, a durable consumer of its own beside the persister's. A kill -9 of the api while a reply
 * waits for its next try: the new api process gets the event once the dead one's ack wait ran out
 * and sends it once; replies already sent are not sent again, and a replayed webhook taken by the
 * new process is still stored once. A kill -9 of the persister: replies still go out, each once
 * (the sender reads the stream, not the store), and a new persister stores each once. Every
 * platform: WhatsApp, Messenger, SMS, Telegram and Slack.
 */
const APP_SECRET = 'meta-app-secret-distributed';
const FB_SECRET = 'messenger-app-secret-distributed';
const TG_SECRET = 'tg_secret-distributed';
const SLACK_SECRET = 'slack-signing-secret-distributed';
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
    TELEGRAM_BOT_TOKEN: FAKE_BOT_TOKEN, TELEGRAM_SECRET_TOKEN: TG_SECRET, TELEGRAM_API_BASE: fake.base,
    SLACK_SIGNING_SECRET: SLACK_SECRET, SLACK_BOT_TOKEN: FAKE_SLACK_TOKEN, SLACK_API_BASE: fake.base,
    // the first retry waits ~5 s: the kill lands while the reply waits for it
    CHANNELS_RETRY_INITIAL_MS: '5000', CHANNELS_RETRY_MAX_MS: '5000', CHANNELS_ACK_WAIT_MS: '1500',
  },
});
t.teardown(() => cluster.stop());
/** The api process that is running: each test's kill -9 replaces it. */
let liveApi = cluster.api;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The text of a send, in each platform's own shape. */
const textOf = (s: PlatformSend): unknown => {
  switch (s.platform) {
    case 'messenger': return s.body?.message?.text;
    case 'twilio': return s.body?.Body;
    case 'whatsapp': return s.body?.text?.body;
    default: return s.body?.text;
  }
};
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

async function telegramWebhookPost(http: string, body: string) {
  const res = await fetch(`${http}/v1/channels/telegram/webhook`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': TG_SECRET } });
  return { status: res.status, body: await res.json() as any };
}

async function slackWebhookPost(http: string, body: string) {
  const ts = String(Math.floor(Date.now() / 1000));
  const res = await fetch(`${http}/v1/channels/slack/webhook`, {
    method: 'POST', body, headers: { 'content-type': 'application/json', 'x-slack-signature': signSlack(SLACK_SECRET, ts, body), 'x-slack-request-timestamp': ts },
  });
  return { status: res.status, body: await res.json() as any };
}

/** A conversation on each platform besides WhatsApp: its room, and the person's first message (made and replayed through its webhook). */
const PSID = '7771234567890123';
const conversations: Array<{ platform: FakePlatform; room: string; ok: number; inbound: (http: string) => Promise<number> }> = [
  { platform: 'messenger', room: `fbm_${PSID}`, ok: 200, inbound: async (http) => (await messengerWebhookPost(http, messengerWebhook(messengerEvent(PSID, { message: { mid: 'm_DIST1', text: 'Hello from Messenger' } })))).status },
  { platform: 'twilio', room: 'sms_15557654321', ok: 201, inbound: async (http) => (await twilioWebhookPost(http, twilioInboundForm('+15557654321', 'SMdist000000000000000000000000001', { Body: 'Hello by SMS' }))).status },
  { platform: 'telegram', room: 'tg_60606', ok: 200, inbound: async (http) => (await telegramWebhookPost(http, telegramMessageUpdate(70001, 60606, 1, { text: 'Hello from Telegram' }))).status },
  { platform: 'slack', room: 'sl_D0DIST01', ok: 200, inbound: async (http) => (await slackWebhookPost(http, slackMessageEvent('D0DIST01', 'U0DIST', '1700000001.000100', { text: 'Hello from Slack' }))).status },
];
const inboundIds: Record<string, string> = { messenger: 'm_DIST1', twilio: 'SMdist000000000000000000000000001', telegram: '60606:1', slack: 'D0DIST01:1700000001.000100' };
const allSent = (suffix: string) => async () => conversations.every((c) => texts(`${c.room} ${suffix}`, c.platform).some((s) => s.status === c.ok));

t.test('channels on NATS - Messenger, SMS, Telegram and Slack replies reach their platform exactly once across a kill -9 of the api', async (t) => {
  for (const c of conversations) t.equal(await c.inbound(liveApi.http), 200, `${c.platform}: the first message is taken`);
  const agent = restClient(`${liveApi.http}/v1/chat`, await devToken('agent'));
  // each room is made by its first message, which the api took before answering
  for (const c of conversations) t.equal((await agent('POST', `/rooms/${c.room}/join`)).status, 200, `${c.room}: joined`);

  for (const c of conversations) t.equal((await agent('POST', `/rooms/${c.room}/messages`, { content: `${c.room} one` })).status, 201);
  await eventually(allSent('one'), 15_000);

  for (const c of conversations) fake.fail(c.platform, 500);
  for (const c of conversations) t.equal((await agent('POST', `/rooms/${c.room}/messages`, { content: `${c.room} two` })).status, 201);
  await eventually(async () => conversations.every((c) => texts(`${c.room} two`, c.platform).length >= 1), 15_000);
  await liveApi.kill();

  const api = await cluster.add('api');
  liveApi = api;
  await eventually(allSent('two'), 20_000);
  const agent2 = restClient(`${api.http}/v1/chat`, await devToken('agent'));
  for (const c of conversations) t.equal((await agent2('POST', `/rooms/${c.room}/messages`, { content: `${c.room} three` })).status, 201);
  // a room's replies go out in order: once "three" is out, "two" was settled and acked
  await eventually(allSent('three'), 15_000);
  for (const c of conversations) t.equal(await c.inbound(api.http), 200, `${c.platform}: a replay taken by the new process`);

  await sleep(4000);
  for (const c of conversations) {
    t.same(texts(`${c.room} one`, c.platform).map((s) => s.status), [c.ok], `${c.platform} reply one: once`);
    t.same(texts(`${c.room} two`, c.platform).map((s) => s.status), [500, c.ok], `${c.platform} reply two: one failed try, then once from the new process`);
    t.same(texts(`${c.room} three`, c.platform).map((s) => s.status), [c.ok], `${c.platform} reply three: once`);
  }
  for (const c of conversations) {
    const history = await eventually(async () => {
      const h = await agent2('GET', `/rooms/${c.room}/messages?limit=50`);
      return h.body.data?.messages?.length >= 4 ? h.body.data.messages : undefined;
    }, 10_000);
    t.equal(history.filter((m: any) => m.clientMsgId === inboundIds[c.platform]).length, 1, `${c.platform}: the inbound message once in history, its replay too`);
  }
});

t.test('channels on NATS - replies posted while the persister is dead (and as it was killed) reach each platform once and are stored once by the next', async (t) => {
  const rooms = [{ platform: 'whatsapp' as const, room: 'wa_15557654321', ok: 200 }, ...conversations];
  const agent = restClient(`${liveApi.http}/v1/chat`, await devToken('agent'));
  // posted and at once the persister is killed: some of these may be stored, some not yet
  for (const c of rooms) t.equal((await agent('POST', `/rooms/${c.room}/messages`, { content: `${c.room} mid-kill` })).status, 201);
  await cluster.persisters[0]!.kill();
  for (const c of rooms) t.equal((await agent('POST', `/rooms/${c.room}/messages`, { content: `${c.room} while down` })).status, 201, `${c.room}: taken with no persister running`);
  await eventually(async () => rooms.every((c) => ['mid-kill', 'while down'].every((x) => texts(`${c.room} ${x}`, c.platform).some((s) => s.status === c.ok))), 15_000);

  await cluster.add('persister');
  const store = createSqliteStore({ dataDir: cluster.dataDir });
  t.teardown(() => store.close());
  const stored = async (room: string) => (await store.history(roomKey('default', room), { limit: 100 })).map((m) => m.content);
  await eventually(async () => {
    for (const c of rooms) {
      const contents = await stored(c.room);
      if (!contents.includes(`${c.room} mid-kill`) || !contents.includes(`${c.room} while down`)) return false;
    }
    return true;
  }, 20_000);

  await sleep(2000);
  for (const c of rooms) {
    for (const x of ['mid-kill', 'while down']) {
      t.same(texts(`${c.room} ${x}`, c.platform).map((s) => s.status), [c.ok], `${c.platform} "${x}": sent once`);
      t.equal((await stored(c.room)).filter((m) => m === `${c.room} ${x}`).length, 1, `${c.platform} "${x}": stored once`);
    }
  }
});
