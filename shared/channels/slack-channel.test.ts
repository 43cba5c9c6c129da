import t from 'tap';
import { FAKE_SLACK_TOKEN, signSlack, slackMessageEvent, startFakePlatforms } from '../../test/support/fake-platforms.ts';
import { slackChannel } from './slack-channel.ts';
import { errorCode } from '../../test/support/error-code.ts';

const SECRET = 'slack-signing-secret';
const NOW = 1_700_000_000_000;
const cfg = (apiBase = 'http://127.0.0.1:9') => ({ signingSecret: SECRET, botToken: FAKE_SLACK_TOKEN, apiBase, httpTimeoutMs: 2000, now: () => NOW });
const code = errorCode;
const headers = (body: string, ts: number, secret = SECRET) => ({ 'x-slack-signature': signSlack(secret, String(ts), body), 'x-slack-request-timestamp': String(ts) });

t.test('slack - verify checks the v0 signature and refuses requests more than 5 minutes old', async (t) => {
  const ch = slackChannel(cfg());
  const body = slackMessageEvent('D024BE91L', 'U2147483697', '1355517523.000005');
  const now = NOW / 1000;
  t.equal(code(() => ch.verify(headers(body, now), Buffer.from(body))), 'none');
  t.equal(code(() => ch.verify(headers(body, now - 299), Buffer.from(body))), 'none', '4:59 old');
  t.equal(code(() => ch.verify(headers(body, now - 301), Buffer.from(body))), 'unauthorized', '5:01 old');
  t.equal(code(() => ch.verify(headers(body, now + 301), Buffer.from(body))), 'unauthorized', 'from the future');
  t.equal(code(() => ch.verify(headers(body, now, 'other'), Buffer.from(body))), 'unauthorized', 'other secret');
  const signedAt = headers(body, now);
  t.equal(code(() => ch.verify({ ...signedAt, 'x-slack-request-timestamp': String(now - 1) }, Buffer.from(body))), 'unauthorized', 'the timestamp is signed too');
  t.equal(code(() => ch.verify({}, Buffer.from(body))), 'unauthorized');
});

t.test('slack - url_verification is answered with its challenge; messages are normalised, the app\'s own posts skipped', async (t) => {
  const ch = slackChannel(cfg());
  t.equal(ch.immediate!(Buffer.from(JSON.stringify({ token: 'x', challenge: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P', type: 'url_verification' }))), '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P');
  t.equal(ch.immediate!(Buffer.from(slackMessageEvent('D1', 'U1', '1.1'))), undefined);
  t.match(ch.parse(Buffer.from(slackMessageEvent('D1', 'U1', '1355517523.000005', { text: 'need help' }))), [{
    platformMessageId: 'D1:1355517523.000005', externalUserId: 'D1', type: 'text', content: 'need help', metadata: { slackUser: 'U1' },
  }]);
  t.match(ch.parse(Buffer.from(slackMessageEvent('D1', 'U1', '2.2', { subtype: 'file_share', text: '', files: [{ id: 'F1', name: 'a.png', mimetype: 'image/png', size: 10 }] }))), [{
    type: 'image', attachments: [{ id: 'F1', url: 'slack-file:F1', fileName: 'a.png', mimeType: 'image/png' }],
  }]);
  t.same(ch.parse(Buffer.from(slackMessageEvent('D1', 'U1', '3.3', { bot_id: 'B01' }))), [], 'the app\'s own message');
  t.same(ch.parse(Buffer.from(slackMessageEvent('D1', 'U1', '4.4', { subtype: 'message_changed' }))), [], 'edits');
});

t.test('slack - send calls chat.postMessage; ok:false is final, 429 retryable', async (t) => {
  const fake = await startFakePlatforms();
  t.teardown(() => fake.close());
  const ch = slackChannel(cfg(fake.base));
  t.same(await ch.send({ externalUserId: 'D1', content: 'hello from support', messageId: '1' }), { kind: 'sent', platformMessageId: 'D1:1700000000.000001' });
  t.match(fake.sends[0], { path: '/api/chat.postMessage', authorization: `Bearer ${FAKE_SLACK_TOKEN}`, body: { channel: 'D1', text: 'hello from support' } });
  fake.fail('slack', 429, 401, 500);
  t.match(await ch.send({ externalUserId: 'D1', content: 'x', messageId: '2' }), { kind: 'failed', retryable: true, retryAfterMs: 0 });
  t.match(await ch.send({ externalUserId: 'D1', content: 'x', messageId: '2' }), { kind: 'failed', retryable: false, error: /invalid_auth/ });
  t.match(await ch.send({ externalUserId: 'D1', content: 'x', messageId: '2' }), { kind: 'failed', retryable: true });
});

t.test('slack - files are links in the post\'s text (chat.postMessage takes no files), names escaped, media unfurled', async (t) => {
  const fake = await startFakePlatforms();
  t.teardown(() => fake.close());
  const ch = slackChannel(cfg(fake.base));
  t.match(ch.media, { perSend: 10 });
  const a = 'https://chat.example.com/v1/chat/links/a?expires=1&signature=s';
  const b = 'https://files.example.com/b.pdf';
  t.match(await ch.send({ externalUserId: 'D1', content: 'two files', messageId: '1', media: [{ type: 'image', url: a, fileName: 'cat <1>.png' }, { type: 'file', url: b }] }), { kind: 'sent' });
  t.same(fake.sends[0]!.body, { channel: 'D1', text: `two files\n<${a}|cat &lt;1&gt;.png>\n<${b}|file>`, unfurl_media: true });
  await ch.send({ externalUserId: 'D1', content: '', messageId: '2', media: [{ type: 'image', url: a, fileName: 'x.png' }] });
  t.equal(fake.sends[1]!.body.text, `<${a}|x.png>`, 'no text: only the link');
});
