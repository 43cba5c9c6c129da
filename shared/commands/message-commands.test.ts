import t, { type Test } from 'tap';
import { createMemoryBus } from '../bus/index.ts';
import { createSqliteStore, type Store } from '../store/index.ts';
import { createMemoryPresence } from '../presence/index.ts';
import { createMemoryRateLimiter, type RateRule } from '../rate-limit/index.ts';
import { ChatError, decodeMsgpack, eventToFrame } from '../protocol/index.ts';
import { Snowflake, idTime } from '../ids/index.ts';
import { roomIdOf, type DurableEvent, type RoomMember } from '../domain/index.ts';
import type { Principal } from '../auth/index.ts';
import { MessageCommands } from './message-commands.ts';
import { RoomCommands } from './room-commands.ts';
import { createStoreRoomAccess } from './room-access.ts';
import { roomKey } from '../domain/index.ts';

/** The key of the fixtures' tenant's room `id` (not the bare id: the tenant is not the default one). */
const k = (id: string, tenant = 'acme') => roomKey(tenant, id);

const as = (userId: string, tenant = 'acme'): Principal => ({
  userId, name: userId[0]!.toUpperCase() + userId.slice(1), tenant, roles: [], expiresAt: undefined,
});
const alice = as('alice');
const bob = as('bob');
const carol = as('carol');

/** 2^63 - 1, the largest id; one more is past the signed 64-bit range the stores keep. */
const MAX_ID = '9223372036854775807';
const PAST_MAX_ID = '9223372036854775808';
/** An id made in 2024, long before any test runs: looking it up never waits for the persister. */
const OLD_ID = '1000';
/**
 * The fixture's ids are made this far in the past, so a lookup that misses returns at once instead
 * of waiting for a persister batch (requireMessage waits only for ids younger than a minute).
 */
const IDS_BEHIND_MS = 10 * 60_000;

interface Options { userRate?: RateRule; tenantRate?: RateRule; maxMessages?: number; idsBehindMs?: number }

/** Message commands over a fresh in-memory store, bus, presence and rate limiter. */
async function setup(t: Test, opts: Options = {}) {
  const store = createSqliteStore({ file: ':memory:' });
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: opts.maxMessages ?? 10_000 });
  const presence = createMemoryPresence({ ttlSec: 300, typingTimeoutMs: 3000 });
  const rateLimiter = createMemoryRateLimiter();
  t.teardown(async () => { await bus.close(); await presence.close(); await rateLimiter.close(); await store.close(); });
  const ids = new Snowflake(1, () => Date.now() - (opts.idsBehindMs ?? IDS_BEHIND_MS));
  let lookups = 0;
  const counted: Store = { ...store, getMessage: (roomId, messageId) => { lookups++; return store.getMessage(roomId, messageId); } };
  const rooms = new RoomCommands({ bus, store, presence, ids });
  const messages = new MessageCommands({
    bus, store: counted, presence, ids, access: createStoreRoomAccess(store), limits: { maxMessageLength: 100 },
    rateLimiter, userRate: opts.userRate ?? { perSecond: 1000, burst: 1000 }, tenantRate: opts.tenantRate,
  });
  const live: Array<{ key: string; frame: any }> = [];
  // what a gateway makes of the room's live subject: stored events (republished with their seq) as frames, ephemeral frames as they are
  bus.subscribe('chat.live.*', (payload, subject, seq) => {
    const key = subject.split('.')[2]!;
    live.push({ key, frame: seq === undefined ? decodeMsgpack(payload) : eventToFrame(decodeMsgpack(payload) as DurableEvent, seq, roomIdOf(key)) });
  });

  /** The room's events in the stream, in order. */
  const events = async (roomId: string, tenant = 'acme') => {
    const out: Array<{ seq: number; event: DurableEvent }> = [];
    await bus.replay(k(roomId, tenant), 0, (m) => out.push({ seq: m.seq, event: decodeMsgpack(m.data) as DurableEvent }));
    return out;
  };
  return {
    store, bus, presence, rooms, messages, events,
    lookups: () => lookups,
    /** The live frames the room's event subject carried. */
    frames: (roomId: string, tenant = 'acme') => live.filter((l) => l.key === k(roomId, tenant)).map((l) => l.frame),
    kinds: async (roomId: string) => (await events(roomId)).map((e) => e.event.kind),
    /** What the persister would do: apply the room's stream to the store (idempotent). */
    persist: async (roomId: string) => store.applyEvents((await events(roomId)).map((e) => e.event)),
    /** A room owned by alice: `members` join a discoverable one and are added to the others. */
    async room(type: 'public' | 'private' | 'group' | 'announcement' = 'public', ...members: Principal[]) {
      const discoverable = type === 'public' || type === 'announcement';
      const room = await rooms.create(alice, { name: type, type, members: discoverable ? [] : members.map((m) => ({ userId: m.userId })) });
      if (discoverable) for (const m of members) await rooms.join(m, room.roomId);
      return room.roomId;
    },
    /** Changes a membership directly in the store (setup, not under test). */
    async put(roomId: string, userId: string, changes: Partial<RoomMember>) {
      await store.putMember(k(roomId), { ...(await store.getMember(k(roomId), userId))!, ...changes });
    },
    unread: async (who: Principal, roomId: string) => (await presence.unreadCounts(who.tenant, who.userId, [roomId])).get(roomId),
  };
}

