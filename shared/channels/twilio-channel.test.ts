import t from 'tap';
import { FAKE_TWILIO_NUMBER, FAKE_TWILIO_SID, FAKE_TWILIO_TOKEN, signTwilio, startFakePlatforms, twilioInboundForm, twilioStatusForm } from '../../test/support/fake-platforms.ts';
import { twilioChannel, twilioSignature, type TwilioConfig } from './twilio-channel.ts';
import { errorCode } from '../../test/support/error-code.ts';

const URL_PUBLIC = 'https://chat.example.com/v1/channels/twilio/webhook';
const PATH = '/v1/channels/twilio/webhook';
const cfg = (apiBase = 'http://127.0.0.1:9'): TwilioConfig => ({
  authToken: FAKE_TWILIO_TOKEN, accountSid: FAKE_TWILIO_SID, fromNumber: FAKE_TWILIO_NUMBER, messagingServiceSid: undefined, webhookUrl: URL_PUBLIC, apiBase, httpTimeoutMs: 2000,
});
const form = (fields: Record<string, string>) => Buffer.from(new URLSearchParams(fields).toString());
const code = errorCode;

t.test('twilio - the signature is Twilio\'s documented example', async (t) => {
  // Twilio's security docs: this URL, these fields and token sign to this value
  const fields: Array<[string, string]> = [['CallSid', 'CA1234567890ABCDE'], ['Caller', '+12349013030'], ['Digits', '1234'], ['From', '+12349013030'], ['To', '+18005551212']];
  t.equal(twilioSignature('12345', 'https://mycompany.com/myapp.php?foo=1&bar=2', fields), '0/KCTR6DLpKmkAf8muzZqo1nDgQ=');
});

t.test('twilio - verify checks the URL, the query as received and the sorted fields', async (t) => {
  const ch = twilioChannel(cfg());
  const fields = twilioInboundForm('+15551234567', 'SM1', { Body: 'héllo + more' });
  t.equal(code(() => ch.verify({ 'x-twilio-signature': signTwilio(FAKE_TWILIO_TOKEN, URL_PUBLIC, fields) }, form(fields), PATH)), 'none');
  t.equal(code(() => ch.verify({}, form(fields), PATH)), 'unauthorized', 'missing');
  t.equal(code(() => ch.verify({ 'x-twilio-signature': signTwilio('other-token', URL_PUBLIC, fields) }, form(fields), PATH)), 'unauthorized', 'other token');
  t.equal(code(() => ch.verify({ 'x-twilio-signature': signTwilio(FAKE_TWILIO_TOKEN, URL_PUBLIC, fields) }, form({ ...fields, Body: 'changed' }), PATH)), 'unauthorized', 'changed field');
  t.equal(code(() => ch.verify({ 'x-twilio-signature': signTwilio(FAKE_TWILIO_TOKEN, 'http://internal:8080/v1/channels/twilio/webhook', fields) }, form(fields), PATH)), 'unauthorized', 'another URL');
  const status = twilioStatusForm('+15551234567', 'SM2', 'delivered');
  const withQuery = `${URL_PUBLIC}?messageId=7001`;
  t.equal(code(() => ch.verify({ 'x-twilio-signature': signTwilio(FAKE_TWILIO_TOKEN, withQuery, status) }, form(status), `${PATH}?messageId=7001`)), 'none', 'the status callback\'s query is signed');
  t.equal(code(() => ch.verify({ 'x-twilio-signature': signTwilio(FAKE_TWILIO_TOKEN, withQuery, status) }, form(status), `${PATH}?messageId=7002`)), 'unauthorized', 'a changed query');
});

t.test('twilio - parse normalises SMS, MMS media, locations and status callbacks', async (t) => {
  const ch = twilioChannel(cfg());
  t.match(ch.parse(form(twilioInboundForm('+15551234567', 'SMa1', { Body: 'Where is my order?' })), PATH), [{
    kind: 'message', platformMessageId: 'SMa1', externalUserId: '15551234567', type: 'text', content: 'Where is my order?', attachments: [], metadata: { platform: 'twilio', to: FAKE_TWILIO_NUMBER },
  }]);
  const mms = twilioInboundForm('+15551234567', 'MMb2', {
    Body: 'the parcel', NumMedia: '2',
    MediaUrl0: `https://api.twilio.com/2010-04-01/Accounts/${FAKE_TWILIO_SID}/Messages/MMb2/Media/ME111`, MediaContentType0: 'image/jpeg',
    MediaUrl1: `https://api.twilio.com/2010-04-01/Accounts/${FAKE_TWILIO_SID}/Messages/MMb2/Media/ME222`, MediaContentType1: 'application/pdf',
  });
  t.match(ch.parse(form(mms), PATH), [{
    type: 'image', content: 'the parcel', metadata: { platformType: 'mms' },
    attachments: [{ id: 'ME111', type: 'image', mimeType: 'image/jpeg', url: /\/Media\/ME111$/ }, { id: 'ME222', type: 'file', mimeType: 'application/pdf' }],
  }]);
  t.match(ch.parse(form(twilioInboundForm('+15551234567', 'SMc3', { Body: '', Latitude: '48.85', Longitude: '2.35' })), PATH), [{
    type: 'text', content: '📍 48.85,2.35', metadata: { platformType: 'location', location: { latitude: 48.85, longitude: 2.35 } },
  }]);
  t.same(ch.parse(form(twilioInboundForm('whatsapp:+15551234567', 'SMd4')), PATH), [], 'not an E.164 sender');
  t.same(ch.parse(form(twilioInboundForm('+15551234567', 'SMe5', { Body: '' })), PATH), [], 'nothing to store');
  t.match(ch.parse(form(twilioStatusForm('+15551234567', 'SMOUT', 'delivered')), `${PATH}?messageId=7001`), [{
    kind: 'status', platformMessageId: 'SMOUT', externalUserId: '15551234567', status: 'delivered', messageId: '7001',
  }]);
  t.match(ch.parse(form(twilioStatusForm('+15551234567', 'SMOUT', 'read')), `${PATH}?messageId=7001`), [{ status: 'read' }]);
  t.match(ch.parse(form(twilioStatusForm('+15551234567', 'SMOUT', 'undelivered')), `${PATH}?messageId=7001`), [{ status: 'failed', error: 'undelivered 30003' }]);
  t.same(ch.parse(form(twilioStatusForm('+15551234567', 'SMOUT', 'queued')), `${PATH}?messageId=7001`), [], 'steps before sent are not news');
  const noId = ch.parse(form(twilioStatusForm('+15551234567', 'SMOUT', 'sent')), PATH);
  t.match(noId, [{ status: 'sent', platformMessageId: 'SMOUT' }]);
  t.equal((noId[0] as { messageId?: string }).messageId, undefined, 'no messageId without the query');
  t.equal(code(() => ch.parse(form({ Body: 'hi' }), PATH)), 'bad_request', 'not a Twilio form');
  t.match(ch.webhookAnswer, { contentType: 'text/xml', body: /<Response><\/Response>/ });
});

