import type { Test } from 'tap';
import type { DurableEvent } from '../domain/events.ts';
import { BARE_KEY_TENANT, roomKey } from '../domain/room-key.ts';
import { DEFAULT_ROOM_SETTINGS, type Message, type MessageStatus, type Room, type RoomMember } from '../domain/models.ts';
import { EPOCH_MS, compareIds, idAtTime, idTime, isId } from '../ids/snowflake.ts';
import type { Store } from './store.ts';

/**
 * The store port's contract, run against every adapter (each adapter's test calls it).
 * `open` must return a new, empty store each time; the suite closes every store it opens.
 */
export interface StoreContractOptions {
  name: string;
  open: () => Promise<Store>;
}

const T = Date.UTC(2025, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

/** The id a snowflake made at `ms` with sequence `seq` would have (node 0). */
export function idAt(ms: number, seq = 0): string {
  return (BigInt(idAtTime(ms)) | BigInt(seq)).toString();
}

let eventSeq = 0;
/** A fresh event id; event ids only need to be unique (they break ties of equal times). */
const nextEventId = () => idAt(T + 100_000_000 + Math.floor(eventSeq / 4096), eventSeq++ % 4096);

/** The tenant of the fixtures: the default one, whose room keys are the bare ids (room-key.ts). */
const T1 = BARE_KEY_TENANT;

export function makeRoom(roomId: string, over: Partial<Room> = {}): Room {
  return {
    roomId,
    tenant: T1,
    name: `room ${roomId}`,
    description: `about ${roomId}`,
    type: 'public',
    createdBy: 'u1',
    createdAt: iso(T),
    updatedAt: iso(T),
    memberCount: 0,
    maxMembers: 100,
    lastActivity: iso(T),
    settings: { ...DEFAULT_ROOM_SETTINGS },
    isActive: true,
    tags: [],
    ...over,
  };
}

export function makeMember(roomId: string, userId: string, over: Partial<RoomMember> = {}): RoomMember {
  return {
    roomId,
    userId,
    displayName: `User ${userId}`,
    role: 'member',
    joinedAt: iso(T),
    isMuted: false,
    isBanned: false,
    ...over,
  };
}

export function makeMessage(roomId: string, messageId: string, over: Partial<Message> = {}): Message {
  return {
    messageId,
    roomId,
    authorId: 'u1',
    authorName: 'User u1',
    content: `message ${messageId}`,
    type: 'text',
    timestamp: iso(T),
    reactions: {},
    replyTo: null,
    threadId: null,
    mentions: [],
    attachments: [],
    isEdited: false,
    isDeleted: false,
    isPinned: false,
    isAnonymous: false,
    ...over,
  };
}

/** Builders of durable events; `at` is the event time in ms. */
export const ev = {
  /** `room` is the room's key: the message's id for the fixtures' (default) tenant. */
  created: (m: Message, at: number, room = m.roomId): DurableEvent => ({ kind: 'message.created', id: m.messageId, at, roomId: room, message: m }),
  edited: (roomId: string, messageId: string, content: string, at: number, userId = 'u1'): DurableEvent =>
    ({ kind: 'message.edited', id: nextEventId(), at, roomId, messageId, userId, content }),
  deleted: (roomId: string, messageId: string, at: number, userId = 'u1'): DurableEvent =>
    ({ kind: 'message.deleted', id: nextEventId(), at, roomId, messageId, userId }),
  reactionAdded: (roomId: string, messageId: string, userId: string, emoji: string, at: number): DurableEvent =>
    ({ kind: 'reaction.added', id: nextEventId(), at, roomId, messageId, userId, emoji }),
  reactionRemoved: (roomId: string, messageId: string, userId: string, emoji: string, at: number): DurableEvent =>
    ({ kind: 'reaction.removed', id: nextEventId(), at, roomId, messageId, userId, emoji }),
  pinned: (roomId: string, messageId: string, at: number, userId = 'u1'): DurableEvent =>
    ({ kind: 'message.pinned', id: nextEventId(), at, roomId, messageId, userId }),
  unpinned: (roomId: string, messageId: string, at: number, userId = 'u1'): DurableEvent =>
    ({ kind: 'message.unpinned', id: nextEventId(), at, roomId, messageId, userId }),
  readMarked: (roomId: string, userId: string, messageId: string, at: number): DurableEvent =>
    ({ kind: 'read.marked', id: nextEventId(), at, roomId, userId, messageId }),
  delivered: (roomId: string, messageId: string, userId: string, at: number): DurableEvent =>
    ({ kind: 'message.delivered', id: nextEventId(), at, roomId, messageId, userId }),
};

/** Deterministic PRNG (mulberry32) so a failing order can be reproduced. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(items: readonly T[], rnd: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Applies events in calls of random sizes, so transaction boundaries vary too. */
async function applyInChunks(store: Store, events: readonly DurableEvent[], rnd: () => number, maxChunk: number): Promise<void> {
  for (let i = 0; i < events.length;) {
    const n = 1 + Math.floor(rnd() * maxChunk);
    await store.applyEvents(events.slice(i, i + n));
    i += n;
  }
}

const ids = (messages: readonly Message[]) => messages.map((m) => m.messageId);
const byUser = (a: MessageStatus, b: MessageStatus) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0);

/** Everything the port can tell about a room's messages, for comparing two stores. */
async function snapshot(store: Store, roomId: string, messageIds: string[], users: string[], threadIds: string[], words: string[]) {
  return {
    messages: await Promise.all(messageIds.map((id) => store.getMessage(roomId, id))),
    history: await store.history(roomId, { limit: 1000 }),
    threads: await Promise.all(threadIds.map((threadId) => store.history(roomId, { limit: 1000, threadId }))),
    pinned: ids(await store.pinned(roomId)),
    readStates: await Promise.all(users.map((u) => store.getReadState(roomId, u))),
    unread: await Promise.all(users.map((u) => store.countUnread(roomId, u, undefined, 1000))),
    status: await Promise.all(messageIds.map(async (id) => (await store.messageStatus(roomId, id)).sort(byUser))),
    search: await Promise.all(words.map(async (text) => ids(await store.search({ roomIds: [roomId], text, limit: 100 })).sort(compareIds))),
  };
}

type StoreTest = (t: Test, store: Store) => Promise<void>;