const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (err: unknown) => (err instanceof ChatError ? err.code : `not a ChatError: ${String(err)}`));

t.test('message commands - send stores one message.created event, then publishes new_message with its sequence', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob);
  const sent = await f.messages.send(alice, {
    roomId, content: 'hi @bob', mentions: ['carol'], clientMsgId: 'c-1', metadata: { poll: false },
  });
  t.equal(sent.duplicate, false);
  t.match(sent.message, {
    roomId, authorId: 'alice', authorName: 'Alice', content: 'hi @bob', type: 'text', reactions: {}, replyTo: null, threadId: null,
    mentions: ['carol', 'bob'], attachments: [], isEdited: false, isDeleted: false, isPinned: false, isAnonymous: false,
    clientMsgId: 'c-1', metadata: { poll: false },
  });
  t.equal(sent.message.timestamp, new Date(idTime(sent.message.messageId)).toISOString(), 'the time is the id\'s');

  const stored = await f.events(roomId);
  t.equal(stored.length, 1);
  t.same(stored[0], {
    seq: sent.seq,
    event: { kind: 'message.created', id: sent.message.messageId, at: idTime(sent.message.messageId), roomId: k(roomId), message: sent.message },
  });
  t.same(f.frames(roomId), [{ type: 'new_message', roomId, message: sent.message, seq: sent.seq }]);
  t.equal(await f.unread(bob, roomId), 1, 'counted unread for the others');
  t.equal(await f.unread(alice, roomId), 0, 'not for the author');

  await f.persist(roomId);
  t.match(await f.store.getMessage(k(roomId), sent.message.messageId), { content: 'hi @bob', authorId: 'alice' });
});

t.test('message commands - the author name is the membership\'s; an anonymous send hides it', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob);
  await f.put(roomId, 'bob', { displayName: 'Bobby', avatar: 'https://cdn.example/bob.png' });
  const named = await f.messages.send(bob, { roomId, content: 'named' });
  t.match(named.message, { authorName: 'Bobby', authorAvatar: 'https://cdn.example/bob.png', isAnonymous: false });
  t.notOk('anonymousName' in named.message);
  const hidden = await f.messages.send(bob, { roomId, content: 'guess who', isAnonymous: true });
  t.match(hidden.message, { authorName: 'Anonymous', anonymousName: 'Anonymous', isAnonymous: true });
  t.match(f.frames(roomId)[1], { message: { authorName: 'Anonymous' } }, 'the live frame carries the hidden name');
});

t.test('message commands - an anonymous message does not carry the author\'s avatar', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob);
  await f.put(roomId, 'bob', { avatar: 'https://cdn.example/bob.png' });
  const hidden = await f.messages.send(bob, { roomId, content: 'guess who', isAnonymous: true });
  t.equal(hidden.message.authorAvatar, undefined);
  t.equal(f.frames(roomId)[0]?.message.authorAvatar, undefined);
});

