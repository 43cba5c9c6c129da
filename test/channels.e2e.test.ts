import t, { type Test } from 'tap';
import {
  FAKE_ACCESS_TOKEN, FAKE_BOT_TOKEN, FAKE_PHONE_NUMBER_ID, FAKE_SLACK_TOKEN, signMeta, signSlack, slackMessageEvent, telegramMessageUpdate, whatsappMessageWebhook, whatsappStatusWebhook,
  type FakePlatforms,
} from './support/fake-platforms.ts';
import { agentInRoom, channelsFixture, postMetaWebhook, type ChannelsFixture } from './support/channels-fixture.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { TestClient } from './support/ws-client.ts';

/**
 * Issue 15, channels end to end: `chat all` as a real process with WhatsApp and Telegram pointed
 * at a local server speaking both send APIs, and webhooks sent to it as the platforms send them
 * (signed over the raw body, or with the secret token header).
 */
const APP_SECRET = 'meta-app-secret-for-e2e';
const TG_SECRET = 'tg_secret-e2e';
const SLACK_SECRET = 'slack-signing-secret-e2e';
const env = (fake: FakePlatforms): Record<string, string> => ({
  WHATSAPP_APP_SECRET: APP_SECRET, WHATSAPP_VERIFY_TOKEN: 'verify-e2e', WHATSAPP_ACCESS_TOKEN: FAKE_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID: FAKE_PHONE_NUMBER_ID,
  WHATSAPP_API_BASE: fake.base, TELEGRAM_BOT_TOKEN: FAKE_BOT_TOKEN, TELEGRAM_SECRET_TOKEN: TG_SECRET, TELEGRAM_API_BASE: fake.base,
  SLACK_SIGNING_SECRET: SLACK_SECRET, SLACK_BOT_TOKEN: FAKE_SLACK_TOKEN, SLACK_API_BASE: fake.base,
});

type Fixture = ChannelsFixture;
const fixture = (t: Test): Promise<Fixture> => channelsFixture(t, env);
const postWhatsapp = (f: Fixture, body: string, signature?: string | null) => postMetaWebhook(f, 'whatsapp', body, APP_SECRET, signature);

async function postTelegram(f: Fixture, body: string, secret: string | null = TG_SECRET) {
  const res = await fetch(`${f.srv.http}/v1/channels/telegram/webhook`, {
    method: 'POST', body, headers: { 'content-type': 'application/json', ...(secret ? { 'x-telegram-bot-api-secret-token': secret } : {}) },
  });
  return { status: res.status, body: await res.json() as any };
}

t.test('channels - the WhatsApp subscription check echoes hub.challenge only for the verify token', async (t) => {
  const f = await fixture(t);
  const ok = await fetch(`${f.srv.http}/v1/channels/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=verify-e2e&hub.challenge=1158201444`);
  t.equal(ok.status, 200);
  t.equal(await ok.text(), '1158201444');
  const bad = await fetch(`${f.srv.http}/v1/channels/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1`);
  t.equal(bad.status, 403);
  const doc = await (await fetch(`${f.srv.http}/v1/openapi.json`)).json() as { paths: Record<string, any> };
  for (const platform of ['whatsapp', 'telegram', 'slack']) {
    t.same(doc.paths[`/v1/channels/${platform}/webhook`]?.post?.security, [], `${platform}: documented, without a bearer token`);
  }
  t.ok(doc.paths['/v1/channels/whatsapp/webhook'].get, 'the subscription check is documented');
});

t.test('channels - a bad or missing signature is refused with 401 and nothing is stored', async (t) => {
  const f = await fixture(t);
  const agent = restClient(`${f.srv.http}/v1/chat`, await devToken('agent'));
  const body = whatsappMessageWebhook('15550001111', 'wamid.BAD1', { type: 'text', text: { body: 'forged' } });
  t.equal((await postWhatsapp(f, body, signMeta('not-the-secret', body))).status, 401);
  const missing = await postWhatsapp(f, body, null);
  t.equal(missing.status, 401);
  t.equal(missing.body.error.code, 'unauthorized');
  t.equal((await postTelegram(f, telegramMessageUpdate(1, 777, 1, { text: 'forged' }), 'wrong-secret')).status, 401);
  t.equal((await postTelegram(f, telegramMessageUpdate(1, 777, 1, { text: 'forged' }), null)).status, 401);
  t.equal((await agent('GET', '/rooms/wa_15550001111')).status, 404, 'no WhatsApp room was made');
  t.equal((await agent('GET', '/rooms/tg_777')).status, 404, 'no Telegram room was made');
});

