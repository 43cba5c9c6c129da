import t from 'tap';
import { pino } from 'pino';
import { createMemoryBus } from '../../shared/bus/index.ts';
import { createChannelDirectory, createChannels } from '../../shared/channels/index.ts';
import { loadConfig } from '../../shared/config/index.ts';
import { roomKey, type Attachment, type DurableEvent } from '../../shared/domain/index.ts';
import { Snowflake } from '../../shared/ids/index.ts';
import { encodeMsgpack } from '../../shared/protocol/index.ts';
import { createSqliteStore } from '../../shared/store/index.ts';
import { makeMessage, makeRoom } from '../../shared/store/store.contract.ts';
import { FAKE_BOT_TOKEN, startFakePlatforms } from '../../test/support/fake-platforms.ts';
import { createMemorySessionStore, type SessionStore } from '../../shared/sessions/index.ts';
import { SessionTouch } from './session-touch.ts';
import { partRecordId, sentRecordKey, startChannelSender } from './sender.ts';
import type { AttachmentLinks } from '../attachment-links.ts';

const TENANT = 'acme';

/** `stored`: tenants' own secrets, served as with CHANNELS_PER_TENANT. */
async function setup(t: import('tap').Test, opts: { sessions?: SessionStore; stored?: Record<string, Record<string, string>>; links?: AttachmentLinks } = {}) {
  const { sessions, stored, links } = opts;
  const fake = await startFakePlatforms();
  const config = loadConfig({
    NODE_ENV: 'test', JWT_SECRET: 'sender-test-secret-0123456789-abcdefghij', LOG_LEVEL: 'silent', CHANNELS_TENANT: TENANT,
    TELEGRAM_BOT_TOKEN: FAKE_BOT_TOKEN, TELEGRAM_SECRET_TOKEN: 'x', TELEGRAM_API_BASE: fake.base,
  });
  const store = createSqliteStore({ file: ':memory:' });
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 1000 });
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { lines.push(s); } });
  const directory = createChannelDirectory({
    envTenant: TENANT, env: createChannels(config.channels),
    ...(stored ? { stored: { secretsOf: async (tenant: string) => stored[tenant], config: config.channels } } : {}),
  });
  const sender = startChannelSender({
    bus, store, directory, config: config.channels, log, sleep: async () => {},
    ...(sessions ? { sessions: new SessionTouch(sessions, log) } : {}),
    ...(links ? { links } : {}),
  });
  t.teardown(async () => {
    await sender.stop();
    await bus.close();
    await store.close();
    await fake.close();
  });
  const ids = new Snowflake(3);
  const room = async (roomId: string, createdBy: string, tenant = TENANT) => {
    await store.createRoom(makeRoom(roomId, { tenant, createdBy }), []);
  };
  /** `before`: what happened to the message before this sender saw it (records a dead sender left). */
  const post = async (roomId: string, authorId: string, content: string, tenant = TENANT, more: { attachments?: Attachment[]; before?: (id: string) => Promise<void> } = {}) => {
    const messageId = ids.next();
    await more.before?.(messageId);
    const message = makeMessage(roomId, messageId, { authorId, content, ...(more.attachments ? { attachments: more.attachments } : {}) });
    const event: DurableEvent = { kind: 'message.created', id: messageId, at: Date.now(), roomId: roomKey(tenant, roomId), message };
    await bus.publishDurable(roomKey(tenant, roomId), messageId, encodeMsgpack(event));
    return messageId;
  };
  return { fake, store, lines, room, post };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('sender - sends an agent\'s message once and records it; a message with a sent-record is not sent again', async (t) => {
  const s = await setup(t);
  await s.room('tg_42', 'telegram:42');
  const recorded = await s.post('tg_42', 'agent', 'already sent before a restart');
  // the record a sender that died after sending (and before its ack) left behind
  await s.store.markNotified(TENANT, sentRecordKey('tg_42'), [recorded], Date.now() + 60_000);
  const fresh = await s.post('tg_42', 'agent', 'new reply');
  for (let i = 0; i < 200 && s.fake.sends.length < 1; i++) await sleep(10);
  await sleep(200);
  t.same(s.fake.sends.map((x) => x.body.text), ['new reply'], 'only the message without a record');
  t.same([...await s.store.notifiedOf(TENANT, sentRecordKey('tg_42'), [fresh], Date.now())], [fresh], 'its record is written');
  t.same([...await s.store.notifiedOf(TENANT, 'agent', [fresh], Date.now())], [], 'under its own key, not a user\'s');
});