t.test('message commands - a retried clientMsgId returns the first message with duplicate: true and stores one event', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob);
  const first = await f.messages.send(alice, { roomId, content: 'once', clientMsgId: 'c-1' });
  const retry = await f.messages.send(alice, { roomId, content: 'changed on retry', clientMsgId: 'c-1' });
  t.same(retry, { message: first.message, seq: first.seq, duplicate: true }, 'the first message, as it was stored');
  t.same(await f.kinds(roomId), ['message.created']);
  // issue 17: the stream announces what it stores, once; a retry (stored already, so announced) adds nothing
  t.same(f.frames(roomId), [{ type: 'new_message', roomId, message: first.message, seq: first.seq }], 'announced once, by the stream, not again on the retry');
  t.equal(await f.unread(bob, roomId), 1, 'a retry is not counted as another unread message');

  const byBob = await f.messages.send(bob, { roomId, content: 'mine', clientMsgId: 'c-1' });
  t.equal(byBob.duplicate, false, 'the id is the sender\'s own');
  const otherTenant = as('alice', 'globex');
  const elsewhere = (await f.rooms.create(otherTenant, { name: 'g', type: 'public' })).roomId;
  t.equal((await f.messages.send(otherTenant, { roomId: elsewhere, content: 'other alice', clientMsgId: 'c-1' })).duplicate, false, 'and their tenant\'s');
  t.same(await f.kinds(roomId), ['message.created', 'message.created']);
});

t.test('message commands - a clientMsgId whose first message has left the stream is a conflict', async (t) => {
  const f = await setup(t, { maxMessages: 1 });
  const roomId = await f.room('public');
  await f.messages.send(alice, { roomId, content: 'first', clientMsgId: 'c-1' });
  await f.messages.send(alice, { roomId, content: 'pushes the first out' });
  await t.rejects(f.messages.send(alice, { roomId, content: 'first', clientMsgId: 'c-1' }), { code: 'conflict', message: /c-1/ });
  t.equal(f.frames(roomId).length, 2, 'nothing announced for the refused retry');
});

t.test('message commands - a clientMsgId used again in another room sends there', async (t) => {
  const f = await setup(t);
  const first = await f.room('public');
  const second = await f.room('public');
  await f.messages.send(alice, { roomId: first, content: 'in the first room', clientMsgId: 'c-1' });
  const sent = await f.messages.send(alice, { roomId: second, content: 'in the second room', clientMsgId: 'c-1' });
  t.equal(sent.message.roomId, second);
  t.same(f.frames(second).map((fr) => fr.message?.roomId), [second], 'the second room hears only of its own messages');
});

t.test('message commands - a room of another tenant is not_found to every command, and nothing reaches the stream', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob);
  const { message } = await f.messages.send(alice, { roomId, content: 'hello' });
  await f.persist(roomId);
  const stranger = as('alice', 'globex');
  const messageId = message.messageId;
  t.same({
    send: await codeOf(f.messages.send(stranger, { roomId, content: 'hi' })),
    edit: await codeOf(f.messages.edit(stranger, { roomId, messageId, content: 'mine' })),
    delete: await codeOf(f.messages.delete(stranger, { roomId, messageId })),
    react: await codeOf(f.messages.react(stranger, { roomId, messageId, emoji: '👍' })),
    pin: await codeOf(f.messages.pin(stranger, { roomId, messageId, pinned: true })),
    markRead: await codeOf(f.messages.markRead(stranger, { roomId, messageId })),
  }, { send: 'not_found', edit: 'not_found', delete: 'not_found', react: 'not_found', pin: 'not_found', markRead: 'not_found' });
  t.same(await f.kinds(roomId), ['message.created']);
  t.equal(f.frames(roomId).length, 1);
});

t.test('message commands - outsiders and banned members: not_found in a private room, forbidden in a public one', async (t) => {
  for (const [type, code] of [['private', 'not_found'], ['public', 'forbidden']] as const) {
    const f = await setup(t);
    const roomId = await f.room(type, bob, carol);
    const { message } = await f.messages.send(bob, { roomId, content: 'hello' });
    await f.persist(roomId);
    await f.put(roomId, 'carol', { isBanned: true });
    for (const who of [as('dave'), carol]) {
      t.same({
        send: await codeOf(f.messages.send(who, { roomId, content: 'let me in' })),
        react: await codeOf(f.messages.react(who, { roomId, messageId: message.messageId, emoji: '👀' })),
        markRead: await codeOf(f.messages.markRead(who, { roomId, messageId: message.messageId })),
      }, { send: code, react: code, markRead: code }, `${type} room, ${who.userId}`);
    }
    t.same(await f.kinds(roomId), ['message.created'], `${type} room: nothing reached the stream`);
  }
});

