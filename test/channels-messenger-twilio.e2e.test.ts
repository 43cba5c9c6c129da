import t, { type Test } from 'tap';
import {
  FAKE_PAGE_TOKEN, FAKE_TWILIO_NUMBER, FAKE_TWILIO_SID, FAKE_TWILIO_TOKEN, messengerEvent, messengerWebhook, signMeta, signTwilio,
  twilioInboundForm, twilioStatusForm, type FakePlatforms,
} from './support/fake-platforms.ts';
import { agentInRoom, channelsFixture, postMetaWebhook, type ChannelsFixture } from './support/channels-fixture.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * Issue 15, Messenger and SMS (Twilio) end to end: `chat all` as a real process with both send
 * APIs pointed at a local server that speaks them, and webhooks sent as the platforms send them:
 * Meta's signed JSON, Twilio's signed forms. Twilio signs the public URL it called, which here is
 * a proxy's (TWILIO_WEBHOOK_URL) while the request reaches the process on its own port.
 */
const APP_SECRET = 'messenger-app-secret-e2e';
const PUBLIC_URL = 'https://chat.example.test/v1/channels/twilio/webhook';
const PSID = '6783245123456789';
const PHONE = '+15551234567';

const env = (fake: FakePlatforms): Record<string, string> => ({
  MESSENGER_APP_SECRET: APP_SECRET, MESSENGER_VERIFY_TOKEN: 'verify-fb-e2e', MESSENGER_PAGE_ACCESS_TOKEN: FAKE_PAGE_TOKEN, MESSENGER_API_BASE: fake.base,
  TWILIO_AUTH_TOKEN: FAKE_TWILIO_TOKEN, TWILIO_ACCOUNT_SID: FAKE_TWILIO_SID, TWILIO_FROM_NUMBER: FAKE_TWILIO_NUMBER, TWILIO_WEBHOOK_URL: PUBLIC_URL, TWILIO_API_BASE: fake.base,
});

type Fixture = ChannelsFixture;
const fixture = (t: Test): Promise<Fixture> => channelsFixture(t, env);
const postMessenger = (f: Fixture, body: string, signature?: string | null) => postMetaWebhook(f, 'messenger', body, APP_SECRET, signature);

/** Posts a form as Twilio does: to the process, signed over the public URL (with `query`, as Twilio called it). */
async function postTwilio(f: Fixture, fields: Record<string, string>, opts: { query?: string; token?: string; signature?: string | null } = {}) {
  const query = opts.query ? `?${opts.query}` : '';
  const signature = opts.signature === undefined ? signTwilio(opts.token ?? FAKE_TWILIO_TOKEN, PUBLIC_URL + query, fields) : opts.signature;
  const res = await fetch(`${f.srv.http}/v1/channels/twilio/webhook${query}`, {
    method: 'POST', body: new URLSearchParams(fields).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(signature ? { 'x-twilio-signature': signature } : {}) },
  });
  return { status: res.status, contentType: res.headers.get('content-type'), text: await res.text() };
}


async function historyOf(agent: ReturnType<typeof restClient>, roomId: string, atLeast: number): Promise<any[]> {
  return eventually(async () => {
    const h = await agent('GET', `/rooms/${roomId}/messages?limit=50`);
    return h.body.data?.messages?.length >= atLeast ? h.body.data.messages : undefined;
  });
}