t.test('twilio - send posts the Messages API form with Basic auth and a StatusCallback naming the message', async (t) => {
  const fake = await startFakePlatforms();
  t.teardown(() => fake.close());
  const ch = twilioChannel(cfg(fake.base));
  const sent = await ch.send({ externalUserId: '15551234567', content: 'Hello back', messageId: '7001' });
  t.match(sent, { kind: 'sent', platformMessageId: /^SM[0-9]{32}$/ });
  t.same(fake.sends[0]!.body, { To: '+15551234567', From: FAKE_TWILIO_NUMBER, Body: 'Hello back', StatusCallback: `${URL_PUBLIC}?messageId=7001` });
  t.equal(fake.sends[0]!.path, `/2010-04-01/Accounts/${FAKE_TWILIO_SID}/Messages.json`);
  const viaService = twilioChannel({ ...cfg(fake.base), fromNumber: undefined, messagingServiceSid: 'MG0123456789abcdef0123456789abcdef' });
  t.match(await viaService.send({ externalUserId: '15551234567', content: 'x', messageId: '7002' }), { kind: 'sent' });
  t.match(fake.sends[1]!.body, { MessagingServiceSid: 'MG0123456789abcdef0123456789abcdef' });
  t.equal(fake.sends[1]!.body.From, undefined);
  fake.fail('twilio', 429, 500, 400);
  t.match(await ch.send({ externalUserId: '1555', content: 'x', messageId: '2' }), { kind: 'failed', retryable: true, retryAfterMs: 0, error: /HTTP 429.*20429/ });
  t.match(await ch.send({ externalUserId: '1555', content: 'x', messageId: '2' }), { kind: 'failed', retryable: true, error: /HTTP 500/ });
  t.match(await ch.send({ externalUserId: '1555', content: 'x', messageId: '2' }), { kind: 'failed', retryable: false, error: /HTTP 400.*21211/ });
  const wrongToken = twilioChannel({ ...cfg(fake.base), authToken: 'nope' });
  t.match(await wrongToken.send({ externalUserId: '1555', content: 'x', messageId: '3' }), { kind: 'failed', retryable: false, error: /HTTP 401/ });
  const down = twilioChannel(cfg('http://127.0.0.1:9'));
  t.match(await down.send({ externalUserId: '1555', content: 'x', messageId: '3' }), { kind: 'failed', retryable: true, error: /no answer/ });
  const before = fake.sends.length;
  t.match(await ch.send({ externalUserId: '1555', content: 'é'.repeat(1601), messageId: '4' }), { kind: 'failed', retryable: false, error: /1600/ });
  t.match(await ch.send({ externalUserId: '1555', content: 'é'.repeat(1600), messageId: '5' }), { kind: 'sent' }, '1600 characters go');
  const unconfigured = twilioChannel({ ...cfg(fake.base), fromNumber: undefined });
  t.match(await unconfigured.send({ externalUserId: '1555', content: 'x', messageId: '6' }), { kind: 'failed', retryable: false });
  t.equal(fake.sends.length, before + 1, 'a body too long and a channel without a sender did not call');
});

t.test('twilio - files go as repeated MediaUrl in one MMS, the text its Body (none without text)', async (t) => {
  const fake = await startFakePlatforms();
  t.teardown(() => fake.close());
  const ch = twilioChannel(cfg(fake.base));
  t.match(ch.media, { perSend: 10, captionMaxChars: 1600 });
  const a = 'https://chat.example.com/v1/chat/links/a?expires=1&signature=s';
  const b = 'https://chat.example.com/v1/chat/links/b?expires=1&signature=s';
  t.match(await ch.send({ externalUserId: '15551234567', content: 'two photos', messageId: '7001', media: [{ type: 'image', url: a }, { type: 'image', url: b }] }), { kind: 'sent' });
  t.same(fake.sends[0]!.body, { To: '+15551234567', From: FAKE_TWILIO_NUMBER, Body: 'two photos', MediaUrl: [a, b], StatusCallback: `${URL_PUBLIC}?messageId=7001` });
  await ch.send({ externalUserId: '15551234567', content: '', messageId: '7002', media: [{ type: 'image', url: a }] });
  t.same(fake.sends[1]!.body, { To: '+15551234567', From: FAKE_TWILIO_NUMBER, MediaUrl: [a], StatusCallback: `${URL_PUBLIC}?messageId=7002` }, 'an MMS without text has no Body');
});
