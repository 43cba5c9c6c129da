import t, { type Test } from 'tap';
import { createMemoryBus } from '../../shared/bus/index.ts';
import { loadConfig } from '../../shared/config/index.ts';
import type { Message } from '../../shared/domain/index.ts';
import { Snowflake } from '../../shared/ids/index.ts';
import { createMemoryPresence } from '../../shared/presence/index.ts';
import { encodeMsgpack } from '../../shared/protocol/index.ts';
import { createSqliteStore } from '../../shared/store/index.ts';
import { ev, makeMember, makeMessage, makeRoom } from '../../shared/store/store.contract.ts';
import { silentLogger } from '../../shared/telemetry/index.ts';
import type { NotifyChannel } from './channel.ts';
import type { Notification } from './notification.ts';
import { startNotifier } from './notifier.ts';
import { StoppedError } from './attempts.ts';
import { StopSignal } from './stop-signal.ts';

const COLLAPSE_MS = 150;

async function setup(t: Test, opts: { failFirst?: number } = {}) {
  const config = loadConfig({ NODE_ENV: 'test', NOTIFY_COLLAPSE_MS: String(COLLAPSE_MS) }).notify;
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 10_000 });
  const store = createSqliteStore({ file: ':memory:' });
  const presence = createMemoryPresence({ ttlSec: 300, typingTimeoutMs: 3000 });
  const sent: Notification[] = [];
  let failures = opts.failFirst ?? 0;
  const channel: NotifyChannel = {
    name: 'webhook',
    async send(n) {
      if (failures > 0) {
        failures--;
        throw new Error('the store is down');
      }
      sent.push(n);
    },
  };
  const notifier = startNotifier({ bus, store, presence, config, channels: [channel], stopDeliveries: () => undefined, log: silentLogger() });
  t.teardown(async () => {
    await notifier.stop(1000);
    await bus.close();
    await presence.close();
    await store.close();
  });
  const ids = new Snowflake(3);
  await store.createRoom(makeRoom('general', { type: 'public' }), ['ann', 'bob', 'cat', 'dan'].map((u, i) => makeMember('general', u, { role: i === 0 ? 'owner' : 'member' })));
  await store.createRoom(makeRoom('dm', { type: 'direct' }), [makeMember('dm', 'ann', { role: 'owner' }), makeMember('dm', 'bob')]);
  const post = async (roomId: string, over: Partial<Message>) => {
    const m = makeMessage(roomId, ids.next(), { authorId: 'ann', authorName: 'Ann', content: 'hi', mentions: [], ...over });
    const event = ev.created(m, Date.now());
    await store.applyEvents([event]);
    await bus.publishDurable(roomId, event.id, encodeMsgpack(event));
    return m;
  };
  const republish = async (m: Message) => {
    // the same event again, as a redelivery would hand it over (another dedupe id gets it past the stream's dedupe)
    const event = ev.created(m, Date.now());
    await bus.publishDurable(m.roomId, `${event.id}-again`, encodeMsgpack(event));
  };
  return { bus, store, presence, sent, post, republish };
}

const settle = (ms = COLLAPSE_MS * 4) => new Promise((r) => setTimeout(r, ms));

t.test('notifier - an offline user mentioned twice in a room gets one notification with both; the author and unmentioned members none', async (t) => {
  const f = await setup(t);
  const m1 = await f.post('general', { content: 'hey @bob', mentions: ['bob'] });
  const m2 = await f.post('general', { content: '@bob are you there?', mentions: ['bob'] });
  await settle();
  t.equal(f.sent.length, 1, 'collapsed into one');
  t.match(f.sent[0], { userId: 'bob', reason: 'mention', room: { roomId: 'general', type: 'public' }, notificationId: `${m1.messageId}.bob` });
  t.strictSame(f.sent[0]!.messages.map((i) => i.message.messageId), [m1.messageId, m2.messageId]);
});

t.test('notifier - an online user gets nothing; a direct message and a reply notify; banned and non-members never', async (t) => {
  const f = await setup(t);
  await f.presence.connect({ tenant: 'default', userId: 'cat', connectionId: 'c1' });
  await f.post('general', { content: '@cat @zed hello', mentions: ['cat', 'zed'] });
  const dm = await f.post('dm', { content: 'psst' });
  const root = await f.post('general', { authorId: 'dan', authorName: 'Dan', content: 'a question' });
  await settle();
  t.strictSame(f.sent.map((n) => [n.userId, n.reason]), [['bob', 'direct']], 'cat is online, zed no member; the direct message notifies bob');
  t.equal(f.sent[0]!.messages[0]!.message.messageId, dm.messageId);
  await f.post('general', { content: 'an answer', replyTo: root.messageId });
  await settle();
  t.strictSame(f.sent.map((n) => [n.userId, n.reason]), [['bob', 'direct'], ['dan', 'reply']], 'the author of the replied-to message');
});