t.test('messenger - subscription check, refused signatures, a message in its room live and once, the reply once, receipts as message_status', async (t) => {
  const f = await fixture(t);
  const ok = await fetch(`${f.srv.http}/v1/channels/messenger/webhook?hub.mode=subscribe&hub.verify_token=verify-fb-e2e&hub.challenge=31337`);
  t.equal(ok.status, 200);
  t.equal(await ok.text(), '31337');
  t.equal((await fetch(`${f.srv.http}/v1/channels/messenger/webhook?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1`)).status, 403);
  const doc = await (await fetch(`${f.srv.http}/v1/openapi.json`)).json() as { paths: Record<string, any> };
  t.same(doc.paths['/v1/channels/messenger/webhook']?.post?.security, [], 'documented, without a bearer token');
  t.ok(doc.paths['/v1/channels/messenger/webhook']?.get, 'the subscription check is documented');
  t.ok(doc.paths['/v1/channels/twilio/webhook']?.post?.requestBody?.content?.['application/x-www-form-urlencoded'], 'Twilio\'s form body is documented');

  const room = `fbm_${PSID}`;
  const first = messengerWebhook(messengerEvent(PSID, { message: { mid: 'm_IN1', text: 'Where is my order?' } }));
  const forged = await postMessenger(f, first, signMeta('not-the-secret', first));
  t.equal(forged.status, 401);
  t.equal(forged.body.error.code, 'unauthorized');
  t.equal((await postMessenger(f, first, null)).status, 401, 'missing signature');
  const agent = restClient(`${f.srv.http}/v1/chat`, await devToken('agent'));
  t.equal((await agent('GET', `/rooms/${room}`)).status, 404, 'nothing stored');

  t.same((await postMessenger(f, first)).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });
  t.match((await agent('GET', `/rooms/${room}`)).body.data, { roomId: room, createdBy: `messenger:${PSID}`, name: `Messenger: ${PSID}`, tags: ['channel', 'channel:messenger', `external:${PSID}`] });
  const { ws } = await agentInRoom(t, f, room);
  const photo = messengerWebhook(messengerEvent(PSID, { message: { mid: 'm_IN2', attachments: [{ type: 'image', payload: { url: 'https://scontent.example/parcel.jpg' } }] } }));
  t.same((await postMessenger(f, photo)).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });
  const live = await ws.next((x) => x.type === 'new_message' && x.message.clientMsgId === 'm_IN2');
  t.match(live.message, {
    authorId: `messenger:${PSID}`, type: 'image', attachments: [{ type: 'image', url: 'https://scontent.example/parcel.jpg' }], metadata: { channel: 'messenger', externalUserId: PSID },
  });
  const press = messengerWebhook(messengerEvent(PSID, { postback: { mid: 'm_PB1', title: 'Track order', payload: 'TRACK' } }), messengerEvent(PSID, { message: { mid: 'm_ECHO', text: 'x', is_echo: true } }));
  t.same((await postMessenger(f, press)).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 }, 'the postback is stored, the echo skipped');
  t.same((await postMessenger(f, first)).body.data, { stored: 0, duplicate: 1, status: 0, ignored: 0 }, 'a replay is a duplicate');
  const history = await historyOf(agent, room, 3);
  t.same(history.map((m: any) => m.clientMsgId).sort(), ['m_IN1', 'm_IN2', 'm_PB1'], 'each platform message once');
  t.match(history.find((m: any) => m.clientMsgId === 'm_PB1'), { content: 'Track order', metadata: { button: { payload: 'TRACK' } } });

  const reply = await agent('POST', `/rooms/${room}/messages`, { content: 'It ships today.' });
  t.equal(reply.status, 201);
  const messageId: string = reply.body.data.message.messageId;
  t.match(await ws.next((x) => x.type === 'message_status' && x.status === 'sent'), { roomId: room, messageId, channel: 'messenger', platformMessageId: 'm_OUT1' });
  t.match(f.fake.sends, [{
    platform: 'messenger', path: '/v21.0/me/messages?access_token=***', authorization: FAKE_PAGE_TOKEN,
    body: { recipient: { id: PSID }, messaging_type: 'RESPONSE', message: { text: 'It ships today.' } },
  }]);
  // receipts are matched against the room's history (the api's windows, as REST reads it)
  await historyOf(agent, room, 4);
  const delivered = messengerWebhook(messengerEvent(PSID, { delivery: { mids: ['m_OUT1'], watermark: Date.now() } }));
  t.same((await postMessenger(f, delivered)).body.data, { stored: 0, duplicate: 0, status: 1, ignored: 0 });
  t.match(await ws.next((x) => x.type === 'message_status' && x.status === 'delivered'), { messageId, platformMessageId: 'm_OUT1', userId: `messenger:${PSID}` });
  t.same((await postMessenger(f, messengerWebhook(messengerEvent(PSID, { read: { watermark: Date.now() } })))).body.data, { stored: 0, duplicate: 0, status: 1, ignored: 0 });
  t.match(await ws.next((x) => x.type === 'message_status' && x.status === 'read'), { messageId, channel: 'messenger' }, 'the watermark names the last reply sent before it');

  // a second reply of the same room goes out after the first was settled: the first was sent once
  f.fake.fail('messenger', 613);
  const second = await agent('POST', `/rooms/${room}/messages`, { content: 'Anything else?' });
  await ws.next((x) => x.type === 'message_status' && x.status === 'sent' && x.messageId === second.body.data.message.messageId);
  t.same(f.fake.sends.map((s) => [s.body.message.text, s.status]), [['It ships today.', 200], ['Anything else?', 613], ['Anything else?', 200]], 'each reply once; a rate limit (613) is retried');
});

