import t from 'tap';
import { FAKE_BOT_TOKEN, startFakePlatforms, telegramMessageUpdate } from '../../test/support/fake-platforms.ts';
import { telegramChannel } from './telegram-channel.ts';
import { errorCode } from '../../test/support/error-code.ts';

const cfg = (apiBase = 'http://127.0.0.1:9') => ({ botToken: FAKE_BOT_TOKEN, secretToken: 'tg-secret_1', apiBase, httpTimeoutMs: 2000 });
const code = errorCode;

t.test('telegram - verify checks X-Telegram-Bot-Api-Secret-Token', async (t) => {
  const ch = telegramChannel(cfg());
  const body = Buffer.from(telegramMessageUpdate(1, 42, 7, { text: 'hi' }));
  t.equal(code(() => ch.verify({ 'x-telegram-bot-api-secret-token': 'tg-secret_1' }, body)), 'none');
  t.equal(code(() => ch.verify({}, body)), 'unauthorized');
  t.equal(code(() => ch.verify({ 'x-telegram-bot-api-secret-token': 'tg-secret_2' }, body)), 'unauthorized');
});

t.test('telegram - parse normalises text, photos, documents, locations, venues and button presses', async (t) => {
  const ch = telegramChannel(cfg());
  const one = (fields: Record<string, unknown>) => ch.parse(Buffer.from(telegramMessageUpdate(10, 42, 7, fields)));
  t.match(one({ text: 'hello' }), [{ kind: 'message', platformMessageId: '42:7', externalUserId: '42', externalUserName: 'Tess Gram', type: 'text', content: 'hello' }]);
  t.match(one({ photo: [{ file_id: 'small', file_unique_id: 's' }, { file_id: 'BIG', file_unique_id: 'b', file_size: 9000 }], caption: 'pic' }), [{
    type: 'image', content: 'pic', attachments: [{ id: 'b', type: 'image', url: 'telegram-file:BIG', fileSize: 9000 }],
  }]);
  t.match(one({ document: { file_id: 'DOC', file_unique_id: 'd', file_name: 'r.pdf', mime_type: 'application/pdf' } }), [{ type: 'file', attachments: [{ url: 'telegram-file:DOC', fileName: 'r.pdf' }] }]);
  t.match(one({ location: { latitude: 1.5, longitude: 2.5 } }), [{ content: '📍 1.5,2.5', metadata: { location: { latitude: 1.5, longitude: 2.5 } } }]);
  t.match(one({ venue: { location: { latitude: 1, longitude: 2 }, title: 'Cafe', address: 'Road 3' } }), [{ content: '📍 Cafe, Road 3', metadata: { platformType: 'venue' } }]);
  const press = ch.parse(Buffer.from(JSON.stringify({
    update_id: 11, callback_query: { id: '4382bfdwdsb323b2d9', from: { id: 42, first_name: 'Tess' }, message: { message_id: 6, chat: { id: 42, type: 'private' } }, data: 'order:yes' },
  })));
  t.match(press, [{ platformMessageId: 'callback:4382bfdwdsb323b2d9', externalUserId: '42', content: 'order:yes', metadata: { button: { data: 'order:yes' } }, ackId: '4382bfdwdsb323b2d9' }]);
  t.same(ch.parse(Buffer.from(JSON.stringify({ update_id: 12, edited_message: { message_id: 7, chat: { id: 42 }, text: 'x' } }))), [], 'edits are skipped');
  t.equal(code(() => ch.parse(Buffer.from('{"message":{}}'))), 'bad_request');
});

t.test('telegram - send calls sendMessage and honours retry_after', async (t) => {
  const fake = await startFakePlatforms();
  t.teardown(() => fake.close());
  const ch = telegramChannel(cfg(fake.base));
  t.same(await ch.send({ externalUserId: '42', content: 'Hi Tess', messageId: '1' }), { kind: 'sent', platformMessageId: '42:1' });
  t.match(fake.sends[0], { path: `/bot${FAKE_BOT_TOKEN}/sendMessage`, body: { chat_id: '42', text: 'Hi Tess' } });
  fake.fail('telegram', 429, 500, 403);
  t.match(await ch.send({ externalUserId: '42', content: 'x', messageId: '2' }), { kind: 'failed', retryable: true, retryAfterMs: 0, error: /Too Many Requests/ });
  t.match(await ch.send({ externalUserId: '42', content: 'x', messageId: '2' }), { kind: 'failed', retryable: true });
  const forbidden = await ch.send({ externalUserId: '42', content: 'x', messageId: '2' });
  t.match(forbidden, { kind: 'failed', retryable: false });
  t.notMatch(JSON.stringify(forbidden), FAKE_BOT_TOKEN, 'the bot token is not in the error');
});

t.test('telegram - acknowledge answers the callback query of a button press', async (t) => {
  const fake = await startFakePlatforms();
  t.teardown(() => fake.close());
  const ch = telegramChannel(cfg(fake.base));
  const [press] = ch.parse(Buffer.from(JSON.stringify({
    update_id: 11, callback_query: { id: 'cbq-1', from: { id: 42, first_name: 'Tess' }, message: { message_id: 6, chat: { id: 42, type: 'private' } }, data: 'yes' },
  })));
  t.equal(await ch.acknowledge!(press as never), true);
  t.match(fake.sends, [{ path: `/bot${FAKE_BOT_TOKEN}/answerCallbackQuery`, body: { callback_query_id: 'cbq-1' } }]);
  const down = telegramChannel(cfg('http://127.0.0.1:9'));
  t.equal(await down.acknowledge!(press as never), false, 'a failure is reported, not thrown');
});

t.test('telegram - a file goes to sendPhoto, sendVideo, sendAudio or sendDocument with its URL and the caption', async (t) => {
  const fake = await startFakePlatforms();
  t.teardown(() => fake.close());
  const ch = telegramChannel(cfg(fake.base));
  t.match(ch.media, { perSend: 1, captionMaxChars: 1024 });
  const url = 'https://chat.example.com/v1/chat/links/x?expires=1&signature=s';
  const sent = await ch.send({ externalUserId: '42', content: 'our cat', messageId: '1', media: [{ type: 'image', url }] });
  t.match(sent, { kind: 'sent', platformMessageId: /^42:\d+$/ });
  t.same(fake.sends[0], { platform: 'telegram', path: `/bot${FAKE_BOT_TOKEN}/sendPhoto`, authorization: undefined, body: { chat_id: '42', photo: url, caption: 'our cat' }, status: 200 });
  for (const [type, method, field] of [['video', 'sendVideo', 'video'], ['audio', 'sendAudio', 'audio'], ['file', 'sendDocument', 'document']] as const) {
    t.match(await ch.send({ externalUserId: '42', content: '', messageId: '2', media: [{ type, url }] }), { kind: 'sent' });
    t.same(fake.sends.at(-1)!.body, { chat_id: '42', [field]: url }, `${type}: ${method} without an empty caption`);
    t.equal(fake.sends.at(-1)!.path, `/bot${FAKE_BOT_TOKEN}/${method}`);
  }
});