t.test('sender - the person\'s own messages, other rooms and rooms a user named tg_ are not sent', async (t) => {
  const s = await setup(t);
  await s.room('tg_42', 'telegram:42');
  await s.room('tg_99', 'mallory');
  await s.room('general', 'agent');
  await s.post('tg_42', 'telegram:42', 'from the person');
  await s.post('tg_99', 'mallory', 'to a number mallory picked');
  await s.post('general', 'agent', 'an ordinary room');
  await s.post('tg_42', 'agent', 'the only reply');
  for (let i = 0; i < 200 && s.fake.sends.length < 1; i++) await sleep(10);
  await sleep(200);
  t.same(s.fake.sends.map((x) => [x.body.chat_id, x.body.text]), [['42', 'the only reply']]);
});

t.test('sender - a 4xx other than 408/429 is dead-lettered at once', async (t) => {
  const s = await setup(t);
  await s.room('tg_42', 'telegram:42');
  s.fake.fail('telegram', 403);
  await s.post('tg_42', 'agent', 'blocked by the user');
  for (let i = 0; i < 200 && !s.lines.some((l) => l.includes('dead-lettered')); i++) await sleep(10);
  t.equal(s.fake.sends.length, 1, 'one try');
  t.match(JSON.parse(s.lines.find((l) => l.includes('dead-lettered'))!), { platform: 'telegram', attempts: 1, error: /HTTP 403/ });
});

t.test('sender - each tenant\'s replies go out with its own credentials; a tenant without any sends nothing', async (t) => {
  const s = await setup(t, { stored: { globex: { 'telegram.botToken': '777:globex-bot-token', 'telegram.secretToken': 'g' } } });
  for (const tenant of ['nocreds', 'globex', TENANT]) await s.room('tg_42', 'telegram:42', tenant);
  // decided in stream order: once the last one is sent, the first was looked at and left alone
  await s.post('tg_42', 'agent', 'from a tenant without Telegram', 'nocreds');
  await s.post('tg_42', 'agent', 'from globex', 'globex');
  await s.post('tg_42', 'agent', 'from acme', TENANT);
  for (let i = 0; i < 300 && s.fake.sends.length < 2; i++) await sleep(10);
  t.same(s.fake.sends.map((x) => [x.path, x.body.text]).sort(), [
    ['/bot777:globex-bot-token/sendMessage', 'from globex'],
    [`/bot${FAKE_BOT_TOKEN}/sendMessage`, 'from acme'],
  ].sort(), 'globex with its bot token, acme (CHANNELS_TENANT) with the deployment\'s; nothing for the tenant without credentials');
  t.equal(s.fake.sends.find((x) => x.body.text === 'from globex')?.status, 401, 'the fake knows only the deployment\'s token: a final failure, dead-lettered');
  for (let i = 0; i < 200 && !s.lines.some((l) => l.includes('dead-lettered')); i++) await sleep(10);
  t.match(JSON.parse(s.lines.find((l) => l.includes('dead-lettered'))!), { tenant: 'globex', platform: 'telegram' }, 'the dead letter names its tenant');
});

t.test('sender - a reply sent counts in the person\'s live session; none is started by a reply', async (t) => {
  const sessions = createMemorySessionStore({ ttlSec: 300 });
  t.teardown(() => sessions.close());
  const s = await setup(t, { sessions });
  await s.room('tg_42', 'telegram:42');
  await s.room('tg_43', 'telegram:43');
  await sessions.touchInbound({ tenant: TENANT, platform: 'telegram', externalUserId: '42' }, { roomId: 'tg_42', newSessionId: 's42', platformMessageId: '42:1', at: Date.now() });
  await s.post('tg_42', 'agent', 'first');
  await s.post('tg_42', 'agent', 'second');
  await s.post('tg_43', 'agent', 'to someone without a session');
  // the session is touched after the platform's answer: wait for it, not for the sends
  const key = { tenant: TENANT, platform: 'telegram' as const, externalUserId: '42' };
  for (let i = 0; i < 300 && ((await sessions.get(key))?.outbound ?? 0) < 2; i++) await sleep(10);
  for (let i = 0; i < 300 && s.fake.sends.length < 3; i++) await sleep(10);
  t.equal(s.fake.sends.length, 3);
  t.match(await sessions.get({ tenant: TENANT, platform: 'telegram', externalUserId: '42' }), { sessionId: 's42', inbound: 1, outbound: 2 });
  t.equal(await sessions.get({ tenant: TENANT, platform: 'telegram', externalUserId: '43' }), undefined, 'a reply starts no session');
});