t.test('message commands - announcement rooms: moderators and up post; members react and mark read', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('announcement', bob, carol);
  await f.put(roomId, 'carol', { role: 'moderator' });
  await t.rejects(f.messages.send(bob, { roomId, content: 'me too' }), { code: 'forbidden', message: /announcement/ });
  const news = await f.messages.send(carol, { roomId, content: 'release 1.0' });
  await f.persist(roomId);
  t.equal((await f.messages.react(bob, { roomId, messageId: news.message.messageId, emoji: '🎉' })).action, 'add');
  await f.messages.markRead(bob, { roomId, messageId: news.message.messageId });
  t.same(await f.kinds(roomId), ['message.created', 'reaction.added', 'read.marked']);
});

t.test('message commands - a muted member cannot send, edit or react, but still deletes their own and marks read', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob);
  const { message } = await f.messages.send(bob, { roomId, content: 'before the mute' });
  await f.persist(roomId);
  await f.put(roomId, 'bob', { isMuted: true });
  const messageId = message.messageId;
  t.same({
    send: await codeOf(f.messages.send(bob, { roomId, content: 'still here' })),
    edit: await codeOf(f.messages.edit(bob, { roomId, messageId, content: 'rewritten' })),
    react: await codeOf(f.messages.react(bob, { roomId, messageId, emoji: '👍' })),
    markRead: await codeOf(f.messages.markRead(bob, { roomId, messageId })),
    delete: await codeOf(f.messages.delete(bob, { roomId, messageId })),
  }, { send: 'forbidden', edit: 'forbidden', react: 'forbidden', markRead: 'ok', delete: 'ok' });
  t.same(await f.kinds(roomId), ['message.created', 'read.marked', 'message.deleted']);
});

t.test('message commands - an archived room takes no new message; its members still react and mark read', async (t) => {
  const f = await setup(t);
  const live = await f.room('public', bob);
  const { message } = await f.messages.send(bob, { roomId: live, content: 'last words' });
  // Archiving is no command: the room is written archived, with its members and its message, directly.
  const roomId = 'archived_1';
  const room = (await f.store.getRoom(k(live)))!;
  const { members } = await f.store.listMembers(k(live), { limit: 10, offset: 0 });
  await f.store.createRoom({ ...room, roomId, isActive: false }, members.map((m) => ({ ...m, roomId })));
  const messageId = message.messageId;
  await f.store.applyEvents([{ kind: 'message.created', id: messageId, at: idTime(messageId), roomId: k(roomId), message: { ...message, roomId } }]);

  await t.rejects(f.messages.send(alice, { roomId, content: 'anyone?' }), { code: 'forbidden', message: /archived/ }, 'not even the owner');
  await f.messages.react(bob, { roomId, messageId, emoji: '🕯️' });
  await f.messages.markRead(alice, { roomId, messageId });
  t.same(await f.kinds(roomId), ['reaction.added', 'read.marked']);
});

t.test('message commands - edit: only the author edits, never a deleted message', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob, carol);
  await f.put(roomId, 'bob', { role: 'admin' });
  const { message } = await f.messages.send(carol, { roomId, content: 'draft' });
  await f.persist(roomId);
  const messageId = message.messageId;

  await t.rejects(f.messages.edit(bob, { roomId, messageId, content: 'admin words' }), { code: 'forbidden', message: /author/ });
  await t.rejects(f.messages.edit(alice, { roomId, messageId, content: 'owner words' }), { code: 'forbidden' }, 'not even the owner');
  const edited = await f.messages.edit(carol, { roomId, messageId, content: 'final' });
  const [, stored] = await f.events(roomId);
  t.match(stored, { seq: edited.seq, event: { kind: 'message.edited', roomId, messageId, userId: 'carol', content: 'final', at: edited.at } });
  t.same(f.frames(roomId).at(-1), {
    type: 'message_updated', roomId, messageId, content: 'final', editedAt: new Date(edited.at).toISOString(), userId: 'carol', seq: edited.seq,
  });
  await t.rejects(f.messages.edit(carol, { roomId, messageId: OLD_ID, content: 'x' }), { code: 'not_found' });
  await t.rejects(f.messages.edit(carol, { roomId, messageId, content: '   ' }), { code: 'bad_request' }, 'the content is checked as in a send');
  await t.rejects(f.messages.edit(carol, { roomId, messageId, content: 'x'.repeat(101) }), { code: 'too_large' });

  await f.messages.delete(carol, { roomId, messageId });
  await f.persist(roomId);
  await t.rejects(f.messages.edit(carol, { roomId, messageId, content: 'undo' }), { code: 'conflict', message: /deleted/ });
  t.same(await f.kinds(roomId), ['message.created', 'message.edited', 'message.deleted']);
});