export function runStoreContract(t: Test, opts: StoreContractOptions): void {
  const test = (name: string, fn: StoreTest) => {
    void t.test(`store - ${name} [${opts.name}]`, async (t) => {
      const store = await opts.open();
      t.teardown(() => store.close());
      await fn(t, store);
    });
  };

  // ---------------------------------------------------------------- rooms

  test('ai contexts: put then get returns the context; another user or tenant sees none; replaced by the next put', async (t, store) => {
    const now = Date.now();
    const ctx = {
      contextId: 'ctx-u1', roomId: null, userId: 'u1',
      messages: [
        { role: 'user' as const, content: 'What is NATS?', timestamp: iso(now) },
        { role: 'assistant' as const, content: 'A messaging system.', timestamp: iso(now + 1) },
      ],
      createdAt: iso(now), updatedAt: iso(now + 1), expiresAt: iso(now + 3_600_000), tokensUsed: 42,
    };
    t.equal(await store.getAiContext('t1', 'u1', now), undefined, 'none before the first put');
    await store.putAiContext('t1', ctx);
    t.strictSame(await store.getAiContext('t1', 'u1', now), ctx);
    t.equal(await store.getAiContext('t1', 'u2', now), undefined, 'another user');
    t.equal(await store.getAiContext('t2', 'u1', now), undefined, 'another tenant');
    const next = { ...ctx, messages: ctx.messages.slice(1), tokensUsed: 60, updatedAt: iso(now + 2) };
    await store.putAiContext('t1', next);
    t.strictSame(await store.getAiContext('t1', 'u1', now), next, 'replaced');
  });

  test('ai contexts: an expired context is gone (expiresAt is its TTL)', async (t, store) => {
    const now = Date.now();
    const ctx = {
      contextId: 'ctx-u3', roomId: null, userId: 'u3', messages: [],
      createdAt: iso(now), updatedAt: iso(now), expiresAt: iso(now + 60_000), tokensUsed: 1,
    };
    await store.putAiContext('t1', ctx);
    t.ok(await store.getAiContext('t1', 'u3', now + 59_000), 'alive before expiresAt');
    t.equal(await store.getAiContext('t1', 'u3', now + 60_000), undefined, 'gone at expiresAt');
  });

  test('notifications: preferences per tenant and user, replaced by the next put', async (t, store) => {
    t.equal(await store.getNotificationPrefs('t1', 'u1'), undefined, 'none before the first put');
    await store.putNotificationPrefs('t1', 'u1', { level: 'mentions', mutedRooms: ['r1', 'r2'] });
    t.strictSame(await store.getNotificationPrefs('t1', 'u1'), { level: 'mentions', mutedRooms: ['r1', 'r2'] });
    t.equal(await store.getNotificationPrefs('t1', 'u2'), undefined, 'another user');
    t.equal(await store.getNotificationPrefs('t2', 'u1'), undefined, 'another tenant');
    await store.putNotificationPrefs('t1', 'u1', { level: 'none', mutedRooms: [] });
    t.strictSame(await store.getNotificationPrefs('t1', 'u1'), { level: 'none', mutedRooms: [] }, 'replaced');
  });

  test('notifications: webhooks by owner, healthy when put, health replaced alone, deleted ones stay deleted', async (t, store) => {
    const hook = (webhookId: string, scope: 'user' | 'tenant', userId: string, tenant = 't1') => ({
      webhookId, tenant, scope, userId, createdBy: 'u1', url: `https://example.com/${webhookId}`, secret: `s-${webhookId}`, createdAt: iso(T),
    });
    const healthy = { status: 'active' as const, consecutiveFailures: 0 };
    await store.putWebhook(hook('w2', 'user', 'u1'));
    await store.putWebhook(hook('w1', 'user', 'u1'));
    await store.putWebhook(hook('w3', 'tenant', ''));
    await store.putWebhook(hook('w4', 'user', 'u1', 't2'));
    t.strictSame((await store.listWebhooks('t1', 'u1')).map((w) => w.webhookId), ['w1', 'w2'], "the user's, by id");
    t.strictSame(await store.listWebhooks('t1', ''), [{ ...hook('w3', 'tenant', ''), health: healthy }], "the tenant's");
    t.strictSame((await store.listWebhooks('t2', 'u1')).map((w) => w.webhookId), ['w4'], 'another tenant');
    t.strictSame(await store.getWebhook('t1', 'u1', 'w1'), { ...hook('w1', 'user', 'u1'), health: healthy });
    t.equal(await store.getWebhook('t1', 'u2', 'w1'), undefined, "another owner's id");

    const disabled = {
      status: 'disabled' as const, consecutiveFailures: 3, lastError: 'HTTP 500', lastAttemptAt: iso(T + 5),
      disabledAt: iso(T + 5), disabledReason: '3 deliveries in a row failed',
    };
    await store.setWebhookHealth('t1', 'u1', 'w1', disabled);
    t.strictSame(await store.getWebhook('t1', 'u1', 'w1'), { ...hook('w1', 'user', 'u1'), health: disabled });
    t.strictSame((await store.getWebhook('t1', 'u1', 'w2'))?.health, healthy, 'only that webhook');
    await store.putWebhook(hook('w1', 'user', 'u1'));
    t.strictSame((await store.getWebhook('t1', 'u1', 'w1'))?.health, healthy, 'put again: healthy');

    await store.deleteWebhook('t1', 'u1', 'w1');
    t.equal(await store.getWebhook('t1', 'u1', 'w1'), undefined, 'deleted');
    await store.setWebhookHealth('t1', 'u1', 'w1', disabled);
    t.equal(await store.getWebhook('t1', 'u1', 'w1'), undefined, 'a health update after the delete brings nothing back');
    t.strictSame((await store.listWebhooks('t1', 'u1')).map((w) => w.webhookId), ['w2']);
  });

  test('notifications: push subscriptions per user, replaced by endpoint, deleted by endpoint', async (t, store) => {
    const sub = (endpoint: string, auth = 'a') => ({ endpoint, keys: { p256dh: 'BKey', auth }, createdAt: iso(T) });
    await store.putPushSubscription('t1', 'u1', sub('https://push.example/b'));
    await store.putPushSubscription('t1', 'u1', sub('https://push.example/a'));
    await store.putPushSubscription('t1', 'u1', sub('https://push.example/a', 'a2'));
    await store.putPushSubscription('t1', 'u2', sub('https://push.example/c'));
    t.strictSame(await store.listPushSubscriptions('t1', 'u1'), [sub('https://push.example/a', 'a2'), sub('https://push.example/b')]);
    t.strictSame(await store.listPushSubscriptions('t2', 'u1'), [], 'another tenant');
    await store.deletePushSubscription('t1', 'u1', 'https://push.example/a');
    t.strictSame(await store.listPushSubscriptions('t1', 'u1'), [sub('https://push.example/b')]);
    t.strictSame(await store.listPushSubscriptions('t1', 'u2'), [sub('https://push.example/c')], "another user's stays");
  });

  test('notifications: sent-records per tenant, user and message, until they expire', async (t, store) => {
    const now = Date.now();
    const [m1, m2, m3] = [idAt(T + 1), idAt(T + 2), idAt(T + 3)];
    t.strictSame([...await store.notifiedOf('t1', 'u1', [m1, m2], now)], [], 'none before');
    t.strictSame([...await store.notifiedOf('t1', 'u1', [], now)], [], 'an empty question');
    await store.markNotified('t1', 'u1', [m1, m2], now + 60_000);
    await store.markNotified('t1', 'u1', [m2], now + 60_000);
    t.strictSame([...await store.notifiedOf('t1', 'u1', [m1, m2, m3], now)].sort(), [m1, m2].sort());
    t.strictSame([...await store.notifiedOf('t1', 'u2', [m1], now)], [], 'another user');
    t.strictSame([...await store.notifiedOf('t2', 'u1', [m1], now)], [], 'another tenant');
    t.strictSame([...await store.notifiedOf('t1', 'u1', [m1], now + 60_000)], [], 'gone once expired');
  });

  test('rooms: createRoom stores the room and its members, getRoom returns it', async (t, store) => {
    const room = makeRoom('r1', { avatar: 'https://img/a.png', banner: 'https://img/b.png', tags: ['x', 'y'], memberCount: 99, type: 'group' });
    const members = [
      makeMember('r1', 'u1', { role: 'owner', avatar: 'https://img/u1.png' }),
      makeMember('r1', 'u2'),
      makeMember('r1', 'u3', { isBanned: true }),
    ];
    await store.createRoom(room, members);
    t.strictSame(await store.getRoom('r1'), { ...room, memberCount: 2 }, 'memberCount counts the non-banned members');
    t.strictSame(await store.getMember('r1', 'u1'), members[0]);
    t.strictSame(await store.getMember('r1', 'u3'), members[2]);
    t.equal(await store.getRoom('missing'), undefined);

    await store.createRoom(makeRoom('r2'), []);
    const bare = await store.getRoom('r2');
    t.strictSame(bare, makeRoom('r2'));
    t.notOk(bare && 'avatar' in bare, 'absent optional fields are omitted');
    t.notOk(bare && 'banner' in bare, 'absent optional fields are omitted');
    const plain = await store.getMember('r1', 'u2');
    t.notOk(plain && 'avatar' in plain, 'absent member avatar is omitted');
  });

  test('rooms: a duplicate room id rejects with conflict and changes nothing', async (t, store) => {
    await store.createRoom(makeRoom('r1', { name: 'first' }), [makeMember('r1', 'u1', { role: 'owner' })]);
    await t.rejects(store.createRoom(makeRoom('r1', { name: 'second' }), [makeMember('r1', 'u9')]), { name: 'ChatError', code: 'conflict' });
    const room = await store.getRoom('r1');
    t.equal(room?.name, 'first');
    t.equal(room?.memberCount, 1);
    t.equal(await store.getMember('r1', 'u9'), undefined, 'the rejected call added no member');
  });

  test('rooms: updateRoom replaces only the mutable fields', async (t, store) => {
    const original = makeRoom('r1', { avatar: 'a1', tags: ['old'] });
    await store.createRoom(original, [makeMember('r1', 'u1', { role: 'owner' })]);
    const settings = { ...DEFAULT_ROOM_SETTINGS, enableAI: false, moderationLevel: 'strict' as const, maxMembers: 20 };
    await store.updateRoom({
      ...original,
      name: 'renamed', description: 'new description', avatar: 'a2', banner: 'b2', settings, tags: ['new', 'tags'],
      maxMembers: 20, updatedAt: iso(T + 5000),
      // not mutable through updateRoom (the tenant is part of the room's key: another tenant's is another room):
      type: 'private', createdBy: 'u9', createdAt: iso(T + 1), memberCount: 42, lastActivity: iso(T + 99_000), isActive: false,
    });
    t.strictSame(await store.getRoom('r1'), {
      ...original, memberCount: 1,
      name: 'renamed', description: 'new description', avatar: 'a2', banner: 'b2', settings, tags: ['new', 'tags'],
      maxMembers: 20, updatedAt: iso(T + 5000),
    });
    const { avatar: _a, banner: _b, ...withoutImages } = original;
    await store.updateRoom({ ...withoutImages, name: 'again', updatedAt: iso(T + 6000) });
    const room = await store.getRoom('r1');
    t.equal(room?.name, 'again');
    t.notOk(room && 'avatar' in room, 'an absent avatar clears it');
    t.notOk(room && 'banner' in room, 'an absent banner clears it');
  });

  test('rooms: listRooms filters by tenant, type, membership and discoverability, newest activity first', async (t, store) => {
    const spec: Array<[string, Room['type'], number, string]> = [
      ['a', 'public', 1, T1], ['b', 'private', 5, T1], ['c', 'announcement', 3, T1], ['d', 'direct', 4, T1],
      ['e', 'group', 2, T1], ['f', 'public', 5, T1], ['x', 'public', 9, 't2'],
    ];
    const rooms = new Map<string, Room>();
    for (const [id, type, minutes, tenant] of spec) {
      const room = makeRoom(id, { type, tenant, lastActivity: iso(T + minutes * 60_000) });
      rooms.set(id, room);
      await store.createRoom(room, [makeMember(id, 'owner', { role: 'owner' })]);
    }
    for (const id of ['a', 'b', 'd', 'x']) await store.putMember(roomKey(rooms.get(id)!.tenant, id), makeMember(id, 'u1'));
    await store.putMember('f', makeMember('f', 'u1', { isBanned: true }));

    const list = async (q: Partial<Parameters<Store['listRooms']>[0]>) => {
      const res = await store.listRooms({ tenant: T1, limit: 100, offset: 0, ...q });
      return { ids: res.rooms.map((r) => r.roomId), total: res.total };
    };
    t.strictSame(await list({}), { ids: ['b', 'f', 'd', 'c', 'e', 'a'], total: 6 }, 'activity desc, then room id');
    t.strictSame(await list({ type: 'public' }), { ids: ['f', 'a'], total: 2 });
    t.strictSame(await list({ discoverable: true }), { ids: ['f', 'c', 'a'], total: 3 });
    t.strictSame(await list({ memberOf: 'u1' }), { ids: ['b', 'd', 'a'], total: 3 }, 'banned membership and other tenants excluded');
    t.strictSame(await list({ memberOf: 'u1', type: 'direct' }), { ids: ['d'], total: 1 });
    t.strictSame(await list({ memberOf: 'u1', discoverable: true }), { ids: ['a'], total: 1 });
    t.strictSame(await list({ memberOf: 'nobody' }), { ids: [], total: 0 });
    t.strictSame(await list({ tenant: 't2' }), { ids: ['x'], total: 1 });
    t.strictSame(await list({ limit: 2, offset: 0 }), { ids: ['b', 'f'], total: 6 });
    t.strictSame(await list({ limit: 2, offset: 2 }), { ids: ['d', 'c'], total: 6 });
    t.strictSame(await list({ limit: 2, offset: 4 }), { ids: ['e', 'a'], total: 6 });
    t.strictSame(await list({ limit: 2, offset: 6 }), { ids: [], total: 6 });
    t.strictSame(await list({ memberOf: 'u1', limit: 1, offset: 1 }), { ids: ['d'], total: 3 });

    const first = (await store.listRooms({ tenant: T1, limit: 1, offset: 0 })).rooms[0];
    t.strictSame(first, { ...rooms.get('b')!, memberCount: 2 }, 'rooms are returned whole');
  });

  test('rooms: findDirectRoom finds the direct room of a pair in either order', async (t, store) => {
    const mk = async (id: string, type: Room['type'], tenant: string, users: string[]) =>
      store.createRoom(makeRoom(id, { type, tenant }), users.map((u, i) => makeMember(id, u, { role: i === 0 ? 'owner' : 'member' })));
    await mk('g1', 'group', T1, ['u1', 'u2', 'u4']);
    await mk('dm1', 'direct', T1, ['u1', 'u2']);
    await mk('dm2', 'direct', T1, ['u3', 'u1']);
    await mk('dm3', 'direct', 't2', ['u1', 'u2']);
    t.equal((await store.findDirectRoom(T1, 'u1', 'u2'))?.roomId, 'dm1');
    t.equal((await store.findDirectRoom(T1, 'u2', 'u1'))?.roomId, 'dm1');
    t.equal((await store.findDirectRoom(T1, 'u1', 'u3'))?.roomId, 'dm2');
    t.equal((await store.findDirectRoom('t2', 'u2', 'u1'))?.roomId, 'dm3');
    t.equal(await store.findDirectRoom(T1, 'u1', 'u4'), undefined, 'a shared group room is not a direct room');
    t.equal(await store.findDirectRoom(T1, 'u2', 'u3'), undefined);
    t.strictSame(await store.findDirectRoom(T1, 'u1', 'u2'), { ...makeRoom('dm1', { type: 'direct' }), memberCount: 2 });
  });

  test('rooms: createMatchRoom creates one room per match in a tenant; later calls return it', async (t, store) => {
    const pair = (id: string) => [makeMember(id, 'u1'), makeMember(id, 'u2')];
    const matchRoom = (id: string, over: Partial<Room> = {}) => makeRoom(id, { type: 'direct', matchId: 'match-1', ...over });
    const first = await store.createMatchRoom(matchRoom('m1'), pair('m1'));
    t.strictSame(first, { room: { ...matchRoom('m1'), memberCount: 2 }, created: true });
    t.strictSame(await store.getRoom('m1'), first.room, 'the room keeps its matchId');
    t.strictSame(await store.getMember('m1', 'u2'), pair('m1')[1]);

    const again = await store.createMatchRoom(matchRoom('m2', { name: 'second' }), pair('m2'));
    t.strictSame(again, { room: first.room, created: false }, 'the match\'s room, not a new one');
    t.equal(await store.getRoom('m2'), undefined, 'the second call created no room');
    t.equal(await store.getMember('m2', 'u1'), undefined, 'nor members');
    t.strictSame((await store.listRooms({ tenant: T1, memberOf: 'u1', limit: 10, offset: 0 })).rooms.map((r) => r.roomId), ['m1']);

    const other = await store.createMatchRoom(matchRoom('m3', { tenant: 't2' }), pair('m3'));
    t.equal(other.created, true, 'another tenant\'s match of the same id is another match');
    t.strictSame(await store.getRoom(roomKey('t2', 'm3')), other.room);

    await store.createRoom(makeRoom('plain'), []);
    const plain = await store.getRoom('plain');
    t.notOk(plain && 'matchId' in plain, 'a room of no match has no matchId');
    await t.rejects(store.createMatchRoom(makeRoom('m4', { type: 'direct' }), []), { name: 'ChatError', code: 'bad_request' }, 'a matchId is required');
    await t.rejects(store.createMatchRoom(matchRoom('plain', { matchId: 'match-2' }), []), { name: 'ChatError', code: 'conflict' },
      'a room id taken by another room');
    t.equal((await store.getRoom('plain'))?.matchId, undefined, 'the other room is untouched');
    const freed = await store.createMatchRoom(matchRoom('m5', { matchId: 'match-2' }), pair('m5'));
    t.strictSame([freed.created, freed.room.roomId], [true, 'm5'], 'the refused call left the match free');
  });

  test('rooms: concurrent createMatchRoom calls of one match agree on one room', async (t, store) => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => {
      const id = `c${i}`;
      return store.createMatchRoom(makeRoom(id, { type: 'direct', matchId: 'match-c' }), [makeMember(id, 'u1'), makeMember(id, 'u2')]);
    }));
    t.equal(results.filter((r) => r.created).length, 1, 'exactly one call created the room');
    const ids = new Set(results.map((r) => r.room.roomId));
    t.equal(ids.size, 1, 'every call answers the same room');
    t.ok(results.every((r) => r.room.memberCount === 2 && r.room.matchId === 'match-c'), 'each answer is the whole room');
    const listed = await store.listRooms({ tenant: T1, memberOf: 'u2', limit: 20, offset: 0 });
    t.strictSame(listed.rooms.map((r) => r.roomId), [...ids], 'one room exists for the match');
  });

  test('rooms: touchRoom only moves lastActivity forward', async (t, store) => {
    await store.createRoom(makeRoom('r1', { lastActivity: iso(T) }), []);
    await store.createRoom(makeRoom('r2', { lastActivity: iso(T + 1000) }), []);
    const activity = async (id: string) => Date.parse((await store.getRoom(id))!.lastActivity);
    await store.touchRoom('r1', iso(T + 5000));
    t.equal(await activity('r1'), T + 5000);
    await store.touchRoom('r1', iso(T + 2000));
    t.equal(await activity('r1'), T + 5000, 'an older time does not overwrite a newer one');
    await store.touchRoom('r1', iso(T + 9000));
    t.equal(await activity('r1'), T + 9000);
    const order = await store.listRooms({ tenant: T1, limit: 10, offset: 0 });
    t.strictSame(order.rooms.map((r) => r.roomId), ['r1', 'r2'], 'listRooms follows the touched activity');
    await store.touchRoom('missing', iso(T));
    t.equal(await store.getRoom('missing'), undefined, 'touching an unknown room creates nothing');
  });

  // ---------------------------------------------------------------- members

  test('members: archives are per user; listRooms filters on them; removeMember clears them', async (t, store) => {
    await store.createRoom(makeRoom('a', { type: 'direct', lastActivity: iso(T + 3000) }), [makeMember('a', 'u1'), makeMember('a', 'u2')]);
    await store.createRoom(makeRoom('b', { lastActivity: iso(T + 2000) }), [makeMember('b', 'u1', { role: 'owner' })]);
    await store.createRoom(makeRoom('c', { lastActivity: iso(T + 1000) }), [makeMember('c', 'u2', { role: 'owner' })]);
    const list = async (q: Partial<Parameters<Store['listRooms']>[0]>) => {
      const res = await store.listRooms({ tenant: T1, limit: 100, offset: 0, ...q });
      return { ids: res.rooms.map((r) => r.roomId), total: res.total };
    };
    const hidden = (userId: string) => ({ userId, archived: false });
    const shown = (userId: string) => ({ userId, archived: true });

    t.equal(await store.archivedAt('a', 'u1'), undefined, 'nothing archived yet');
    await store.setArchived('a', 'u1', iso(T + 5000));
    t.equal(await store.archivedAt('a', 'u1'), iso(T + 5000));
    t.equal(await store.archivedAt('a', 'u2'), undefined, 'another member\'s archive state is untouched');
    t.strictSame(await list({ memberOf: 'u1', archive: hidden('u1') }), { ids: ['b'], total: 1 });
    t.strictSame(await list({ memberOf: 'u1', archive: shown('u1') }), { ids: ['a'], total: 1 });
    t.strictSame(await list({ memberOf: 'u1' }), { ids: ['a', 'b'], total: 2 }, 'no archive filter: every room');
    t.strictSame(await list({ memberOf: 'u2', archive: hidden('u2') }), { ids: ['a', 'c'], total: 2 }, 'the other member still lists it');

    await store.setArchived('b', 'u1', iso(T + 6000));
    t.strictSame(await list({ discoverable: true, archive: hidden('u1') }), { ids: ['c'], total: 1 }, 'the filter applies to any list');
    t.strictSame(await list({ archive: shown('u1') }), { ids: ['a', 'b'], total: 2 });
    t.strictSame(await list({ memberOf: 'u1', archive: hidden('u1'), limit: 1 }), { ids: [], total: 0 });

    await store.setArchived('a', 'u1', iso(T + 7000));
    t.equal(await store.archivedAt('a', 'u1'), iso(T + 7000), 'the last call wins');
    await store.setArchived('a', 'u1', undefined);
    t.equal(await store.archivedAt('a', 'u1'), undefined, 'unarchived');
    t.strictSame(await list({ memberOf: 'u1', archive: hidden('u1') }), { ids: ['a'], total: 1 });

    await store.removeMember('b', 'u1');
    t.equal(await store.archivedAt('b', 'u1'), undefined, 'leaving a room forgets its archive');
    await store.putMember('b', makeMember('b', 'u1'));
    t.strictSame(await list({ memberOf: 'u1', archive: hidden('u1') }), { ids: ['a', 'b'], total: 2 }, 'a returning member sees it again');
  });

  test('members: put, get, remove and list keep memberCount right', async (t, store) => {
    await store.createRoom(makeRoom('r1'), [makeMember('r1', 'u1', { role: 'owner' })]);
    const count = async () => (await store.getRoom('r1'))!.memberCount;
    t.equal(await count(), 1);

    await store.putMember('r1', makeMember('r1', 'u2'));
    t.equal(await count(), 2);
    const changed = makeMember('r1', 'u2', { role: 'moderator', displayName: 'Mod', isMuted: true, avatar: 'av' });
    await store.putMember('r1', changed);
    t.equal(await count(), 2, 'replacing a member does not count it twice');
    t.strictSame(await store.getMember('r1', 'u2'), changed, 'put replaces the member');

    await store.putMember('r1', makeMember('r1', 'u3', { isBanned: true }));
    t.equal(await count(), 2, 'a banned member does not count');
    await store.putMember('r1', { ...changed, isBanned: true });
    t.equal(await count(), 1, 'banning a member uncounts it');
    await store.putMember('r1', changed);
    t.equal(await count(), 2, 'unbanning counts it again');

    const all = await store.listMembers('r1', { limit: 100, offset: 0 });
    t.equal(all.total, 3, 'listMembers includes banned members');
    t.strictSame(all.members.map((m) => m.userId).sort(), ['u1', 'u2', 'u3']);

    await store.removeMember('r1', 'u3');
    t.equal(await count(), 2, 'removing a banned member changes no count');
    await store.removeMember('r1', 'u2');
    t.equal(await count(), 1);
    await store.removeMember('r1', 'u2');
    t.equal(await count(), 1, 'removing an absent member is a no-op');
    t.equal(await store.getMember('r1', 'u2'), undefined);
    t.equal((await store.listMembers('r1', { limit: 100, offset: 0 })).total, 1);
  });

  test('members: listMembers pages cover every member exactly once', async (t, store) => {
    const users = Array.from({ length: 23 }, (_, i) => `u${String(i).padStart(2, '0')}`);
    await store.createRoom(makeRoom('r1'), users.map((u, i) =>
      makeMember('r1', u, { role: i === 0 ? 'owner' : 'member', joinedAt: iso(T + (i % 5) * 1000) })));
    t.equal((await store.getRoom('r1'))!.memberCount, 23);
    const seen: string[] = [];
    for (let offset = 0; offset < 30; offset += 5) {
      const page = await store.listMembers('r1', { limit: 5, offset });
      t.equal(page.total, 23);
      t.ok(page.members.length <= 5, 'a page holds at most limit members');
      seen.push(...page.members.map((m) => m.userId));
    }
    t.strictSame(seen.slice().sort(), users, 'each member exactly once');
    t.strictSame(await store.listMembers('other', { limit: 5, offset: 0 }), { members: [], total: 0 });
  });

  test('tenants: two tenants\' rooms of the same id are two rooms, and nothing reaches across', async (t, store) => {
    const A = roomKey(T1, 'shared');
    const B = roomKey('acme.example', 'shared');
    t.not(A, B);
    await store.createRoom(makeRoom('shared', { type: 'private', name: 'ours' }), [makeMember('shared', 'u1', { role: 'owner' })]);
    // the same id in another tenant is not a conflict: it is another room
    await store.createRoom(makeRoom('shared', { tenant: 'acme.example', type: 'private', name: 'theirs' }),
      [makeMember('shared', 'u1', { role: 'owner' }), makeMember('shared', 'u2')]);
    await t.rejects(store.createRoom(makeRoom('shared', { tenant: 'acme.example' }), []), { code: 'conflict' }, 'within a tenant an id is taken once');
    t.equal((await store.getRoom(A))?.name, 'ours');
    t.match(await store.getRoom(B), { roomId: 'shared', tenant: 'acme.example', name: 'theirs', memberCount: 2 }, 'records show the id, not the key');
    t.equal((await store.getRoom(A))?.memberCount, 1);
    t.equal(await store.getMember(A, 'u2'), undefined);
    t.match(await store.getMember(B, 'u2'), { roomId: 'shared', userId: 'u2' });
    t.strictSame((await store.listMembers(A, { limit: 10, offset: 0 })).members.map((m) => m.userId), ['u1']);
    t.strictSame(await store.roomsOfUser(T1, 'u2'), []);
    t.strictSame(await store.roomsOfUser('acme.example', 'u2'), [B]);
    t.strictSame((await store.listRooms({ tenant: 'acme.example', limit: 10, offset: 0 })).rooms.map((r) => r.name), ['theirs']);

    const ours = makeMessage('shared', idAt(T + 1000), { content: 'needle ours' });
    const theirs = makeMessage('shared', idAt(T + 2000), { content: 'needle theirs' });
    await store.applyEvents([
      ev.created(ours, T + 1000, A),
      ev.created(theirs, T + 2000, B),
      ev.pinned(B, theirs.messageId, T + 2100),
      ev.readMarked(B, 'u2', theirs.messageId, T + 2200),
      // an event naming our room and their message changes nothing of theirs
      ev.deleted(A, theirs.messageId, T + 2300),
    ]);
    t.strictSame(ids(await store.history(A, { limit: 10 })), [ours.messageId]);
    t.strictSame(ids(await store.history(B, { limit: 10 })), [theirs.messageId]);
    t.match(await store.getMessage(B, theirs.messageId), { roomId: 'shared', content: 'needle theirs', isDeleted: false, isPinned: true });
    t.equal(await store.getMessage(A, theirs.messageId), undefined);
    t.strictSame(ids(await store.pinned(A)), []);
    t.strictSame(ids(await store.search({ roomIds: [A], text: 'needle', limit: 10 })), [ours.messageId]);
    t.strictSame(ids(await store.search({ roomIds: [B], text: 'needle', limit: 10 })), [theirs.messageId]);
    t.match(await store.getReadState(B, 'u2'), { roomId: 'shared', lastReadId: theirs.messageId });
    t.equal(await store.getReadState(A, 'u2'), undefined);
    t.equal(await store.countUnread(A, 'u2', undefined, 10), 1);
    t.equal(await store.countUnread(B, 'u2', theirs.messageId, 10), 0);
    t.match(await store.findDirectRoom('acme.example', 'u1', 'u2'), undefined);
    await store.updateRoom({ ...(await store.getRoom(B))!, name: 'renamed' });
    t.equal((await store.getRoom(A))?.name, 'ours', 'an update of theirs leaves ours');
    await store.removeMember(A, 'u1');
    t.match(await store.getMember(B, 'u1'), { role: 'owner' }, 'a removal from ours leaves theirs');
  });

  test('members: roomsOfUser lists the tenant rooms the user is not banned from', async (t, store) => {
    await store.createRoom(makeRoom('r1'), [makeMember('r1', 'u1')]);
    await store.createRoom(makeRoom('r2'), [makeMember('r2', 'u1', { isBanned: true })]);
    await store.createRoom(makeRoom('r3', { tenant: 't2' }), [makeMember('r3', 'u1')]);
    await store.createRoom(makeRoom('r4'), [makeMember('r4', 'u2')]);
    await store.putMember('r4', makeMember('r4', 'u1'));
    t.strictSame((await store.roomsOfUser(T1, 'u1')).sort(), ['r1', 'r4']);
    t.strictSame(await store.roomsOfUser('t2', 'u1'), [roomKey('t2', 'r3')], 'keys: another tenant\'s are not bare ids');
    await store.removeMember('r4', 'u1');
    t.strictSame(await store.roomsOfUser(T1, 'u1'), ['r1']);
    await store.putMember('r1', makeMember('r1', 'u1', { isBanned: true }));
    t.strictSame(await store.roomsOfUser(T1, 'u1'), []);
    t.strictSame(await store.roomsOfUser(T1, 'nobody'), []);
  });

  // ---------------------------------------------------------------- messages

  test('messages: a created message reads back exactly', async (t, store) => {
    const full = makeMessage('r1', idAt(T + 1), {
      authorId: 'u2', authorName: 'Two', authorAvatar: 'https://img/2.png', content: 'full message', type: 'image',
      timestamp: iso(T + 1), replyTo: idAt(T), mentions: ['u3', 'u4'],
      attachments: [{ id: 'att1', type: 'image', url: 'https://files/1.png', thumbnailUrl: 'https://files/1t.png', fileName: '1.png', fileSize: 1234, mimeType: 'image/png' }],
      isAnonymous: true, anonymousName: 'Owl', clientMsgId: 'c-1', metadata: { poll: { options: ['a', 'b'] }, n: 1 },
    });
    const bare = makeMessage('r1', idAt(T + 2), { content: 'bare' });
    await store.applyEvents([ev.created(full, T + 1), ev.created(bare, T + 2)]);
    t.strictSame(await store.getMessage('r1', full.messageId), full);
    const got = await store.getMessage('r1', bare.messageId);
    t.strictSame(got, bare);
    t.strictSame(Object.keys(got ?? {}).sort(), [
      'attachments', 'authorId', 'authorName', 'content', 'isAnonymous', 'isDeleted', 'isEdited', 'isPinned', 'mentions',
      'messageId', 'reactions', 'replyTo', 'roomId', 'threadId', 'timestamp', 'type',
    ], 'absent optional fields are omitted, nullable ones are null');
    t.strictSame(ids(await store.history('r1', { limit: 10 })), [bare.messageId, full.messageId]);
    t.equal(await store.getMessage('r2', full.messageId), undefined, 'never a message of another room');
    t.strictSame(await store.history('r2', { limit: 10 }), []);
    t.equal(await store.getMessage('r1', idAt(T + 3)), undefined);
  });

  test('messages: every id isId accepts is an id, leading zeros included; larger ones are refused', async (t, store) => {
    // The command layer lets through what isId accepts (1-20 digits, below 2^63); the store must
    // not refuse any of it, or an event would hold up its whole batch in the persister.
    const m = makeMessage('r1', idAt(T));
    const padded = m.messageId.padStart(20, '0');
    t.ok(isId(padded) && padded.length === 20, `${padded} is an id of 20 digits`);
    await store.applyEvents([ev.created(m, T), ev.edited('r1', padded, 'edited through a padded id', T + 1)]);
    t.equal((await store.getMessage('r1', padded))?.content, 'edited through a padded id', 'the padded id names the same message');
    t.strictSame(ids(await store.history('r1', { limit: 10, before: idAt(T + 1).padStart(20, '0') })), [m.messageId],
      'a padded cursor bounds history as the plain one does');
    const max = ((1n << 63n) - 1n).toString();
    t.ok(isId(max) && !isId((1n << 63n).toString()));
    t.strictSame(await store.history('r1', { limit: 10, before: max }), await store.history('r1', { limit: 10 }), 'the largest id is a cursor');
    for (const bad of [(1n << 63n).toString(), '99999999999999999999', '000000000000000000001', '-1', '1e3', '']) {
      await t.rejects(store.applyEvents([ev.edited('r1', bad, 'x', T + 2)]), { name: 'ChatError', code: 'bad_request' }, `${JSON.stringify(bad)} is refused`);
      t.equal(await store.getMessage('r1', bad), undefined);
    }
  });

  test('messages: every durable event kind changes what it should', async (t, store) => {
    await store.createRoom(makeRoom('r1', { lastActivity: iso(T - 60_000) }), []);
    const m1 = makeMessage('r1', idAt(T), { authorId: 'u1', content: 'hello' });
    const get = async () => (await store.getMessage('r1', m1.messageId))!;
    await store.applyEvents([ev.created(m1, T)]);
    t.equal(Date.parse((await store.getRoom('r1'))!.lastActivity), T, 'message.created touches the room');

    await store.applyEvents([ev.edited('r1', m1.messageId, 'hello, edited', T + 1000)]);
    let m = await get();
    t.equal(m.content, 'hello, edited');
    t.equal(m.isEdited, true);
    t.equal(m.editedAt, iso(T + 1000));

    await store.applyEvents([
      ev.reactionAdded('r1', m1.messageId, 'u2', '👍', T + 2000),
      ev.reactionAdded('r1', m1.messageId, 'u3', '👍', T + 2100),
      ev.reactionAdded('r1', m1.messageId, 'u2', '❤️', T + 2200),
    ]);
    t.strictSame((await get()).reactions, { '👍': ['u2', 'u3'], '❤️': ['u2'] }, 'users in the order they reacted');
    await store.applyEvents([ev.reactionRemoved('r1', m1.messageId, 'u2', '👍', T + 2300)]);
    t.strictSame((await get()).reactions, { '👍': ['u3'], '❤️': ['u2'] });
    await store.applyEvents([ev.reactionRemoved('r1', m1.messageId, 'u2', '❤️', T + 2400)]);
    t.strictSame((await get()).reactions, { '👍': ['u3'] }, 'an emoji with no users is omitted');

    await store.applyEvents([ev.pinned('r1', m1.messageId, T + 3000)]);
    t.equal((await get()).isPinned, true);
    t.strictSame(ids(await store.pinned('r1')), [m1.messageId]);
    await store.applyEvents([ev.unpinned('r1', m1.messageId, T + 3100)]);
    t.equal((await get()).isPinned, false);
    t.strictSame(await store.pinned('r1'), []);

    await store.applyEvents([ev.delivered('r1', m1.messageId, 'u2', T + 4000)]);
    t.strictSame(await store.messageStatus('r1', m1.messageId), [{ messageId: m1.messageId, userId: 'u2', deliveredAt: iso(T + 4000) }]);
    await store.applyEvents([ev.readMarked('r1', 'u2', m1.messageId, T + 5000)]);
    t.strictSame(await store.getReadState('r1', 'u2'), { roomId: 'r1', userId: 'u2', lastReadId: m1.messageId, readAt: iso(T + 5000) });
    t.strictSame(await store.messageStatus('r1', m1.messageId), [
      { messageId: m1.messageId, userId: 'u2', deliveredAt: iso(T + 4000), readAt: iso(T + 5000) },
    ]);

    await store.applyEvents([ev.deleted('r1', m1.messageId, T + 6000)]);
    m = await get();
    t.equal(m.isDeleted, true);
    t.equal(m.deletedAt, iso(T + 6000));
    t.equal(m.content, '');
    t.strictSame(ids(await store.history('r1', { limit: 10 })), [m1.messageId], 'a tombstone stays in history');
    t.strictSame(await store.search({ roomIds: ['r1'], text: 'hello', limit: 10 }), []);
  });

  test('messages: events that reach a message before its create are kept for it', async (t, store) => {
    const m1 = makeMessage('r1', idAt(T), { content: 'first words' });
    await store.applyEvents([
      ev.edited('r1', m1.messageId, 'second words', T + 1000),
      ev.reactionAdded('r1', m1.messageId, 'u2', '🎉', T + 500),
      ev.pinned('r1', m1.messageId, T + 600),
    ]);
    t.equal(await store.getMessage('r1', m1.messageId), undefined, 'nothing is read before the create');
    t.strictSame(await store.history('r1', { limit: 10 }), []);
    t.strictSame(await store.pinned('r1'), []);
    t.strictSame(await store.search({ roomIds: ['r1'], text: 'second', limit: 10 }), []);
    t.equal(await store.countUnread('r1', 'u9', undefined, 10), 0);

    await store.applyEvents([ev.created(m1, T)]);
    t.strictSame(await store.getMessage('r1', m1.messageId), {
      ...m1, content: 'second words', isEdited: true, editedAt: iso(T + 1000), reactions: { '🎉': ['u2'] }, isPinned: true,
    });
    t.strictSame(ids(await store.search({ roomIds: ['r1'], text: 'second', limit: 10 })), [m1.messageId]);
    t.strictSame(await store.search({ roomIds: ['r1'], text: 'first', limit: 10 }), [], 'the replaced text is not indexed');

    // An edit older than the create loses to the create's content.
    const m2 = makeMessage('r1', idAt(T + 1), { content: 'create wins' });
    await store.applyEvents([ev.edited('r1', m2.messageId, 'stale edit', T - 1000), ev.created(m2, T + 1)]);
    const got = await store.getMessage('r1', m2.messageId);
    t.equal(got?.content, 'create wins');
    t.equal(got?.isEdited, false);
  });

  test('messages: events naming another room never touch a message', async (t, store) => {
    const m1 = makeMessage('r1', idAt(T), { content: 'stays put' });
    await store.applyEvents([ev.created(m1, T)]);
    await store.applyEvents([
      ev.edited('r2', m1.messageId, 'hijacked', T + 1000),
      ev.deleted('r2', m1.messageId, T + 1000),
      ev.pinned('r2', m1.messageId, T + 1000),
      ev.reactionAdded('r2', m1.messageId, 'u2', '👎', T + 1000),
    ]);
    t.strictSame(await store.getMessage('r1', m1.messageId), m1);
    t.equal(await store.getMessage('r2', m1.messageId), undefined);
    t.strictSame(ids(await store.search({ roomIds: ['r1'], text: 'stays', limit: 10 })), [m1.messageId]);
    t.strictSame(await store.search({ roomIds: ['r2'], text: 'hijacked', limit: 10 }), []);
  });

  test('messages: a delete is a sticky tombstone', async (t, store) => {
    const m1 = makeMessage('r1', idAt(T), { content: 'secret plan', attachments: [{ id: 'a', type: 'file', url: 'https://f/a' }] });
    await store.applyEvents([ev.created(m1, T), ev.deleted('r1', m1.messageId, T + 2000)]);
    await store.applyEvents([ev.edited('r1', m1.messageId, 'resurrected', T + 3000)]);
    const got = await store.getMessage('r1', m1.messageId);
    t.equal(got?.isDeleted, true, 'a later edit does not undelete');
    t.equal(got?.content, '');
    t.equal(got?.deletedAt, iso(T + 2000));
    t.strictSame(await store.search({ roomIds: ['r1'], text: 'secret', limit: 10 }), []);
    t.strictSame(await store.search({ roomIds: ['r1'], text: 'resurrected', limit: 10 }), []);
    await store.applyEvents([ev.created(m1, T)]);
    t.equal((await store.getMessage('r1', m1.messageId))?.content, '', 'a redelivered create does not restore the content');

    const m2 = makeMessage('r1', idAt(T + 1), { content: 'never seen' });
    await store.applyEvents([ev.deleted('r1', m2.messageId, T + 500)]);
    await store.applyEvents([ev.created(m2, T + 1)]);
    const late = await store.getMessage('r1', m2.messageId);
    t.equal(late?.isDeleted, true, 'a delete that arrives before the create still deletes');
    t.equal(late?.content, '');
    t.strictSame(ids(await store.history('r1', { limit: 10 })), [m2.messageId, m1.messageId]);
    t.strictSame(await store.search({ roomIds: ['r1'], text: 'never', limit: 10 }), []);
  });

  // Shared by the idempotency and commutativity tests.
  const scenario = () => {
    const r = 'r1';
    const m1 = makeMessage(r, idAt(T + 1), { authorId: 'u1', content: 'alpha one' });
    const m2 = makeMessage(r, idAt(T + 2), { authorId: 'u2', authorName: 'User u2', content: 'bravo two' });
    const m3 = makeMessage(r, idAt(T + 3), { authorId: 'u1', content: 'charlie three' });
    const m4 = makeMessage(r, idAt(T + 4), { authorId: 'u2', authorName: 'User u2', content: 'delta four' });
    const m5 = makeMessage(r, idAt(T + 5), { authorId: 'u3', authorName: 'User u3', content: 'echo reply', threadId: m1.messageId });
    const events: DurableEvent[] = [
      ...[m1, m2, m3, m4, m5].map((m, i) => ev.created(m, T + 1 + i)),
      ev.edited(r, m1.messageId, 'alpha golf', T + 1000),
      ev.edited(r, m1.messageId, 'alpha hotel', T + 2000),
      ev.edited(r, m2.messageId, 'bravo india', T + 1000),
      ev.deleted(r, m2.messageId, T + 1500),
      ev.deleted(r, m2.messageId, T + 2500, 'u9'),
      ev.edited(r, m2.messageId, 'bravo juliet', T + 3000),
      ev.reactionAdded(r, m3.messageId, 'u2', '👍', T + 100),
      ev.reactionRemoved(r, m3.messageId, 'u2', '👍', T + 200),
      ev.reactionAdded(r, m3.messageId, 'u3', '👍', T + 300),
      ev.reactionAdded(r, m3.messageId, 'u2', '❤️', T + 400),
      ev.reactionAdded(r, m3.messageId, 'u4', '🎉', T + 500),
      ev.reactionRemoved(r, m3.messageId, 'u4', '🎉', T + 500),
      ev.reactionRemoved(r, m3.messageId, 'u3', '❤️', T + 600),
      ev.reactionAdded(r, m3.messageId, 'u2', '👍', T + 700),
      ev.reactionAdded(r, m5.messageId, 'u1', '😀', T + 50),
      ev.pinned(r, m4.messageId, T + 100),
      ev.unpinned(r, m4.messageId, T + 200),
      ev.pinned(r, m4.messageId, T + 300),
      ev.pinned(r, m3.messageId, T + 100),
      ev.unpinned(r, m3.messageId, T + 400),
      ev.readMarked(r, 'u2', m3.messageId, T + 5000),
      ev.readMarked(r, 'u2', m1.messageId, T + 6000),
      ev.readMarked(r, 'u3', m4.messageId, T + 7000),
      ev.readMarked(r, 'u2', m3.messageId, T + 8000),
      ev.delivered(r, m3.messageId, 'u2', T + 4000),
      ev.delivered(r, m1.messageId, 'u3', T + 4500),
      ev.delivered(r, m3.messageId, 'u2', T + 9000),
    ];
    const messageIds = [m1, m2, m3, m4, m5].map((m) => m.messageId);
    const take = (s: Store) => snapshot(s, r, messageIds, ['u1', 'u2', 'u3'], [m1.messageId],
      ['alpha', 'golf', 'hotel', 'bravo', 'juliet', 'charlie', 'echo']);
    return { r, m1, m2, m3, m4, m5, events, take };
  };

  test('messages: applying the same events twice equals applying them once', async (t, store) => {
    const { events, take, m3 } = scenario();
    await store.applyEvents(events);
    const once = await take(store);
    t.equal(once.history.length, 4, 'four main-timeline messages');
    t.strictSame(once.messages[2]?.reactions, { '👍': ['u3', 'u2'], '❤️': ['u2'] });

    await store.applyEvents(events);
    t.strictSame(await take(store), once, 'the same batch again changes nothing');
    for (const e of shuffled(events, random(7))) await store.applyEvents([e, e]);
    t.strictSame(await take(store), once, 'each event again, twice in one call, changes nothing');
    t.strictSame((await store.getMessage('r1', m3.messageId))?.reactions['👍'], ['u3', 'u2'], 'no user listed twice');
  });

  test('messages: any order of the same events ends in the same state', async (t, store) => {
    const { r, m1, m2, m3, m4, m5, events, take } = scenario();
    await store.applyEvents(events);
    const expected = await take(store);

    // The state itself, not only agreement between orders.
    const [g1, g2, g3, g4, g5] = expected.messages;
    t.strictSame(g1, { ...m1, content: 'alpha hotel', isEdited: true, editedAt: iso(T + 2000) }, 'the latest edit wins');
    t.equal(g2?.isDeleted, true, 'edits around a delete do not undelete');
    t.equal(g2?.content, '');
    t.equal(g2?.deletedAt, iso(T + 2500), 'deletedAt is last-writer-wins like every field');
    t.strictSame(g3?.reactions, { '👍': ['u3', 'u2'], '❤️': ['u2'] }, 'reactions by time; a removal wins a tie');
    t.equal(g3?.isPinned, false);
    t.equal(g4?.isPinned, true);
    t.strictSame(g5, { ...m5, reactions: { '😀': ['u1'] } });
    t.strictSame(ids(expected.history), [m4.messageId, m3.messageId, m2.messageId, m1.messageId]);
    t.strictSame(expected.threads.map(ids), [[m5.messageId]]);
    t.strictSame(expected.pinned, [m4.messageId]);
    t.strictSame(expected.readStates, [
      undefined,
      { roomId: r, userId: 'u2', lastReadId: m3.messageId, readAt: iso(T + 5000) },
      { roomId: r, userId: 'u3', lastReadId: m4.messageId, readAt: iso(T + 7000) },
    ]);
    t.strictSame(expected.status[2], [ // a later delivery or mark of the same message keeps the first time
      { messageId: m3.messageId, userId: 'u2', deliveredAt: iso(T + 4000), readAt: iso(T + 5000) },
      { messageId: m3.messageId, userId: 'u3', readAt: iso(T + 7000) },
    ]);
    t.strictSame(expected.status[0], [
      { messageId: m1.messageId, userId: 'u2', readAt: iso(T + 5000) },
      { messageId: m1.messageId, userId: 'u3', deliveredAt: iso(T + 4500), readAt: iso(T + 7000) },
    ]);
    t.strictSame(expected.search, [[m1.messageId], [], [m1.messageId], [], [], [m3.messageId], [m5.messageId]]);

    const orders: Array<[string, DurableEvent[], number]> = [
      ['reversed, one event per call', events.slice().reverse(), 1],
    ];
    for (let seed = 1; seed <= 6; seed++) orders.push([`shuffle ${seed}`, shuffled(events, random(seed)), 1 + seed]);
    for (const [label, order, maxChunk] of orders) {
      const other = await opts.open();
      try {
        await applyInChunks(other, order, random(100 + maxChunk), maxChunk);
        t.strictSame(await take(other), expected, `same state after ${label}`);
      } finally {
        await other.close();
      }
    }
  });

  // ---------------------------------------------------------------- history

  test('history: pages of 50 walk 250 messages backwards and forwards exactly once', async (t, store) => {
    // The first ids are short (few digits): a store ordering ids as text would misplace them.
    const all = Array.from({ length: 250 }, (_, i) => i < 5 ? idAt(EPOCH_MS + 1 + i) : idAt(T + Math.floor(i / 3), i % 3));
    const noise = [
      ...Array.from({ length: 20 }, (_, i) => ev.created(makeMessage('other', idAt(T + i, 7)), T + i)),
      ...Array.from({ length: 10 }, (_, i) => ev.created(makeMessage('r1', idAt(T + i * 5, 9), { threadId: all[100]! }), T + i)),
    ];
    const events = shuffled([...all.map((id) => ev.created(makeMessage('r1', id), idTime(id))), ...noise], random(42));
    await applyInChunks(store, events, random(43), 60);

    const newestFirst = all.slice().reverse();
    const back: string[] = [];
    let before: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = ids(await store.history('r1', before === undefined ? { limit: 50 } : { limit: 50, before }));
      if (page.length === 0) break;
      t.strictSame(page, newestFirst.slice(back.length, back.length + 50), `backward page ${pages}`);
      back.push(...page);
      before = page[page.length - 1];
    }
    t.strictSame(back, newestFirst, 'backwards: every message once, newest first');

    const forward: string[] = [];
    let after = '0';
    for (let pages = 0; pages < 10; pages++) {
      const page = ids(await store.history('r1', { limit: 50, after }));
      if (page.length === 0) break;
      t.strictSame(page, all.slice(forward.length, forward.length + 50).reverse(), `forward page ${pages}: the oldest 50 after the cursor, newest first`);
      forward.push(...page.slice().reverse());
      after = page[0]!;
    }
    t.strictSame(forward, all, 'forwards: every message once, oldest first');

    t.strictSame(ids(await store.history('r1', { limit: 50, before: all[100]!, after: all[90]! })), all.slice(91, 100).reverse(),
      'before and after together bound the page');
    t.strictSame(ids(await store.history('r1', { limit: 3, before: all[100]!, after: all[90]! })), [all[99], all[98], all[97]],
      'with both bounds the page is the newest of the range');
    t.strictSame(await store.history('r1', { limit: 50, before: all[0]! }), []);
    t.strictSame(await store.history('r1', { limit: 50, after: all[249]! }), []);
  });

  test('history: thread replies stay out of the main timeline and come back by threadId', async (t, store) => {
    const root = idAt(T);
    const root2 = idAt(T + 1);
    const replies = Array.from({ length: 5 }, (_, i) => idAt(T + 10 + i));
    const replies2 = [idAt(T + 20), idAt(T + 21)];
    const main = [idAt(T + 30), idAt(T + 31)];
    await store.applyEvents([
      ev.created(makeMessage('r1', root), T),
      ev.created(makeMessage('r1', root2), T + 1),
      ...replies.map((id, i) => ev.created(makeMessage('r1', id, { threadId: root, replyTo: root }), T + 10 + i)),
      ...replies2.map((id, i) => ev.created(makeMessage('r1', id, { threadId: root2 }), T + 20 + i)),
      ...main.map((id, i) => ev.created(makeMessage('r1', id), T + 30 + i)),
    ]);
    t.strictSame(ids(await store.history('r1', { limit: 100 })), [main[1], main[0], root2, root]);
    t.strictSame(ids(await store.history('r1', { limit: 100, threadId: root })), replies.slice().reverse());
    t.strictSame(ids(await store.history('r1', { limit: 2, threadId: root })), [replies[4], replies[3]]);
    t.strictSame(ids(await store.history('r1', { limit: 2, threadId: root, before: replies[3]! })), [replies[2], replies[1]]);
    t.strictSame(ids(await store.history('r1', { limit: 2, threadId: root, after: replies[0]! })), [replies[2], replies[1]]);
    t.strictSame(ids(await store.history('r1', { limit: 100, threadId: root2 })), replies2.slice().reverse());
    t.strictSame(await store.history('r2', { limit: 100, threadId: root }), [], 'never another room');
    const reply = await store.getMessage('r1', replies[0]!);
    t.equal(reply?.threadId, root);
    t.equal(reply?.replyTo, root);
  });

  test('pinned: lists the pinned, undeleted messages of the room only', async (t, store) => {
    const [a, b, c] = [idAt(T), idAt(T + 1), idAt(T + 2)];
    const x = idAt(T + 3);
    await store.applyEvents([
      ev.created(makeMessage('r1', a), T), ev.created(makeMessage('r1', b), T + 1), ev.created(makeMessage('r1', c), T + 2),
      ev.created(makeMessage('r2', x), T + 3),
      ev.pinned('r1', a, T + 100), ev.pinned('r1', c, T + 200), ev.pinned('r2', x, T + 300),
      ev.pinned('r1', b, T + 100), ev.unpinned('r1', b, T + 150),
    ]);
    const pinnedA = await store.pinned('r1');
    t.strictSame(ids(pinnedA).sort(compareIds), [a, c]);
    t.ok(pinnedA.every((m) => m.isPinned && m.roomId === 'r1'), 'every pinned message says so');
    t.strictSame(ids(await store.pinned('r2')), [x]);
    await store.applyEvents([ev.deleted('r1', c, T + 400)]);
    t.strictSame(ids(await store.pinned('r1')), [a], 'a deleted message is not listed');
    t.strictSame(await store.pinned('r3'), []);
  });

  // ---------------------------------------------------------------- search

  test('search: finds whole words in the listed rooms, newest first, never deleted messages', async (t, store) => {
    const texts: Array<[string, string]> = [
      ['r1', 'the quick brown fox'],
      ['r1', 'lazy dog sleeps'],
      ['r1', 'Quick thinking wins'],
      ['r1', 'a fox and a dog'],
      ['r2', 'quick fox in another room'],
      ['r1', 'quick deleted fox'],
      ['r1', 'original wording'],
      ['r1', 'fox fox fox'],
      ['r1', 'Café crème, ÉLAN'],
      ['r1', 'foxes are not a fox-trot'],
    ];
    const m = texts.map(([room, content], i) => makeMessage(room, idAt(T + i), { content }));
    await store.applyEvents([
      ...m.map((msg, i) => ev.created(msg, T + i)),
      ev.deleted('r1', m[5]!.messageId, T + 1000),
      ev.edited('r1', m[6]!.messageId, 'revised wording', T + 1000),
    ]);
    const find = async (text: string, roomIds = ['r1'], limit = 50) =>
      ids(await store.search({ roomIds, text, limit })).sort(compareIds);
    const id = (i: number) => m[i]!.messageId;

    t.strictSame(await find('quick'), [id(0), id(2)], 'case-insensitive; deleted and unlisted rooms excluded');
    t.strictSame(await find('fox', ['r1', 'r2']), [id(0), id(3), id(4), id(7), id(9)]);
    t.strictSame(await find('fox dog'), [id(3)], 'every word must match');
    t.strictSame(await find('dog fox'), [id(3)], 'in any order');
    t.strictSame(await find('qui'), [], 'a word matches whole words only, not prefixes');
    t.strictSame(await find('foxe'), []);
    t.strictSame(await find('foxes'), [id(9)]);
    t.strictSame(await find('trot'), [id(9)], 'punctuation separates words');
    t.strictSame(await find('original'), [], 'edited-away text is not found');
    t.strictSame(await find('revised'), [id(6)]);
    t.strictSame(await find('cafe'), [id(8)], 'diacritics are folded');
    t.strictSame(await find('CRÈME élan'), [id(8)], 'in the query too');
    t.strictSame(await find('fox', []), [], 'no rooms, no results');
    t.strictSame(await find('fox fox FOX'), await find('fox'), 'a repeated word is one word');

    const newest = await store.search({ roomIds: ['r1', 'r2'], text: 'fox', limit: 10 });
    t.strictSame(ids(newest), [id(9), id(7), id(4), id(3), id(0)], 'newest first, across rooms');
    t.strictSame(ids(await store.search({ roomIds: ['r1', 'r2'], text: 'fox', limit: 2 })), [id(9), id(7)],
      'limit keeps the newest');
    t.ok(newest.every((r) => !r.isDeleted), 'results are never deleted');
    t.strictSame(newest.find((r) => r.messageId === id(0)), m[0], 'results are whole messages');

    t.strictSame(await find('"fox'), await find('fox'), 'an unbalanced quote is just text');
    t.strictSame(await find('fox AND'), [id(3)], 'AND is a word, not an operator');
    t.strictSame(await find('AND OR ('), [], 'operators and parentheses are words or nothing');
    for (const text of ['*', '"', '', '   ', ')(', 'NEAR(fox dog)', 'content:fox', '-fox', '^fox', '{fox}', 'fox"quick', "fox' OR 1=1 --", '\\', '🦊']) {
      const res = await store.search({ roomIds: ['r1'], text, limit: 10 });
      t.ok(Array.isArray(res) && res.every((r) => r.roomId === 'r1' && !r.isDeleted), `search ${JSON.stringify(text)} answers without throwing`);
    }
    t.strictSame(await find('dog:fox'), [id(3)], 'a column filter is read as words');
    t.strictSame(await find('*'), [], 'text without a word finds nothing');
  });

  test('search: thread replies and messages of every bucket are found', async (t, store) => {
    const old = makeMessage('r1', idAt(T - 300 * 86_400_000), { content: 'ancient needle' });
    const mid = makeMessage('r1', idAt(T - 30 * 86_400_000), { content: 'middle needle' });
    const reply = makeMessage('r1', idAt(T), { content: 'reply needle', threadId: mid.messageId });
    await store.applyEvents([ev.created(old, T - 300 * 86_400_000), ev.created(mid, T - 30 * 86_400_000), ev.created(reply, T)]);
    t.strictSame(ids(await store.search({ roomIds: ['r1'], text: 'needle', limit: 10 })), [reply.messageId, mid.messageId, old.messageId]);
    t.strictSame(ids(await store.search({ roomIds: ['r1'], text: 'needle', limit: 2 })), [reply.messageId, mid.messageId]);
  });

  // ---------------------------------------------------------------- read state, unread, status

  test('read state: read marks only move forward', async (t, store) => {
    const [m3, m5, m7] = [idAt(T + 3), idAt(T + 5), idAt(T + 7)];
    t.equal(await store.getReadState('r1', 'u1'), undefined);
    await store.applyEvents([ev.readMarked('r1', 'u1', m5, T + 1000)]);
    t.strictSame(await store.getReadState('r1', 'u1'), { roomId: 'r1', userId: 'u1', lastReadId: m5, readAt: iso(T + 1000) });
    await store.applyEvents([ev.readMarked('r1', 'u1', m3, T + 2000)]);
    t.strictSame(await store.getReadState('r1', 'u1'), { roomId: 'r1', userId: 'u1', lastReadId: m5, readAt: iso(T + 1000) },
      'a later mark with a smaller id does not move it back');
    await store.applyEvents([ev.readMarked('r1', 'u1', m5, T + 2500)]);
    t.equal((await store.getReadState('r1', 'u1'))?.readAt, iso(T + 1000), 'marking the same id again keeps the first time');
    await store.applyEvents([ev.readMarked('r1', 'u1', m7, T + 3000)]);
    t.strictSame(await store.getReadState('r1', 'u1'), { roomId: 'r1', userId: 'u1', lastReadId: m7, readAt: iso(T + 3000) });
    t.equal(await store.getReadState('r1', 'u2'), undefined, 'per user');
    t.equal(await store.getReadState('r2', 'u1'), undefined, 'per room');
  });

  test('unread: countUnread counts main-timeline messages of others after the mark, up to the cap', async (t, store) => {
    const id = (i: number) => idAt(T + i);
    const author = (i: number) => (i === 7 ? 'u1' : i === 10 ? 'u3' : 'u2');
    await store.applyEvents([
      ...Array.from({ length: 10 }, (_, k) => k + 1).map((i) =>
        ev.created(makeMessage('r1', id(i), { authorId: author(i), threadId: i === 8 ? id(1) : null }), T + i)),
      ev.deleted('r1', id(9), T + 100),
      ev.created(makeMessage('r2', id(50), { authorId: 'u2' }), T + 50),
    ]);
    t.equal(await store.countUnread('r1', 'u1', undefined, 100), 7, 'own, thread replies and deleted are not unread');
    t.equal(await store.countUnread('r1', 'u1', id(5), 100), 2);
    t.equal(await store.countUnread('r1', 'u1', undefined, 3), 3, 'the cap is honoured');
    t.equal(await store.countUnread('r1', 'u2', undefined, 100), 2);
    t.equal(await store.countUnread('r1', 'u1', id(10), 100), 0);
    t.equal(await store.countUnread('r3', 'u1', undefined, 100), 0);
  });

  test('status: messageStatus reports delivery and read times per recipient', async (t, store) => {
    const [m1, m2, m3, m4] = [idAt(T + 1), idAt(T + 2), idAt(T + 3), idAt(T + 4)];
    await store.applyEvents([
      ev.created(makeMessage('dm', m1, { authorId: 'u1' }), T + 1),
      ev.created(makeMessage('dm', m2, { authorId: 'u1' }), T + 2),
      ev.created(makeMessage('dm', m3, { authorId: 'u1' }), T + 3),
      ev.created(makeMessage('dm', m4, { authorId: 'u2' }), T + 4),
      ev.delivered('dm', m1, 'u2', T + 100),
      ev.delivered('dm', m2, 'u2', T + 200),
    ]);
    t.strictSame(await store.messageStatus('dm', m1), [{ messageId: m1, userId: 'u2', deliveredAt: iso(T + 100) }]);
    t.strictSame(await store.messageStatus('dm', m3), [], 'nothing delivered or read yet');

    await store.applyEvents([ev.readMarked('dm', 'u2', m2, T + 1000)]);
    t.strictSame(await store.messageStatus('dm', m1), [{ messageId: m1, userId: 'u2', deliveredAt: iso(T + 100), readAt: iso(T + 1000) }],
      'a mark reads every earlier message');
    t.strictSame(await store.messageStatus('dm', m2), [{ messageId: m2, userId: 'u2', deliveredAt: iso(T + 200), readAt: iso(T + 1000) }]);
    t.strictSame(await store.messageStatus('dm', m3), []);

    await store.applyEvents([ev.readMarked('dm', 'u2', m3, T + 2000), ev.readMarked('dm', 'u1', m4, T + 3000)]);
    t.strictSame(await store.messageStatus('dm', m3), [{ messageId: m3, userId: 'u2', readAt: iso(T + 2000) }]);
    t.strictSame(await store.messageStatus('dm', m1), [{ messageId: m1, userId: 'u2', deliveredAt: iso(T + 100), readAt: iso(T + 1000) }],
      'the read time is the first mark that covered the message');
    t.strictSame(await store.messageStatus('dm', m4), [{ messageId: m4, userId: 'u1', readAt: iso(T + 3000) }],
      "the author's own marks do not count for their messages");
    t.strictSame(await store.messageStatus('dm', idAt(T + 99)), []);
    t.strictSame(await store.messageStatus('other', m1), [], 'never another room');
  });

  test('tenants: a record per tenant, replaced by the next put; none for a tenant never written', async (t, store) => {
    t.equal(await store.getTenant('t1'), undefined, 'unknown before the first put');
    const record = {
      tenant: 't1', quotas: { rooms: 5 }, config: { greeting: 'hi', nested: { a: [1, 2] } }, secrets: { whatsappAppSecret: 'abc' },
      createdAt: iso(T), updatedAt: iso(T),
    };
    await store.putTenant(record);
    t.strictSame(await store.getTenant('t1'), record);
    t.equal(await store.getTenant('t2'), undefined, 'another tenant');
    const next = { ...record, quotas: { rooms: 6, membersPerRoom: 3 }, secrets: {}, updatedAt: iso(T + 1) };
    await store.putTenant(next);
    t.strictSame(await store.getTenant('t1'), next, 'replaced');
  });

  test('tenants: API keys per tenant, ordered by id, replaced by the next put (revocation)', async (t, store) => {
    const key = (keyId: string, tenant = 't1') => ({ tenant, keyId, name: `key ${keyId}`, hash: `h-${keyId}`, createdBy: 'u1', createdAt: iso(T) });
    await store.putApiKey(key('k2'));
    await store.putApiKey(key('k1'));
    await store.putApiKey(key('k3', 't2'));
    t.strictSame((await store.listApiKeys('t1')).map((k) => k.keyId), ['k1', 'k2']);
    t.strictSame(await store.listApiKeys('t3'), [], 'a tenant without keys');
    t.strictSame(await store.getApiKey('t1', 'k1'), key('k1'));
    t.equal(await store.getApiKey('t2', 'k1'), undefined, "never another tenant's key");
    await store.putApiKey({ ...key('k1'), revokedAt: iso(T + 5) });
    t.equal((await store.getApiKey('t1', 'k1'))?.revokedAt, iso(T + 5), 'revoked');
    t.strictSame(await store.getApiKey('t2', 'k3'), key('k3', 't2'));
  });

  test('ping: answers while the store is open', async (t, store) => {
    t.equal(await store.ping(), undefined);
    t.ok(store.kind === 'sqlite' || store.kind === 'cassandra', `kind is ${store.kind}`);
  });
}