t.test('notifier - once its room is known, a message that concerns nobody is passed over, and the rest still notify; a message past NOTIFY_MAX_AGE never', async (t) => {
  const f = await setup(t);
  // the first messages of each room make the notifier read (and remember) the room
  const root = await f.post('general', { authorId: 'dan', authorName: 'Dan', content: 'plain words' });
  await f.post('dm', { content: 'first' });
  await settle();
  t.strictSame(f.sent.map((n) => [n.userId, n.reason]), [['bob', 'direct']]);
  await f.post('general', { content: 'more plain words' });
  await f.post('general', { authorId: 'bob', authorName: 'Bob', content: 'hi @cat', mentions: ['cat'] });
  await f.post('general', { content: 'in the thread', threadId: root.messageId });
  await f.post('dm', { authorId: 'bob', authorName: 'Bob', content: 'second' });
  await settle();
  t.strictSame(f.sent.slice(1).map((n) => [n.userId, n.reason]).sort(), [['ann', 'direct'], ['cat', 'mention'], ['dan', 'reply']],
    'with the rooms remembered: the mention, the thread reply and the direct message notify, the plain message nobody');
  const old = makeMessage('general', new Snowflake(5).next(), { authorId: 'ann', content: '@bob long ago', mentions: ['bob'] });
  const event = ev.created(old, Date.now() - 2 * loadConfig({ NODE_ENV: 'test' }).notify.maxAgeMs);
  await f.bus.publishDurable('general', event.id, encodeMsgpack(event));
  await settle();
  t.equal(f.sent.length, 4, 'a message older than NOTIFY_MAX_AGE notifies nobody');
});

t.test('notifier - preferences: a muted room and the level decide', async (t) => {
  const f = await setup(t);
  await f.store.putNotificationPrefs('default', 'bob', { level: 'all', mutedRooms: ['general'] });
  await f.store.putNotificationPrefs('default', 'dan', { level: 'mentions', mutedRooms: [] });
  await f.store.putNotificationPrefs('default', 'cat', { level: 'none', mutedRooms: [] });
  const root = await f.post('general', { authorId: 'dan', authorName: 'Dan', content: 'q' });
  await f.post('general', { content: '@bob @cat', mentions: ['bob', 'cat'], replyTo: root.messageId });
  await f.post('dm', { content: 'dm to muted-elsewhere bob' });
  await settle();
  t.strictSame(f.sent.map((n) => [n.userId, n.room.roomId, n.reason]), [['bob', 'dm', 'direct']],
    'bob muted general (not dm), cat wants none, dan wants mentions only (a reply is not one)');
  await f.post('general', { content: 'now @dan', mentions: ['dan'] });
  await settle();
  t.strictSame(f.sent.map((n) => n.userId), ['bob', 'dan'], 'a mention reaches the mentions level');
});

t.test('notifier - a redelivered event finds its sent-record and notifies nobody again; a failed notification is retried from the stream', async (t) => {
  const f = await setup(t, { failFirst: 1 });
  const m = await f.post('general', { content: '@bob', mentions: ['bob'] });
  await settle(COLLAPSE_MS * 4 + 600);
  t.equal(f.sent.length, 1, 'sent once, after the failed try came back');
  t.strictSame([...await f.store.notifiedOf('default', 'bob', [m.messageId], Date.now())], [m.messageId], 'the sent-record is written');
  await f.republish(m);
  await settle();
  t.equal(f.sent.length, 1, 'the redelivery sent nothing');
});

t.test('notifier - stopping ends deliveries waiting for a retry at once; their event goes to the next notifier', async (t) => {
  const config = loadConfig({ NODE_ENV: 'test', NOTIFY_COLLAPSE_MS: '50' }).notify;
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 10_000 });
  const store = createSqliteStore({ file: ':memory:' });
  const presence = createMemoryPresence({ ttlSec: 300, typingTimeoutMs: 3000 });
  t.teardown(async () => { await bus.close(); await presence.close(); await store.close(); });
  await store.createRoom(makeRoom('general'), [makeMember('general', 'ann', { role: 'owner' }), makeMember('general', 'bob')]);
  const signal = new StopSignal();
  let tries = 0;
  const stuck: NotifyChannel = {
    name: 'webhook',
    async send() {
      tries++;
      await signal.sleep(60_000); // a retry far away
      if (!signal.running()) throw new StoppedError('stopping');
    },
  };
  const first = startNotifier({ bus, store, presence, config, channels: [stuck], stopDeliveries: () => signal.stop(), log: silentLogger() });
  const m = makeMessage('general', new Snowflake(4).next(), { authorId: 'ann', content: '@bob', mentions: ['bob'] });
  const event = ev.created(m, Date.now());
  await store.applyEvents([event]);
  await bus.publishDurable('general', event.id, encodeMsgpack(event));
  while (tries === 0) await settle(20);
  const began = Date.now();
  await first.stop(5000);
  t.ok(Date.now() - began < 1000, `stopped in ${Date.now() - began} ms, not after the retry`);

  const sent: Notification[] = [];
  const second = startNotifier({
    bus, store, presence, config, channels: [{ name: 'webhook', send: async (n) => { sent.push(n); } }], stopDeliveries: () => undefined, log: silentLogger(),
  });
  t.teardown(() => second.stop(1000));
  await settle(800);
  t.strictSame(sent.map((n) => n.messages[0]!.message.messageId), [m.messageId], 'the next notifier sends it');
});