t.test('channels - a signed WhatsApp message lands in its room\'s history and live on an agent\'s socket; a replay is stored once', async (t) => {
  const f = await fixture(t);
  const agent = restClient(`${f.srv.http}/v1/chat`, await devToken('agent'));
  const first = whatsappMessageWebhook('15551234567', 'wamid.IN1', { type: 'text', text: { body: 'Where is my order?' } }, 'Ann');
  const res = await postWhatsapp(f, first);
  t.equal(res.status, 200, JSON.stringify(res.body));
  t.same(res.body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });
  const room = await agent('GET', '/rooms/wa_15551234567');
  t.equal(room.status, 200);
  t.match(room.body.data, { roomId: 'wa_15551234567', createdBy: 'whatsapp:15551234567', tags: ['channel', 'channel:whatsapp', 'external:15551234567'] });
  t.equal((await agent('POST', '/rooms/wa_15551234567/join')).status, 200);

  const ws = await TestClient.connect(`${f.srv.ws}/chat`, { token: await devToken('agent') });
  t.teardown(() => ws.close());
  await ws.next((x) => x.type === 'welcome');
  t.equal((await ws.request({ type: 'join_room', roomId: 'wa_15551234567' })).type, 'ack');
  const image = whatsappMessageWebhook('15551234567', 'wamid.IN2', { type: 'image', image: { id: 'MEDIA42', mime_type: 'image/jpeg', caption: 'the parcel' } }, 'Ann');
  t.equal((await postWhatsapp(f, image)).status, 200);
  const live = await ws.next((x) => x.type === 'new_message' && x.message.clientMsgId === 'wamid.IN2');
  t.match(live.message, {
    authorId: 'whatsapp:15551234567', type: 'image', content: 'the parcel',
    attachments: [{ id: 'MEDIA42', url: 'whatsapp-media:MEDIA42', mimeType: 'image/jpeg' }], metadata: { channel: 'whatsapp', externalUserId: '15551234567' },
  });

  const replay = await postWhatsapp(f, first);
  t.equal(replay.status, 200);
  t.same(replay.body.data, { stored: 0, duplicate: 1, status: 0, ignored: 0 }, 'the replayed webhook is a duplicate');
  const history = await eventually(async () => {
    const h = await agent('GET', '/rooms/wa_15551234567/messages?limit=50');
    return h.body.data?.messages?.length >= 2 ? h.body.data.messages : undefined;
  });
  t.same(history.map((m: any) => m.clientMsgId).sort(), ['wamid.IN1', 'wamid.IN2'], 'each platform message once');
});