t.test('message commands - delete: authors delete their own, moderators anyone\'s, members nobody else\'s', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob, carol);
  await f.put(roomId, 'carol', { role: 'moderator' });
  const byAlice = (await f.messages.send(alice, { roomId, content: 'owner speaking' })).message.messageId;
  const byBob = (await f.messages.send(bob, { roomId, content: 'spam' })).message.messageId;
  await f.persist(roomId);

  await t.rejects(f.messages.delete(bob, { roomId, messageId: byAlice }), { code: 'forbidden', message: /moderators/ });
  const removed = await f.messages.delete(carol, { roomId, messageId: byBob });
  t.match((await f.events(roomId)).at(-1), { seq: removed.seq, event: { kind: 'message.deleted', messageId: byBob, userId: 'carol' } });
  t.same(f.frames(roomId).at(-1), {
    type: 'message_deleted', roomId, messageId: byBob, deletedAt: new Date(removed.at).toISOString(), userId: 'carol', seq: removed.seq,
  });
  await f.messages.delete(alice, { roomId, messageId: byAlice });
  await t.rejects(f.messages.delete(alice, { roomId, messageId: OLD_ID }), { code: 'not_found' });
  t.same(await f.kinds(roomId), ['message.created', 'message.created', 'message.deleted', 'message.deleted']);
});

t.test('message commands - reactions: add and remove are events; a deleted message takes none', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob);
  const messageId = (await f.messages.send(alice, { roomId, content: 'react to me' })).message.messageId;
  await f.persist(roomId);

  const added = await f.messages.react(bob, { roomId, messageId, emoji: '👍' });
  t.equal(added.action, 'add', 'add unless told otherwise');
  await f.persist(roomId);
  const removed = await f.messages.react(bob, { roomId, messageId, emoji: '👍', action: 'remove' });
  t.equal(removed.action, 'remove');
  t.match((await f.events(roomId)).slice(1), [
    { seq: added.seq, event: { kind: 'reaction.added', messageId, userId: 'bob', emoji: '👍' } },
    { seq: removed.seq, event: { kind: 'reaction.removed', messageId, userId: 'bob', emoji: '👍' } },
  ]);
  t.match(f.frames(roomId).slice(1), [
    { type: 'reaction_updated', messageId, emoji: '👍', userId: 'bob', action: 'add', seq: added.seq },
    { type: 'reaction_updated', messageId, emoji: '👍', userId: 'bob', action: 'remove', seq: removed.seq },
  ]);
  await t.rejects(f.messages.react(bob, { roomId, messageId: OLD_ID, emoji: '👍' }), { code: 'not_found' });

  await f.messages.delete(alice, { roomId, messageId });
  await f.persist(roomId);
  await t.rejects(f.messages.react(bob, { roomId, messageId, emoji: '😢' }), { code: 'conflict', message: /deleted/ });
  t.equal((await f.events(roomId)).length, 4, 'created, added, removed, deleted');
});

t.test('message commands - mentions name users by canonical id: fullwidth folds, invisible characters are refused (issue 12)', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob);
  const sent = await f.messages.send(bob, { roomId, content: 'hey', mentions: ['ａｌｉｃｅ', 'alice'] });
  t.same(sent.message.mentions, ['alice']);
  await t.rejects(f.messages.send(bob, { roomId, content: 'hey', mentions: ['ali\u200bce'] }), { code: 'bad_request', message: /mentioned user id/ });
  t.same(await f.kinds(roomId), ['message.created'], 'the refused send stored nothing');
});

