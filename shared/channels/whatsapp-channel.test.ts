import t from 'tap';
import { FAKE_ACCESS_TOKEN, FAKE_PHONE_NUMBER_ID, signMeta, startFakePlatforms, whatsappMessageWebhook, whatsappStatusWebhook } from '../../test/support/fake-platforms.ts';
import { whatsappChannel, type WhatsAppConfig } from './whatsapp-channel.ts';
import { errorCode } from '../../test/support/error-code.ts';

const SECRET = 'app-secret-for-tests';
const cfg = (apiBase = 'http://127.0.0.1:9'): WhatsAppConfig => ({
  appSecret: SECRET, verifyToken: 'verify-me', accessToken: FAKE_ACCESS_TOKEN, phoneNumberId: FAKE_PHONE_NUMBER_ID, apiBase, apiVersion: 'v21.0', httpTimeoutMs: 2000,
});
const code = errorCode;

t.test('whatsapp - verify accepts the app secret\'s signature over the raw bytes only', async (t) => {
  const ch = whatsappChannel(cfg());
  const body = whatsappMessageWebhook('15551234567', 'wamid.A', { type: 'text', text: { body: 'héllo' } });
  t.equal(code(() => ch.verify({ 'x-hub-signature-256': signMeta(SECRET, body) }, Buffer.from(body))), 'none');
  t.equal(code(() => ch.verify({}, Buffer.from(body))), 'unauthorized', 'missing');
  t.equal(code(() => ch.verify({ 'x-hub-signature-256': signMeta('other', body) }, Buffer.from(body))), 'unauthorized', 'other key');
  t.equal(code(() => ch.verify({ 'x-hub-signature-256': signMeta(SECRET, body) }, Buffer.from(body.replace('héllo', 'hello')))), 'unauthorized', 'changed body');
});

t.test('whatsapp - the subscription handshake echoes hub.challenge for the right token', async (t) => {
  const ch = whatsappChannel(cfg());
  t.equal(ch.handshake!(new URLSearchParams('hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444')), '1158201444');
  t.equal(code(() => ch.handshake!(new URLSearchParams('hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1'))), 'forbidden');
  t.equal(code(() => ch.handshake!(new URLSearchParams('hub.verify_token=verify-me&hub.challenge=1'))), 'bad_request');
});

t.test('whatsapp - parse normalises text, media, location, buttons and statuses', async (t) => {
  const ch = whatsappChannel(cfg());
  const one = (message: Record<string, unknown>) => ch.parse(Buffer.from(whatsappMessageWebhook('15551234567', 'wamid.X', message, 'Ann')));
  t.match(one({ type: 'text', text: { body: 'hi' } }), [{ kind: 'message', platformMessageId: 'wamid.X', externalUserId: '15551234567', externalUserName: 'Ann', type: 'text', content: 'hi', attachments: [] }]);
  t.match(one({ type: 'image', image: { id: 'MEDIA1', mime_type: 'image/jpeg', sha256: 'x', caption: 'look' } }), [{
    type: 'image', content: 'look', attachments: [{ id: 'MEDIA1', type: 'image', url: 'whatsapp-media:MEDIA1', mimeType: 'image/jpeg' }],
  }]);
  t.match(one({ type: 'document', document: { id: 'DOC1', filename: 'a.pdf', mime_type: 'application/pdf' } }), [{ type: 'file', attachments: [{ url: 'whatsapp-media:DOC1', fileName: 'a.pdf' }] }]);
  t.match(one({ type: 'location', location: { latitude: 52.52, longitude: 13.405, name: 'Office', address: 'Main St 1' } }), [{
    type: 'text', content: '📍 Office, Main St 1', metadata: { location: { latitude: 52.52, longitude: 13.405, name: 'Office' } },
  }]);
  t.match(one({ type: 'interactive', interactive: { type: 'button_reply', button_reply: { id: 'yes-1', title: 'Yes' } } }), [{
    content: 'Yes', metadata: { button: { kind: 'button_reply', id: 'yes-1', title: 'Yes' } },
  }]);
  t.match(one({ type: 'button', button: { payload: 'STOP', text: 'Stop promotions' } }), [{ content: 'Stop promotions', metadata: { button: { payload: 'STOP' } } }]);
  t.same(one({ type: 'reaction', reaction: { message_id: 'wamid.Y', emoji: '👍' } }), [], 'reactions are not messages');
  t.match(ch.parse(Buffer.from(whatsappStatusWebhook('15551234567', 'wamid.OUT1', 'read', '7001'))), [{ kind: 'status', platformMessageId: 'wamid.OUT1', status: 'read', externalUserId: '15551234567', messageId: '7001' }]);
  t.match(ch.parse(Buffer.from(whatsappStatusWebhook('15551234567', 'wamid.OUT1', 'failed'))), [{ status: 'failed', error: '131047 Re-engagement message' }]);
  t.equal(code(() => ch.parse(Buffer.from('{"object":"page"}'))), 'bad_request');
  t.equal(code(() => ch.parse(Buffer.from('not json'))), 'bad_request');
});