t.test('twilio - refused signatures, an SMS in its room live and once, TwiML answers, the reply once, status callbacks as message_status', async (t) => {
  const f = await fixture(t);
  const room = 'sms_15551234567';
  const agent = restClient(`${f.srv.http}/v1/chat`, await devToken('agent'));
  const first = twilioInboundForm(PHONE, 'SMin0000000000000000000000000001', { Body: 'Where is my order?' });
  t.equal((await postTwilio(f, first, { token: 'not-the-token' })).status, 401);
  t.equal((await postTwilio(f, first, { signature: null })).status, 401, 'missing signature');
  t.equal((await postTwilio(f, { ...first, Body: 'changed' }, { signature: signTwilio(FAKE_TWILIO_TOKEN, PUBLIC_URL, first) })).status, 401, 'a changed field');
  t.equal((await agent('GET', `/rooms/${room}`)).status, 404, 'nothing stored');

  const taken = await postTwilio(f, first);
  t.equal(taken.status, 200);
  t.equal(taken.contentType, 'text/xml');
  t.match(taken.text, /^<\?xml version="1.0" encoding="UTF-8"\?><Response><\/Response>$/, 'an empty TwiML answer: no auto-reply');
  t.match((await agent('GET', `/rooms/${room}`)).body.data, { roomId: room, createdBy: 'twilio:15551234567', tags: ['channel', 'channel:twilio', 'external:15551234567'] });
  const { ws } = await agentInRoom(t, f, room);
  const mms = twilioInboundForm(PHONE, 'MMin0000000000000000000000000002', {
    Body: 'the parcel', NumMedia: '1', MediaContentType0: 'image/jpeg',
    MediaUrl0: `https://api.twilio.com/2010-04-01/Accounts/${FAKE_TWILIO_SID}/Messages/MMin0000000000000000000000000002/Media/ME0001`,
  });
  t.equal((await postTwilio(f, mms)).status, 200);
  const live = await ws.next((x) => x.type === 'new_message' && x.message.clientMsgId === 'MMin0000000000000000000000000002');
  t.match(live.message, { authorId: 'twilio:15551234567', type: 'image', content: 'the parcel', attachments: [{ id: 'ME0001', mimeType: 'image/jpeg' }] });
  t.equal((await postTwilio(f, first)).status, 200, 'a replay is answered as taken');
  const history = await historyOf(agent, room, 2);
  t.same(history.map((m: any) => m.clientMsgId).sort(), ['MMin0000000000000000000000000002', 'SMin0000000000000000000000000001'], 'each platform message once');

  const reply = await agent('POST', `/rooms/${room}/messages`, { content: 'It ships today.' });
  t.equal(reply.status, 201);
  const messageId: string = reply.body.data.message.messageId;
  const sent = await ws.next((x) => x.type === 'message_status' && x.status === 'sent');
  t.match(sent, { roomId: room, messageId, channel: 'twilio', platformMessageId: /^SM[0-9]{32}$/ });
  t.equal(f.fake.sends.length, 1);
  t.same(f.fake.sends[0]!.body, { To: PHONE, From: FAKE_TWILIO_NUMBER, Body: 'It ships today.', StatusCallback: `${PUBLIC_URL}?messageId=${messageId}` });
  t.equal(f.fake.sends[0]!.authorization, `Basic ${Buffer.from(`${FAKE_TWILIO_SID}:${FAKE_TWILIO_TOKEN}`).toString('base64')}`);

  // Twilio calls the StatusCallback it was given: the query names the message and is signed
  const sid: string = sent.platformMessageId;
  const query = `messageId=${messageId}`;
  t.equal((await postTwilio(f, twilioStatusForm(PHONE, sid, 'delivered'), { query, signature: signTwilio(FAKE_TWILIO_TOKEN, `${PUBLIC_URL}?messageId=1`, twilioStatusForm(PHONE, sid, 'delivered')) })).status, 401, 'a query changed from what Twilio signed');
  t.equal((await postTwilio(f, twilioStatusForm(PHONE, sid, 'delivered'), { query })).status, 200);
  t.match(await ws.next((x) => x.type === 'message_status' && x.status === 'delivered'), { messageId, platformMessageId: sid, userId: 'twilio:15551234567', channel: 'twilio' });

  f.fake.fail('twilio', 429);
  const second = await agent('POST', `/rooms/${room}/messages`, { content: 'Anything else?' });
  const secondId: string = second.body.data.message.messageId;
  const secondSent = await ws.next((x) => x.type === 'message_status' && x.status === 'sent' && x.messageId === secondId);
  t.same(f.fake.sends.map((s) => [s.body.Body, s.status]), [['It ships today.', 201], ['Anything else?', 429], ['Anything else?', 201]], 'each reply once; a 429 is retried');
  t.equal((await postTwilio(f, twilioStatusForm(PHONE, secondSent.platformMessageId, 'undelivered'), { query: `messageId=${secondId}` })).status, 200);
  t.match(await ws.next((x) => x.type === 'message_status' && x.status === 'failed'), { messageId: secondId, error: 'undelivered 30003' });
});