t.test('message commands - reactions: removing one that is not yours is not_found, and nothing is stored or announced', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob);
  const messageId = (await f.messages.send(alice, { roomId, content: 'react to me' })).message.messageId;
  await f.persist(roomId);
  await f.messages.react(alice, { roomId, messageId, emoji: '👍' });
  await f.persist(roomId);
  const before = { events: (await f.events(roomId)).length, frames: f.frames(roomId).length };

  await t.rejects(f.messages.react(bob, { roomId, messageId, emoji: '👍', action: 'remove' }), { code: 'not_found', message: /no 👍 reaction/ }, 'the owner\'s reaction');
  await t.rejects(f.messages.react(bob, { roomId, messageId, emoji: '🦄', action: 'remove' }), { code: 'not_found' }, 'a reaction nobody made');
  t.equal((await f.events(roomId)).length, before.events, 'nothing reached the stream');
  t.equal(f.frames(roomId).length, before.frames, 'no reaction_updated was announced');
  await f.persist(roomId);
  t.same((await f.store.getMessage(k(roomId), messageId))?.reactions, { '👍': ['alice'] }, 'the owner\'s reaction stays');

  const mine = await f.messages.react(alice, { roomId, messageId, emoji: '👍', action: 'remove' });
  t.equal(mine.action, 'remove', 'the owner still takes back their own');
});

t.test('message commands - pins: moderators and up in public rooms, anyone in group rooms; a deleted message is not pinned', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob, carol);
  await f.put(roomId, 'carol', { role: 'moderator' });
  const messageId = (await f.messages.send(bob, { roomId, content: 'rules' })).message.messageId;
  await f.persist(roomId);

  await t.rejects(f.messages.pin(bob, { roomId, messageId, pinned: true }), { code: 'forbidden' }, 'not even the author');
  await t.rejects(f.messages.pin(bob, { roomId, messageId: OLD_ID, pinned: true }), { code: 'forbidden' }, 'the right to pin is checked before the message');
  const pinned = await f.messages.pin(carol, { roomId, messageId, pinned: true });
  const unpinned = await f.messages.pin(carol, { roomId, messageId, pinned: false });
  t.match((await f.events(roomId)).slice(1), [
    { seq: pinned.seq, event: { kind: 'message.pinned', messageId, userId: 'carol' } },
    { seq: unpinned.seq, event: { kind: 'message.unpinned', messageId, userId: 'carol' } },
  ]);
  t.match(f.frames(roomId).slice(1), [
    { type: 'message_pinned', messageId, pinned: true, userId: 'carol', seq: pinned.seq },
    { type: 'message_pinned', messageId, pinned: false, userId: 'carol', seq: unpinned.seq },
  ]);
  await t.rejects(f.messages.pin(carol, { roomId, messageId: OLD_ID, pinned: true }), { code: 'not_found' });

  await f.messages.delete(bob, { roomId, messageId });
  await f.persist(roomId);
  await t.rejects(f.messages.pin(carol, { roomId, messageId, pinned: true }), { code: 'conflict', message: /deleted/ });
  await f.messages.pin(carol, { roomId, messageId, pinned: false });
  t.same((await f.kinds(roomId)).slice(-2), ['message.deleted', 'message.unpinned'], 'a deleted message may still be unpinned');

  const group = await f.room('group', bob);
  const inGroup = (await f.messages.send(alice, { roomId: group, content: 'pin me' })).message.messageId;
  await f.persist(group);
  await f.messages.pin(bob, { roomId: group, messageId: inGroup, pinned: true });
  t.same(await f.kinds(group), ['message.created', 'message.pinned'], 'any member pins in a group room');
});

t.test('message commands - ids past 2^63 are bad_request on every command, before the stream', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob);
  const before = await f.kinds(roomId);
  for (const id of [PAST_MAX_ID, '99999999999999999999', '123456789012345678901', 'abc', '-1', '1.5']) {
    t.same({
      replyTo: await codeOf(f.messages.send(alice, { roomId, content: 'x', replyTo: id })),
      threadId: await codeOf(f.messages.send(alice, { roomId, content: 'x', threadId: id })),
      edit: await codeOf(f.messages.edit(alice, { roomId, messageId: id, content: 'x' })),
      delete: await codeOf(f.messages.delete(alice, { roomId, messageId: id })),
      react: await codeOf(f.messages.react(alice, { roomId, messageId: id, emoji: '👍' })),
      pin: await codeOf(f.messages.pin(alice, { roomId, messageId: id, pinned: true })),
      markRead: await codeOf(f.messages.markRead(alice, { roomId, messageId: id })),
      markDelivered: await codeOf(f.messages.markDelivered(roomId, id, 'bob')),
    }, {
      replyTo: 'bad_request', threadId: 'bad_request', edit: 'bad_request', delete: 'bad_request',
      react: 'bad_request', pin: 'bad_request', markRead: 'bad_request', markDelivered: 'bad_request',
    }, id);
  }
  t.same(await f.kinds(roomId), before, 'nothing reached the stream');
  t.same(f.frames(roomId), []);
  await f.messages.markRead(bob, { roomId, messageId: MAX_ID });
  t.same(await f.kinds(roomId), ['read.marked'], '2^63 - 1 is still an id');
});

