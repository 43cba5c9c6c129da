import t, { type Test } from 'tap';
import { createSqliteStore, type Store } from '../store/index.ts';
import { DEFAULT_ROOM_SETTINGS, type RoomMember } from '../domain/index.ts';
import { roomKey } from '../domain/index.ts';

/** The rooms' keys: their tenant is not the default one, so a key is not the bare id. */
const K1 = roomKey('acme', 'r1');
const K2 = roomKey('acme', 'r2');
import { createCachedRoomAccess, createStoreRoomAccess } from './room-access.ts';

/** The cache's bound per room (MAX_MEMBERS_CACHED in room-access.ts, not exported). */
const MEMBER_CACHE_BOUND = 20_000;

/** A fresh in-memory store with room `r1` of tenant acme (alice owner, bob member), counting its reads. */
async function setup(t: Test) {
  const store = createSqliteStore({ file: ':memory:' });
  t.teardown(() => store.close());
  const at = new Date().toISOString();
  const member = (userId: string, extra: Partial<RoomMember> = {}): RoomMember => ({
    roomId: 'r1', userId, displayName: userId, role: 'member', joinedAt: at, isMuted: false, isBanned: false, ...extra,
  });
  await store.createRoom({
    roomId: 'r1', tenant: 'acme', name: 'first', description: '', type: 'public', createdBy: 'alice', createdAt: at, updatedAt: at,
    memberCount: 0, maxMembers: 100, lastActivity: at, settings: { ...DEFAULT_ROOM_SETTINGS }, isActive: true, tags: [],
  }, [member('alice', { role: 'owner' }), member('bob')]);
  const reads = { room: 0, member: 0 };
  const counted: Store = {
    ...store,
    getRoom: (roomId) => { reads.room++; return store.getRoom(roomId); },
    getMember: (roomId, userId) => { reads.member++; return store.getMember(roomId, userId); },
  };
  const rename = async (name: string) => store.updateRoom({ ...(await store.getRoom(K1))!, name });
  return { store, counted, reads, member, rename };
}

/**
 * Holds a store read's answer until opened: the read itself is served at once (before the change a
 * test makes next) but answers late, as a remote store's may.
 */
function gate() {
  let open = () => {};
  const closed = new Promise<void>((resolve) => { open = resolve; });
  return { closed, open };
}

t.test('room access - the store access reads the store every time and hides rooms of other tenants', async (t) => {
  const { counted, reads, store, member, rename } = await setup(t);
  const access = createStoreRoomAccess(counted);
  access.retain(K1);
  t.equal((await access.room(K1)).name, 'first');
  await rename('second');
  t.equal((await access.room(K1)).name, 'second', 'retain does not make it cache');
  await t.rejects(access.room(roomKey('globex', 'r1')), { code: 'not_found' });
  await t.rejects(access.room(K2), { code: 'not_found' });
  t.equal((await access.member(K1, 'bob'))?.isMuted, false);
  await store.putMember(K1, member('bob', { isMuted: true }));
  access.invalidate(K1, 'carol');
  t.equal((await access.member(K1, 'bob'))?.isMuted, true);
  t.same(reads, { room: 4, member: 2 });
});

t.test('room access - a room the cache does not retain is always read from the store', async (t) => {
  const { counted, reads, store, member, rename } = await setup(t);
  const access = createCachedRoomAccess(counted);
  t.equal((await access.room(K1)).name, 'first');
  await rename('second');
  t.equal((await access.room(K1)).name, 'second');
  t.equal(await access.member(K1, 'carol'), undefined);
  await store.putMember(K1, member('carol'));
  t.equal((await access.member(K1, 'carol'))?.userId, 'carol', 'an absent member is not remembered either');
  t.same(reads, { room: 2, member: 2 });
});

t.test('room access - a retained room and its members are served from the cache until invalidated', async (t) => {
  const { counted, reads, store, member, rename } = await setup(t);
  const access = createCachedRoomAccess(counted);
  access.retain(K1);

  t.equal((await access.room(K1)).name, 'first');
  await rename('second');
  t.equal((await access.room(K1)).name, 'first', 'served from the cache');
  t.equal(reads.room, 1);
  access.invalidate(K1, 'bob');
  t.equal((await access.room(K1)).name, 'first', 'a member invalidation keeps the room');
  access.invalidate(K1);
  t.equal((await access.room(K1)).name, 'second', 'a room invalidation reads it again');
  t.equal(reads.room, 2);

  t.equal((await access.member(K1, 'bob'))?.isMuted, false);
  t.equal(await access.member(K1, 'carol'), undefined);
  await store.putMember(K1, member('bob', { isMuted: true }));
  await store.putMember(K1, member('carol'));
  t.equal((await access.member(K1, 'bob'))?.isMuted, false, 'a member is cached');
  t.equal(await access.member(K1, 'carol'), undefined, 'so is the absence of one');
  t.equal(reads.member, 2);
  access.invalidate(K1);
  t.equal((await access.member(K1, 'bob'))?.isMuted, false, 'a room invalidation keeps the members');
  access.invalidate(K1, 'bob');
  t.equal((await access.member(K1, 'bob'))?.isMuted, true, 'invalidating the member reads it again');
  t.equal(await access.member(K1, 'carol'), undefined, 'and only that member');
  access.invalidate(K1, 'carol');
  t.equal((await access.member(K1, 'carol'))?.userId, 'carol');
  t.equal(reads.member, 4);
});