t.test('channels - a Telegram update with the secret token lands in its room; a replay is stored once', async (t) => {
  const f = await fixture(t);
  const agent = restClient(`${f.srv.http}/v1/chat`, await devToken('agent'));
  const update = telegramMessageUpdate(5001, 4242, 17, { location: { latitude: 48.85, longitude: 2.35 } });
  t.same((await postTelegram(f, update)).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });
  t.same((await postTelegram(f, update)).body.data, { stored: 0, duplicate: 1, status: 0, ignored: 0 });
  const history = await eventually(async () => {
    const h = await agent('GET', '/rooms/tg_4242/messages?limit=50');
    return h.body.data?.messages?.length >= 1 ? h.body.data.messages : undefined;
  });
  t.equal(history.length, 1);
  t.match(history[0], { authorId: 'telegram:4242', authorName: 'Tess Gram', content: '📍 48.85,2.35', metadata: { location: { latitude: 48.85, longitude: 2.35 } } });

  const press = JSON.stringify({
    update_id: 5002, callback_query: { id: 'cbq-77', from: { id: 4242, first_name: 'Tess' }, message: { message_id: 18, chat: { id: 4242, type: 'private' } }, data: 'track:123' },
  });
  t.same((await postTelegram(f, press)).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });
  t.match(f.fake.sends, [{ path: `/bot${FAKE_BOT_TOKEN}/answerCallbackQuery`, body: { callback_query_id: 'cbq-77' } }], 'the button press is answered');
  const pressed = await eventually(async () => {
    const h = await agent('GET', '/rooms/tg_4242/messages?limit=50');
    return h.body.data?.messages?.find((m: any) => m.clientMsgId === 'callback:cbq-77');
  });
  t.match(pressed, { content: 'track:123', metadata: { button: { data: 'track:123' } } });
});


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('channels - an agent\'s reply reaches the WhatsApp send API once, and the platform\'s statuses come back as message_status', async (t) => {
  const f = await fixture(t);
  t.equal((await postWhatsapp(f, whatsappMessageWebhook('15551234567', 'wamid.Q1', { type: 'text', text: { body: 'Hello?' } }))).status, 200);
  const { agent, ws } = await agentInRoom(t, f, 'wa_15551234567');
  const sent = await agent('POST', '/rooms/wa_15551234567/messages', { content: 'Hi Ann, it ships today.' });
  t.equal(sent.status, 201, JSON.stringify(sent.body));
  const messageId: string = sent.body.data.message.messageId;
  t.match(messageId, /^[0-9]+$/);
  const out = await eventually(async () => f.fake.sends.find((s) => s.platform === 'whatsapp'));
  t.match(out, {
    path: `/v21.0/${FAKE_PHONE_NUMBER_ID}/messages`, authorization: `Bearer ${FAKE_ACCESS_TOKEN}`,
    body: { messaging_product: 'whatsapp', to: '15551234567', type: 'text', text: { body: 'Hi Ann, it ships today.' }, biz_opaque_callback_data: messageId },
  });
  const sentStatus = await ws.next((x) => x.type === 'message_status' && x.status === 'sent');
  t.match(sentStatus, { roomId: 'wa_15551234567', messageId, userId: 'whatsapp:15551234567', channel: 'whatsapp', platformMessageId: 'wamid.OUT1' });
  t.equal((await postWhatsapp(f, whatsappStatusWebhook('15551234567', 'wamid.OUT1', 'read', messageId))).body.data.status, 1);
  t.match(await ws.next((x) => x.type === 'message_status' && x.status === 'read'), { messageId, platformMessageId: 'wamid.OUT1' });
  await sleep(500);
  t.equal(f.fake.sends.length, 1, 'sent once; the person\'s own messages are not echoed back');
});

t.test('channels - a Telegram send answered 429 then 500 is retried; one that keeps failing is dead-lettered with a log line and a metric', async (t) => {
  const f = await fixture(t);
  t.equal((await postTelegram(f, telegramMessageUpdate(1, 4242, 1, { text: 'hi' }))).status, 200);
  const { agent, ws } = await agentInRoom(t, f, 'tg_4242');
  f.fake.fail('telegram', 429, 500);
  t.equal((await agent('POST', '/rooms/tg_4242/messages', { content: 'first answer' })).status, 201);
  await eventually(async () => f.fake.sends.some((s) => s.status === 200));
  t.same(f.fake.sends.map((s) => [s.body.text, s.status]), [['first answer', 429], ['first answer', 500], ['first answer', 200]]);
  t.same(f.fake.sends[2]!.body, { chat_id: '4242', text: 'first answer' });

  f.fake.fail('telegram', 500, 500, 500);
  const doomed = await agent('POST', '/rooms/tg_4242/messages', { content: 'second answer' });
  const failed = await ws.next((x) => x.type === 'message_status' && x.status === 'failed', 10_000);
  t.equal(failed.messageId, doomed.body.data.message.messageId);
  t.equal(f.fake.sends.filter((s) => s.body.text === 'second answer').length, 3, 'CHANNELS_MAX_ATTEMPTS tries');
  // the process writes its logs through a pipe: the line may come after the frame
  const line = await eventually(async () => f.srv.output.find((l) => l.includes('channel reply dead-lettered')));
  t.match(JSON.parse(line), { platform: 'telegram', roomId: 'tg_4242', attempts: 3, error: /HTTP 500/ }, 'a log line');
  t.notMatch(line, FAKE_BOT_TOKEN, 'without the bot token');
  const metricsText = await (await fetch(`${f.srv.http}/metrics`)).text();
  t.match(metricsText, /chat_channel_dead_letters_total\{platform="telegram"\} 1/);
  await sleep(300);
  t.equal(f.fake.sends.filter((s) => s.body.text === 'second answer').length, 3, 'not tried again');
});