t.test('message commands - replyTo and threadId must name a message of the same room', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob);
  const other = await f.room('public', bob);
  const root = (await f.messages.send(alice, { roomId, content: 'root' })).message.messageId;
  const elsewhere = (await f.messages.send(alice, { roomId: other, content: 'in the other room' })).message.messageId;
  await f.persist(roomId);
  await f.persist(other);

  await t.rejects(f.messages.send(bob, { roomId, content: 'x', replyTo: OLD_ID }), { code: 'not_found', message: /replied-to message/ });
  await t.rejects(f.messages.send(bob, { roomId, content: 'x', threadId: OLD_ID }), { code: 'not_found', message: /thread root/ });
  await t.rejects(f.messages.send(bob, { roomId, content: 'x', replyTo: elsewhere }), { code: 'not_found' }, 'a message of another room');
  await t.rejects(f.messages.send(bob, { roomId, content: 'x', threadId: elsewhere }), { code: 'not_found' });
  t.same(await f.kinds(roomId), ['message.created'], 'no refused message was stored');

  const reply = await f.messages.send(bob, { roomId, content: 'in the thread', threadId: root, replyTo: root });
  t.match(reply.message, { threadId: root, replyTo: root });
  t.match((await f.events(roomId)).at(-1)?.event, { kind: 'message.created', message: { threadId: root, replyTo: root } });
});

t.test('message commands - a message acked a moment ago is waited for; an old id is not', async (t) => {
  const f = await setup(t, { idsBehindMs: 0 });
  const roomId = await f.room('public', bob);
  const root = (await f.messages.send(alice, { roomId, content: 'not persisted yet' })).message.messageId;
  const persisting = new Promise((resolve) => setTimeout(() => resolve(f.persist(roomId)), 50));
  const before = f.lookups();
  const reply = await f.messages.send(bob, { roomId, content: 'found after the wait', replyTo: root });
  await persisting;
  t.equal(reply.message.replyTo, root);
  t.equal(f.lookups() - before, 2, 'looked up again after the persister\'s window');

  const again = f.lookups();
  await t.rejects(f.messages.send(bob, { roomId, content: 'x', replyTo: OLD_ID }), { code: 'not_found' });
  t.equal(f.lookups() - again, 1, 'an old id is looked up once');
});

t.test('message commands - rate limits: per user, shared per tenant, taken only after authorization', async (t) => {
  const slow = (burst: number): RateRule => ({ perSecond: 0.001, burst });

  await t.test('per user', async (t) => {
    const f = await setup(t, { userRate: slow(3) });
    const roomId = await f.room('public', bob);
    const globex = as('alice', 'globex');
    const theirs = (await f.rooms.create(globex, { name: 'g', type: 'public' })).roomId;
    for (let i = 0; i < 3; i++) await t.rejects(f.messages.send(alice, { roomId: theirs, content: 'not my tenant' }), { code: 'not_found' });
    const first = (await f.messages.send(alice, { roomId, content: '1' })).message.messageId;
    await f.persist(roomId);
    await f.messages.edit(alice, { roomId, messageId: first, content: 'edited' });
    await f.messages.send(alice, { roomId, content: '2' });
    const limited = await f.messages.send(alice, { roomId, content: '3' }).catch((err: unknown) => err);
    t.match(limited, { code: 'rate_limited', details: { retryAfterMs: Number } }, 'refusals took nothing, a send and an edit one token each');
    t.ok((limited as ChatError).details!.retryAfterMs as number > 0);
    t.same(await codeOf(f.messages.edit(alice, { roomId, messageId: first, content: 'again' })), 'rate_limited', 'edits take from the same bucket');
    t.same(await codeOf(f.messages.react(alice, { roomId, messageId: first, emoji: '👍' })), 'rate_limited', 'so do reactions');
    t.same(await codeOf(f.messages.delete(alice, { roomId, messageId: first })), 'rate_limited', 'and deletes');
    t.same(await codeOf(f.messages.send(bob, { roomId, content: 'bob has his own bucket' })), 'ok');
    t.same(await codeOf(f.messages.send(globex, { roomId: theirs, content: 'other alice' })), 'ok', 'the same id in another tenant has its own bucket');
    t.same(await f.kinds(roomId), ['message.created', 'message.edited', 'message.created', 'message.created']);
  });

  await t.test('per tenant', async (t) => {
    const f = await setup(t, { tenantRate: slow(3) });
    const roomId = await f.room('public', bob);
    await f.messages.send(alice, { roomId, content: '1' });
    await f.messages.send(alice, { roomId, content: '2' });
    await f.messages.send(bob, { roomId, content: '3' });
    await t.rejects(f.messages.send(bob, { roomId, content: '4' }), { code: 'rate_limited' }, 'bob\'s first send past the tenant\'s budget');
    const globex = as('bob', 'globex');
    const theirs = (await f.rooms.create(globex, { name: 'g', type: 'public' })).roomId;
    t.same(await codeOf(f.messages.send(globex, { roomId: theirs, content: 'another tenant' })), 'ok');
    t.equal((await f.events(roomId)).length, 3);
  });
});