t.test('room access - a cached room is never another tenant\'s room of the same id', async (t) => {
  const { counted, reads } = await setup(t);
  const access = createCachedRoomAccess(counted);
  access.retain(K1);
  t.equal((await access.room(K1)).roomId, 'r1');
  await t.rejects(access.room(roomKey('globex', 'r1')), { code: 'not_found' });
  t.equal(reads.room, 2, 'the other tenant\'s key is looked up as its own room, not served from the cached one');
});

t.test('room access - a retained room missing from the store is not cached as missing', async (t) => {
  const { counted, store } = await setup(t);
  const access = createCachedRoomAccess(counted);
  access.retain(K2);
  await t.rejects(access.room(K2), { code: 'not_found' });
  const r1 = (await store.getRoom(K1))!;
  await store.createRoom({ ...r1, roomId: 'r2', name: 'late' }, []);
  t.equal((await access.room(K2)).name, 'late');
});

t.test('room access - retains are counted: the cache lives until the last release', async (t) => {
  const { counted, reads, rename } = await setup(t);
  const access = createCachedRoomAccess(counted);
  access.retain(K1);
  access.retain(K1);
  await access.room(K1);
  await access.member(K1, 'bob');
  await rename('second');
  access.release(K1);
  t.equal((await access.room(K1)).name, 'first', 'one retain is left');
  await access.member(K1, 'bob');
  t.same(reads, { room: 1, member: 1 });
  access.release(K1);
  t.equal((await access.room(K1)).name, 'second', 'released: read from the store');
  access.release(K1);
  access.retain(K1);
  t.equal((await access.room(K1)).name, 'second');
  t.equal((await access.room(K1)).name, 'second');
  await access.member(K1, 'bob');
  t.same(reads, { room: 3, member: 2 }, 'a retain after the last release starts an empty cache, and an extra release did not undo it');
});

t.test('room access - the member cache of a room is bounded; the oldest entries go first', async (t) => {
  const { counted, reads, store, member } = await setup(t);
  const access = createCachedRoomAccess(counted);
  access.retain(K1);
  for (let i = 0; i < MEMBER_CACHE_BOUND; i++) await access.member(K1, `u${i}`);
  await store.putMember(K1, member('u0'));
  await store.putMember(K1, member('u1'));
  t.equal(await access.member(K1, 'u0'), undefined, 'at the bound every entry is still cached');
  await access.member(K1, `u${MEMBER_CACHE_BOUND}`);
  t.equal(reads.member, MEMBER_CACHE_BOUND + 1);
  t.equal(await access.member(K1, 'u1'), undefined, 'the next oldest is still cached');
  t.equal(reads.member, MEMBER_CACHE_BOUND + 1);
  t.equal((await access.member(K1, 'u0'))?.userId, 'u0', 'the oldest entry was dropped for the new one');
  t.equal(reads.member, MEMBER_CACHE_BOUND + 2);
});

t.test('room access - an invalidation that arrives while a member is being read is not lost', async (t) => {
  const { store, member } = await setup(t);
  const late = gate();
  const slow: Store = { ...store, getMember: async (roomId, userId) => { const m = await store.getMember(roomId, userId); await late.closed; return m; } };
  const access = createCachedRoomAccess(slow);
  access.retain(K1);
  const inFlight = access.member(K1, 'bob');
  await store.putMember(K1, member('bob', { isBanned: true }));
  access.invalidate(K1, 'bob');
  late.open();
  t.equal((await inFlight)?.isBanned, false, 'the read in flight answers what it read');
  t.equal((await access.member(K1, 'bob'))?.isBanned, true, 'the next read sees the ban');
});

t.test('room access - an invalidation that arrives while the room is being read is not lost', async (t) => {
  const { store, rename } = await setup(t);
  const late = gate();
  const slow: Store = { ...store, getRoom: async (roomId) => { const r = await store.getRoom(roomId); await late.closed; return r; } };
  const access = createCachedRoomAccess(slow);
  access.retain(K1);
  const inFlight = access.room(K1);
  await rename('second');
  access.invalidate(K1);
  late.open();
  t.equal((await inFlight).name, 'first', 'the read in flight answers what it read');
  t.equal((await access.room(K1)).name, 'second', 'the next read sees the change');
});