t.test('whatsapp - send posts the Cloud API text message and reads back its wamid', async (t) => {
  const fake = await startFakePlatforms();
  t.teardown(() => fake.close());
  const ch = whatsappChannel(cfg(fake.base));
  t.same(await ch.send({ externalUserId: '15551234567', content: 'Hello back', messageId: '1' }), { kind: 'sent', platformMessageId: 'wamid.OUT1' });
  t.match(fake.sends[0], {
    path: `/v21.0/${FAKE_PHONE_NUMBER_ID}/messages`, authorization: `Bearer ${FAKE_ACCESS_TOKEN}`,
    body: { messaging_product: 'whatsapp', recipient_type: 'individual', to: '15551234567', type: 'text', text: { body: 'Hello back' }, biz_opaque_callback_data: '1' },
  });
  fake.fail('whatsapp', 429, 500, 400);
  t.match(await ch.send({ externalUserId: '1', content: 'x', messageId: '2' }), { kind: 'failed', retryable: true, error: /HTTP 429/ });
  t.match(await ch.send({ externalUserId: '1', content: 'x', messageId: '2' }), { kind: 'failed', retryable: true, error: /HTTP 500/ });
  t.match(await ch.send({ externalUserId: '1', content: 'x', messageId: '2' }), { kind: 'failed', retryable: false, error: /HTTP 400/ });
  const down = whatsappChannel(cfg('http://127.0.0.1:9'));
  t.match(await down.send({ externalUserId: '1', content: 'x', messageId: '3' }), { kind: 'failed', retryable: true, error: /no answer/ });
  const noToken = whatsappChannel({ ...cfg(fake.base), accessToken: undefined });
  t.match(await noToken.send({ externalUserId: '1', content: 'x', messageId: '4' }), { kind: 'failed', retryable: false });
});

t.test('whatsapp - a file goes as its media type with {link, caption}; documents carry their name, audio no caption', async (t) => {
  const fake = await startFakePlatforms();
  t.teardown(() => fake.close());
  const ch = whatsappChannel(cfg(fake.base));
  t.match(ch.media, { perSend: 1, captionMaxChars: 1024, uncaptioned: ['audio'] });
  const url = 'https://chat.example.com/v1/chat/links/x?expires=1&signature=s';
  t.match(await ch.send({ externalUserId: '1555', content: 'our cat', messageId: '1', media: [{ type: 'image', url, mimeType: 'image/png', fileName: 'cat.png' }] }), { kind: 'sent' });
  t.same(fake.sends[0]!.body, {
    messaging_product: 'whatsapp', recipient_type: 'individual', to: '1555', type: 'image', image: { link: url, caption: 'our cat' }, biz_opaque_callback_data: '1',
  });
  await ch.send({ externalUserId: '1555', content: '', messageId: '2', media: [{ type: 'file', url, fileName: 'invoice.pdf' }] });
  t.same(fake.sends[1]!.body.document, { link: url, filename: 'invoice.pdf' }, 'a file is a document, no empty caption');
  t.equal(fake.sends[1]!.body.type, 'document');
  await ch.send({ externalUserId: '1555', content: 'ignored', messageId: '3', media: [{ type: 'audio', url }] });
  t.same(fake.sends[2]!.body.audio, { link: url }, 'audio takes no caption');
  await ch.send({ externalUserId: '1555', content: 'clip', messageId: '4', media: [{ type: 'video', url }] });
  t.same(fake.sends[3]!.body.video, { link: url, caption: 'clip' });
  await ch.send({ externalUserId: '1555', content: 'anim', messageId: '5', media: [{ type: 'image', url, mimeType: 'image/gif', fileName: 'dance.gif' }] });
  t.same([fake.sends[4]!.body.type, fake.sends[4]!.body.document], ['document', { link: url, caption: 'anim', filename: 'dance.gif' }], 'an image WhatsApp does not show as one (GIF, WebP) goes as a document');
});