t.test('message commands - read marks: a read.marked event and read_receipt; unread counts come from the store', async (t) => {
  const f = await setup(t);
  const roomId = await f.room('public', bob);
  const ids: string[] = [];
  for (const content of ['one', 'two', 'three']) ids.push((await f.messages.send(alice, { roomId, content })).message.messageId);
  await f.persist(roomId);
  t.equal(await f.unread(bob, roomId), 3);

  const read = await f.messages.markRead(bob, { roomId, messageId: ids[0]! });
  t.match((await f.events(roomId)).at(-1), { seq: read.seq, event: { kind: 'read.marked', roomId, userId: 'bob', messageId: ids[0], at: read.at } });
  const frames = f.frames(roomId).slice(3);
  t.same(frames, [{ type: 'read_receipt', roomId, userId: 'bob', messageId: ids[0], readAt: new Date(read.at).toISOString(), seq: read.seq }],
    'no message_status outside direct rooms');
  t.equal(await f.unread(bob, roomId), 2, 'the two newer messages are left');
  await f.messages.markRead(bob, { roomId, messageId: ids[2]! });
  t.equal(await f.unread(bob, roomId), 0);
  await f.messages.markRead(bob, { roomId, messageId: ids[0]! });
  t.equal(await f.unread(bob, roomId), 0, 'an older mark does not bring messages back');
});

t.test('message commands - direct rooms: read marks and deliveries publish message_status; a delivery is recorded once', async (t) => {
  const f = await setup(t);
  const roomId = (await f.rooms.create(alice, { name: 'dm', type: 'direct', members: [{ userId: 'bob' }] })).roomId;
  const messageId = (await f.messages.send(alice, { roomId, content: 'hey bob' })).message.messageId;
  await f.persist(roomId);

  // the gateway names the room by its key
  await f.messages.markDelivered(k(roomId), messageId, 'bob');
  await f.messages.markDelivered(k(roomId), messageId, 'bob');
  const delivered = (await f.events(roomId)).filter((e) => e.event.kind === 'message.delivered');
  t.equal(delivered.length, 1, 'a second gateway reporting the same delivery stores nothing');
  t.match(delivered[0], { event: { roomId: k(roomId), messageId, userId: 'bob' } });
  t.match(f.frames(roomId).slice(1), [{ type: 'message_status', status: 'delivered', messageId, userId: 'bob', seq: delivered[0]!.seq }]);
  t.equal(f.frames(roomId).length, 2, 'and announces nothing');
  await f.messages.markDelivered(k(roomId), messageId, 'alice');
  t.equal((await f.events(roomId)).length, 3, 'deduped per message and user');

  const read = await f.messages.markRead(bob, { roomId, messageId });
  const at = new Date(read.at).toISOString();
  t.same(f.frames(roomId).slice(3), [
    { type: 'read_receipt', roomId, userId: 'bob', messageId, readAt: at, seq: read.seq },
    { type: 'message_status', roomId, messageId, userId: 'bob', status: 'read', at, seq: read.seq },
  ]);
  await f.persist(roomId);
  t.match(await f.store.messageStatus(k(roomId), messageId), [{ userId: 'bob', readAt: String }]);
});