/** Links as attachment-links makes them for files of ours (`/v1/chat/...`); none for a platform's references. */
const fakeLinks: AttachmentLinks = {
  linkFor: async (_key, a) => (a.url.startsWith('/v1/chat/') ? `https://chat.example.com/link/${a.id}?signature=s` : /^https:/.test(a.url) ? a.url : undefined),
};
const ours = (id: string, type: Attachment['type'], fileName: string): Attachment => ({ id, type, url: `/v1/chat/rooms/tg_42/attachments/${id}`, fileName });

t.test('sender - a reply with files: one send per file by its link, the text as the first one\'s caption, a record per part', async (t) => {
  const s = await setup(t, { links: fakeLinks });
  await s.room('tg_42', 'telegram:42');
  const id = await s.post('tg_42', 'agent', 'the photo and the invoice', TENANT, {
    attachments: [ours('a1', 'image', 'cat.png'), { id: 'MEDIA9', type: 'image', url: 'whatsapp-media:MEDIA9' }, ours('a2', 'file', 'invoice.pdf')],
  });
  for (let i = 0; i < 300 && !s.lines.some((l) => l.includes('channel reply sent')); i++) await sleep(10);
  t.same(s.fake.sends.map((x) => [x.path.split('/').pop(), x.body]), [
    ['sendPhoto', { chat_id: '42', photo: 'https://chat.example.com/link/a1?signature=s', caption: 'the photo and the invoice' }],
    ['sendDocument', { chat_id: '42', document: 'https://chat.example.com/link/a2?signature=s' }],
  ]);
  t.match(JSON.parse(s.lines.find((l) => l.includes('left out'))!), { attachmentId: 'MEDIA9' }, 'another platform\'s reference is left out, with a log line');
  t.match(JSON.parse(s.lines.find((l) => l.includes('channel reply sent'))!), { messageId: id, sends: 2 });
  const records = [id, partRecordId(id, 0), partRecordId(id, 1)];
  t.same([...await s.store.notifiedOf(TENANT, sentRecordKey('tg_42'), records, Date.now())].sort(), records.sort(), 'each part\'s record and the reply\'s');
});

t.test('sender - a reply redelivered after some of its parts went out sends only the rest', async (t) => {
  const s = await setup(t, { links: fakeLinks });
  await s.room('tg_42', 'telegram:42');
  // a sender that died after the first part was taken left its record, not the reply's
  await s.post('tg_42', 'agent', 'x'.repeat(2000), TENANT, {
    attachments: [ours('a1', 'image', 'one.png'), ours('a2', 'image', 'two.png')],
    before: (id) => s.store.markNotified(TENANT, sentRecordKey('tg_42'), [partRecordId(id, 0)], Date.now() + 60_000),
  });
  for (let i = 0; i < 300 && !s.lines.some((l) => l.includes('channel reply sent')); i++) await sleep(10);
  // too long for a caption: part 0 was the text, then one part per photo
  t.same(s.fake.sends.map((x) => x.body.photo ?? x.body.text?.length), ['https://chat.example.com/link/a1?signature=s', 'https://chat.example.com/link/a2?signature=s'], 'the text (part 0) is not sent again');
});

t.test('sender - a reply with nothing a platform can show is dead-lettered without a send', async (t) => {
  const s = await setup(t, { links: fakeLinks });
  await s.room('tg_42', 'telegram:42');
  await s.post('tg_42', 'agent', '', TENANT, { attachments: [{ id: 'MEDIA9', type: 'image', url: 'whatsapp-media:MEDIA9' }] });
  for (let i = 0; i < 200 && !s.lines.some((l) => l.includes('dead-lettered')); i++) await sleep(10);
  t.equal(s.fake.sends.length, 0);
  t.match(JSON.parse(s.lines.find((l) => l.includes('dead-lettered'))!), { platform: 'telegram', error: /nothing the platform can show/ });
});