async function postSlack(f: Fixture, body: string, opts: { ageSec?: number; secret?: string } = {}) {
  const ts = String(Math.floor(Date.now() / 1000) - (opts.ageSec ?? 0));
  const res = await fetch(`${f.srv.http}/v1/channels/slack/webhook`, {
    method: 'POST', body,
    headers: { 'content-type': 'application/json', 'x-slack-request-timestamp': ts, 'x-slack-signature': signSlack(opts.secret ?? SLACK_SECRET, ts, body) },
  });
  const text = await res.text();
  return { status: res.status, text, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : undefined };
}

t.test('channels - Slack: url_verification, refused signatures and stale requests, a message in its room once, the reply through chat.postMessage once', async (t) => {
  const f = await fixture(t);
  const check = await postSlack(f, JSON.stringify({ token: 'x', challenge: 'chal-123', type: 'url_verification' }));
  t.equal(check.status, 200);
  t.equal(check.text, 'chal-123');
  const event = slackMessageEvent('D0CUSTOMER', 'U0CUSTOMER', '1700000100.000200', { text: 'my invoice is wrong' });
  t.equal((await postSlack(f, event, { secret: 'wrong' })).status, 401);
  const stale = await postSlack(f, event, { ageSec: 6 * 60 });
  t.equal(stale.status, 401, 'older than 5 minutes');
  t.equal(stale.body.error.code, 'unauthorized');
  const agent = restClient(`${f.srv.http}/v1/chat`, await devToken('agent'));
  t.equal((await agent('GET', '/rooms/sl_D0CUSTOMER')).status, 404, 'nothing stored');

  t.same((await postSlack(f, event)).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });
  t.same((await postSlack(f, event)).body.data, { stored: 0, duplicate: 1, status: 0, ignored: 0 }, 'Slack\'s retry is stored once');
  const { ws } = await agentInRoom(t, f, 'sl_D0CUSTOMER');
  const history = await agent('GET', '/rooms/sl_D0CUSTOMER/messages?limit=50');
  t.match(history.body.data.messages, [{ authorId: 'slack:D0CUSTOMER', content: 'my invoice is wrong', clientMsgId: 'D0CUSTOMER:1700000100.000200' }]);
  t.equal(history.body.data.messages.length, 1);

  const reply = await agent('POST', '/rooms/sl_D0CUSTOMER/messages', { content: 'Looking into it.' });
  t.equal(reply.status, 201);
  await eventually(async () => f.fake.sends.some((s) => s.platform === 'slack'));
  t.match(f.fake.sends.filter((s) => s.platform === 'slack'), [{ path: '/api/chat.postMessage', authorization: `Bearer ${FAKE_SLACK_TOKEN}`, body: { channel: 'D0CUSTOMER', text: 'Looking into it.' } }]);
  t.match(await ws.next((x) => x.type === 'message_status' && x.status === 'sent'), { messageId: reply.body.data.message.messageId, channel: 'slack' });
  // Slack sends the app's own post back as an event with bot_id: it is not a message from the person
  t.same((await postSlack(f, slackMessageEvent('D0CUSTOMER', 'U0BOT', '1700000000.000001', { text: 'Looking into it.', bot_id: 'B01' }))).body.data, { stored: 0, duplicate: 0, status: 0, ignored: 0 });
  await sleep(300);
  t.equal(f.fake.sends.filter((s) => s.platform === 'slack').length, 1, 'sent once');
});
