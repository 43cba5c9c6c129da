import t from 'tap';
import { FAKE_PAGE_TOKEN, messengerEvent, messengerWebhook, signMeta, startFakePlatforms } from '../../test/support/fake-platforms.ts';
import { messengerChannel, type MessengerConfig } from './messenger-channel.ts';
import { errorCode } from '../../test/support/error-code.ts';

const SECRET = 'messenger-app-secret-for-tests';
const PSID = '6783245123456789';
const cfg = (apiBase = 'http://127.0.0.1:9'): MessengerConfig => ({
  appSecret: SECRET, verifyToken: 'verify-fb', pageAccessToken: FAKE_PAGE_TOKEN, apiBase, apiVersion: 'v21.0', httpTimeoutMs: 2000,
});
const code = errorCode;

t.test('messenger - verify accepts the app secret\'s signature over the raw bytes only', async (t) => {
  const ch = messengerChannel(cfg());
  const body = messengerWebhook(messengerEvent(PSID, { message: { mid: 'm_A', text: 'héllo' } }));
  t.equal(code(() => ch.verify({ 'x-hub-signature-256': signMeta(SECRET, body) }, Buffer.from(body))), 'none');
  t.equal(code(() => ch.verify({}, Buffer.from(body))), 'unauthorized', 'missing');
  t.equal(code(() => ch.verify({ 'x-hub-signature-256': signMeta('other', body) }, Buffer.from(body))), 'unauthorized', 'other key');
  t.equal(code(() => ch.verify({ 'x-hub-signature-256': signMeta(SECRET, body) }, Buffer.from(body.replace('héllo', 'hello')))), 'unauthorized', 'changed body');
});

t.test('messenger - the subscription handshake echoes hub.challenge for the right token', async (t) => {
  const ch = messengerChannel(cfg());
  t.equal(ch.handshake!(new URLSearchParams('hub.mode=subscribe&hub.verify_token=verify-fb&hub.challenge=987654')), '987654');
  t.equal(code(() => ch.handshake!(new URLSearchParams('hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1'))), 'forbidden');
  t.equal(code(() => ch.handshake!(new URLSearchParams('hub.verify_token=verify-fb&hub.challenge=1'))), 'bad_request');
  t.equal(code(() => messengerChannel({ ...cfg(), verifyToken: undefined }).handshake!(new URLSearchParams('hub.mode=subscribe&hub.verify_token=&hub.challenge=1'))), 'forbidden', 'no token configured');
});

t.test('messenger - parse normalises text, media, location, quick replies, postbacks and receipts; echoes are skipped', async (t) => {
  const ch = messengerChannel(cfg());
  const parse = (...events: Array<Record<string, unknown>>) => ch.parse(Buffer.from(messengerWebhook(...events)));
  const one = (message: Record<string, unknown>) => parse(messengerEvent(PSID, { message }));
  t.match(one({ mid: 'm_T', text: 'hi' }), [{ kind: 'message', platformMessageId: 'm_T', externalUserId: PSID, type: 'text', content: 'hi', attachments: [], metadata: { platform: 'messenger' } }]);
  t.match(one({ mid: 'm_I', attachments: [{ type: 'image', payload: { url: 'https://scontent.example/img.jpg' } }] }), [{
    type: 'image', content: '', attachments: [{ id: 'm_I:0', type: 'image', url: 'https://scontent.example/img.jpg' }],
  }]);
  for (const [kind, type] of [['video', 'video'], ['audio', 'audio'], ['file', 'file']] as const) {
    t.match(one({ mid: `m_${kind}`, attachments: [{ type: kind, payload: { url: `https://cdn.example/${kind}` } }] }), [{ type, attachments: [{ type, url: `https://cdn.example/${kind}` }] }], kind);
  }
  t.match(one({ mid: 'm_L', attachments: [{ type: 'location', title: 'Office', payload: { coordinates: { lat: 52.52, long: 13.405 } } }] }), [{
    type: 'text', content: '📍 Office', attachments: [], metadata: { platformType: 'location', location: { latitude: 52.52, longitude: 13.405, name: 'Office' } },
  }]);
  t.match(one({ mid: 'm_Q', text: 'Red', quick_reply: { payload: 'COLOR_RED' } }), [{ content: 'Red', metadata: { button: { kind: 'quick_reply', payload: 'COLOR_RED', title: 'Red' } } }]);
  t.same(one({ mid: 'm_E', text: 'our own reply', is_echo: true, app_id: 1517776481860111, metadata: '7001' }), [], 'echoes of the page\'s sends are skipped');
  t.same(one({ mid: 'm_F', attachments: [{ type: 'fallback', payload: null, title: 'a link' }] }), [], 'nothing the room holds');
  t.match(parse(messengerEvent(PSID, { postback: { mid: 'm_P', title: 'Track my order', payload: 'TRACK_ORDER' } })), [{
    kind: 'message', platformMessageId: 'm_P', type: 'text', content: 'Track my order', metadata: { platformType: 'postback', button: { payload: 'TRACK_ORDER', title: 'Track my order' } },
  }]);
  t.match(parse({ ...messengerEvent(PSID, { postback: { title: 'Get Started', payload: 'GET_STARTED' } }), timestamp: 1458692752478 }), [{ platformMessageId: `postback:${PSID}:1458692752478` }], 'a postback without mid');
  t.match(parse(messengerEvent(PSID, { delivery: { mids: ['m_OUT1', 'm_OUT2'], watermark: 1458668856253 } })), [
    { kind: 'status', platformMessageId: 'm_OUT1', externalUserId: PSID, status: 'delivered' },
    { kind: 'status', platformMessageId: 'm_OUT2', status: 'delivered' },
  ]);
  const watermarkOnly = parse(messengerEvent(PSID, { delivery: { watermark: 1458668856253 } }));
  t.match(watermarkOnly, [{ kind: 'status', status: 'delivered', upTo: 1458668856253 }]);
  t.equal((watermarkOnly[0] as { platformMessageId?: string }).platformMessageId, undefined);
  t.match(parse(messengerEvent(PSID, { read: { watermark: 1458668856253 } })), [{ kind: 'status', status: 'read', upTo: 1458668856253, externalUserId: PSID }]);
  t.same(parse(messengerEvent(PSID, { reaction: { mid: 'm_X', action: 'react', emoji: '👍' } })), [], 'reactions are not messages');
  t.equal(parse(messengerEvent(PSID, { message: { mid: 'm_1', text: 'a' } }), messengerEvent('other', { message: { mid: 'm_2', text: 'b' } })).length, 2, 'a batch');
  t.equal(code(() => ch.parse(Buffer.from('{"object":"whatsapp_business_account","entry":[]}'))), 'bad_request');
  t.equal(code(() => ch.parse(Buffer.from('not json'))), 'bad_request');
});

