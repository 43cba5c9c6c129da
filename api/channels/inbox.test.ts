import t from 'tap';
import { createMemoryBus } from '../../shared/bus/index.ts';
import { MessageCommands, RoomCommands, createStoreRoomAccess } from '../../shared/commands/index.ts';
import { roomKey } from '../../shared/domain/index.ts';
import { Snowflake } from '../../shared/ids/index.ts';
import { createMemoryPresence } from '../../shared/presence/index.ts';
import { createMemoryRateLimiter } from '../../shared/rate-limit/index.ts';
import { createSqliteStore } from '../../shared/store/index.ts';
import { silentLogger } from '../../shared/telemetry/index.ts';
import type { InboundMessage } from '../../shared/channels/index.ts';
import { ChannelInbox } from './inbox.ts';

t.test('inbox - a platform retry after the stream\'s duplicate window is still stored once (received-records)', async (t) => {
  let clock = 1_700_000_000_000;
  const store = createSqliteStore({ file: ':memory:' });
  // the stream remembers a clientMsgId for one second only
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 1000 }, { now: () => clock, dedupeWindowMs: 1000 });
  const presence = createMemoryPresence({ ttlSec: 300, typingTimeoutMs: 3000 });
  const rateLimiter = createMemoryRateLimiter();
  t.teardown(async () => { await bus.close(); await store.close(); await rateLimiter.close(); });
  const ids = new Snowflake(5);
  const rooms = new RoomCommands({ bus, store, presence, ids });
  const messages = new MessageCommands({
    bus, store, presence, ids, access: createStoreRoomAccess(store), rateLimiter, limits: { maxMessageLength: 1000 },
    userRate: { perSecond: 1000, burst: 1000 }, tenantRate: undefined,
  });
  const inbox = new ChannelInbox({ store, bus, rooms, messages, tenant: 'acme', log: silentLogger(), receivedRecordTtlMs: 7 * 86_400_000, now: () => clock });
  const m: InboundMessage = {
    kind: 'message', platformMessageId: 'wamid.LATE', externalUserId: '15550009999', externalUserName: 'Late', type: 'text', content: 'hello', attachments: [], metadata: {},
  };
  t.equal(await inbox.message('whatsapp', m), 'stored');
  clock += 3 * 86_400_000;
  t.equal(await inbox.message('whatsapp', m), 'duplicate', 'three days later, past the stream\'s window');
  t.equal(await inbox.message('whatsapp', { ...m, platformMessageId: 'wamid.NEXT' }), 'stored', 'another message is stored');
  t.ok(await store.getRoom(roomKey('acme', 'wa_15550009999')));

  // a room someone else made under the id the person's room would have: not theirs to write in
  await store.createRoom({ ...(await store.getRoom(roomKey('acme', 'wa_15550009999')))!, roomId: 'wa_15550001234', createdBy: 'mallory' }, []);
  t.equal(await inbox.message('whatsapp', { ...m, externalUserId: '15550001234', platformMessageId: 'wamid.SQUAT' }), 'ignored', 'refused, not an error the platform would retry');
  t.equal(await inbox.message('whatsapp', { ...m, platformMessageId: 'wamid.LONG', content: 'x'.repeat(5000) }), 'ignored', 'too long for the room');
});

t.test('inbox - the latest conversation reference is kept on the person\'s own room only', async (t) => {
  const store = createSqliteStore({ file: ':memory:' });
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 1000 });
  const presence = createMemoryPresence({ ttlSec: 300, typingTimeoutMs: 3000 });
  const rateLimiter = createMemoryRateLimiter();
  t.teardown(async () => { await bus.close(); await store.close(); await rateLimiter.close(); });
  const ids = new Snowflake(6);
  const rooms = new RoomCommands({ bus, store, presence, ids });
  const messages = new MessageCommands({
    bus, store, presence, ids, access: createStoreRoomAccess(store), rateLimiter, limits: { maxMessageLength: 1000 },
    userRate: { perSecond: 1000, burst: 1000 }, tenantRate: undefined,
  });
  const inbox = new ChannelInbox({ store, bus, rooms, messages, tenant: 'acme', log: silentLogger(), receivedRecordTtlMs: 86_400_000 });
  const m: InboundMessage = {
    kind: 'message', platformMessageId: '1', externalUserId: 'person-1', externalUserName: 'Ada', type: 'text', content: 'hi', attachments: [], metadata: {}, conversation: 'ref-A',
  };
  const tags = async (roomId: string) => (await store.getRoom(roomKey('acme', roomId)))!.tags;
  t.equal(await inbox.message('teams', m), 'stored');
  t.same(await tags('mst_person-1'), ['channel', 'channel:teams', 'external:person-1', 'conversation:ref-A'], 'set when the room is made');
  t.equal(await inbox.message('teams', { ...m, platformMessageId: '2' }), 'stored');
  t.same(await tags('mst_person-1'), ['channel', 'channel:teams', 'external:person-1', 'conversation:ref-A'], 'unchanged');
  t.equal(await inbox.message('teams', { ...m, platformMessageId: '3', conversation: 'ref-B' }), 'stored');
  t.same(await tags('mst_person-1'), ['channel', 'channel:teams', 'external:person-1', 'conversation:ref-B'], 'the latest one wins, once');
  t.equal(await inbox.message('teams', { ...m, platformMessageId: '4', conversation: undefined }), 'stored');
  t.same(await tags('mst_person-1'), ['channel', 'channel:teams', 'external:person-1', 'conversation:ref-B'], 'a message without one leaves it');

  await store.createRoom({ ...(await store.getRoom(roomKey('acme', 'mst_person-1')))!, roomId: 'mst_person-2', createdBy: 'mallory', tags: [] }, []);
  t.equal(await inbox.message('teams', { ...m, externalUserId: 'person-2', platformMessageId: '5', conversation: 'ref-C' }), 'ignored');
  t.same(await tags('mst_person-2'), [], 'a room someone else made is not written');
});