t.test('messenger - send posts to the Send API with the page token and reads back the message_id', async (t) => {
  const fake = await startFakePlatforms();
  t.teardown(() => fake.close());
  const ch = messengerChannel(cfg(fake.base));
  t.same(await ch.send({ externalUserId: PSID, content: 'Hello back', messageId: '7001' }), { kind: 'sent', platformMessageId: 'm_OUT1' });
  t.match(fake.sends[0], {
    platform: 'messenger', path: '/v21.0/me/messages?access_token=***', authorization: FAKE_PAGE_TOKEN,
    body: { recipient: { id: PSID }, messaging_type: 'RESPONSE', message: { text: 'Hello back', metadata: '7001' } },
  });
  fake.fail('messenger', 429, 613, 500, 400);
  t.match(await ch.send({ externalUserId: PSID, content: 'x', messageId: '2' }), { kind: 'failed', retryable: true, retryAfterMs: 0, error: /HTTP 429/ });
  t.match(await ch.send({ externalUserId: PSID, content: 'x', messageId: '2' }), { kind: 'failed', retryable: true, error: /HTTP 400.*613/ }, 'a rate limit answered 400');
  t.match(await ch.send({ externalUserId: PSID, content: 'x', messageId: '2' }), { kind: 'failed', retryable: true, error: /HTTP 500/ });
  t.match(await ch.send({ externalUserId: PSID, content: 'x', messageId: '2' }), { kind: 'failed', retryable: false, error: /HTTP 400.*No matching user/ });
  const wrongToken = messengerChannel({ ...cfg(fake.base), pageAccessToken: 'bad' });
  t.match(await wrongToken.send({ externalUserId: PSID, content: 'x', messageId: '3' }), { kind: 'failed', retryable: false, error: /190/ });
  const down = messengerChannel(cfg('http://127.0.0.1:9'));
  t.match(await down.send({ externalUserId: PSID, content: 'x', messageId: '3' }), { kind: 'failed', retryable: true, error: /no answer/ });
  const noToken = messengerChannel({ ...cfg(fake.base), pageAccessToken: undefined });
  t.match(await noToken.send({ externalUserId: PSID, content: 'x', messageId: '4' }), { kind: 'failed', retryable: false });
  t.equal(fake.sends.length, 6, 'the channel without a token did not call');
});

t.test('messenger - a file is an attachment message {type, payload: {url, is_reusable}}, never with text', async (t) => {
  const fake = await startFakePlatforms();
  t.teardown(() => fake.close());
  const ch = messengerChannel(cfg(fake.base));
  t.match(ch.media, { perSend: 1, captionMaxChars: 0 });
  const url = 'https://chat.example.com/v1/chat/links/x?expires=1&signature=s';
  t.match(await ch.send({ externalUserId: PSID, content: '', messageId: '7001', media: [{ type: 'image', url }] }), { kind: 'sent', platformMessageId: 'm_OUT1' });
  t.same(fake.sends[0]!.body, {
    recipient: { id: PSID }, messaging_type: 'RESPONSE', message: { attachment: { type: 'image', payload: { url, is_reusable: false } }, metadata: '7001' },
  });
  await ch.send({ externalUserId: PSID, content: '', messageId: '7002', media: [{ type: 'file', url }] });
  t.equal(fake.sends[1]!.body.message.attachment.type, 'file');
});
