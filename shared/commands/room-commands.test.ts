import t, { type Test } from 'tap';
import { createMemoryBus, subjects } from '../bus/index.ts';
import { createSqliteStore } from '../store/index.ts';
import { createMemoryPresence } from '../presence/index.ts';
import { decodeMsgpack } from '../protocol/index.ts';
import { Snowflake } from '../ids/index.ts';
import type { Role, RoomMember } from '../domain/index.ts';
import type { Principal } from '../auth/index.ts';
import { RoomCommands } from './room-commands.ts';
import { roomKey } from '../domain/index.ts';

/** The key of the fixtures' tenant's room `id` (not the bare id: the tenant is not the default one). */
const k = (id: string, tenant = 'acme') => roomKey(tenant, id);

const as = (userId: string, tenant = 'acme'): Principal => ({
  userId, name: userId[0]!.toUpperCase() + userId.slice(1), tenant, roles: [], expiresAt: undefined,
});
const alice = as('alice');
const bob = as('bob');
const carol = as('carol');
const dave = as('dave');

interface Seen { subject: string; frame: any }

/** Room commands over a fresh in-memory store and bus, with a clock that moves only when told. */
async function setup(t: Test) {
  const store = createSqliteStore({ file: ':memory:' });
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 10_000 });
  const presence = createMemoryPresence({ ttlSec: 300, typingTimeoutMs: 3000 });
  t.teardown(async () => { await bus.close(); await presence.close(); await store.close(); });
  let clock = Date.UTC(2025, 0, 1);
  const rooms = new RoomCommands({ bus, store, presence, ids: new Snowflake(1), now: () => clock });
  const seen: Seen[] = [];
  bus.subscribe('chat.>', (payload, subject) => seen.push({ subject, frame: decodeMsgpack(payload) }));
  return {
    store, rooms, seen,
    tick: (ms = 1000) => { clock += ms; },
    /** The frames published from now on, as `${subject} ${type}` lines, for a compact comparison. */
    watch() {
      const from = seen.length;
      return () => seen.slice(from).map((s) => `${s.subject} ${s.frame.type}`);
    },
    frames: (subject: string) => seen.filter((s) => s.subject === subject).map((s) => s.frame),
    /** Sets a member's role and flags directly in the store (setup, not under test). */
    async put(roomId: string, userId: string, changes: Partial<RoomMember> & { role?: Role }) {
      const m = await store.getMember(k(roomId), userId);
      await store.putMember(k(roomId), { roomId, userId, displayName: userId, role: 'member', joinedAt: new Date(clock).toISOString(), isMuted: false, isBanned: false, ...m, ...changes });
    },
  };
}

const ctl = (roomId: string, tenant = 'acme') => subjects.roomControl(k(roomId, tenant));
const user = (userId: string, tenant = 'acme') => subjects.userEvents(tenant, userId);

t.test('room commands - create stores the room, the owner first and each member once, and tells each member', async (t) => {
  const { rooms, store, seen } = await setup(t);
  const room = await rooms.create(alice, {
    name: 'Team', type: 'private', settings: { enableAI: false }, allowInvites: false,
    members: [{ userId: 'bob' }, { userId: 'bob', displayName: 'Bob again' }, { userId: 'alice' }, { userId: 'carol', displayName: 'Carol C' }],
  });
  t.match(room, {
    tenant: 'acme', name: 'Team', type: 'private', createdBy: 'alice', memberCount: 3, maxMembers: 10_000, isActive: true,
    settings: { enableAI: false, allowInvites: false, maxMembers: 10_000, requireApproval: false },
  });
  t.match(room.roomId, /^room_\d+$/);
  t.same(await store.getRoom(k(room.roomId)), room, 'stored as returned');
  const { members } = await store.listMembers(k(room.roomId), { limit: 10, offset: 0 });
  t.same(members.map((m) => [m.userId, m.role, m.displayName]).sort(), [
    ['alice', 'owner', 'Alice'], ['bob', 'member', 'bob'], ['carol', 'member', 'Carol C'],
  ], 'the first of a repeated member counts; the creator is never added twice');
  t.same(seen.map((s) => [s.subject, s.frame.type, s.frame.user.userId, s.frame.role]), [
    [user('alice'), 'user_joined', 'alice', 'owner'],
    [user('bob'), 'user_joined', 'bob', 'member'],
    [user('carol'), 'user_joined', 'carol', 'member'],
  ], 'each member hears of it on their own subject; the room has no subscribers yet');
});

t.test('room commands - a direct room needs exactly one other person, and the one between two people is found again', async (t) => {
  const { rooms, store, watch } = await setup(t);
  for (const members of [[], [{ userId: 'alice' }], [{ userId: 'bob' }, { userId: 'carol' }]]) {
    await t.rejects(rooms.create(alice, { name: 'dm', type: 'direct', members }), { code: 'bad_request' }, JSON.stringify(members));
  }
  const dm = await rooms.create(alice, { name: 'dm', type: 'direct', members: [{ userId: 'bob' }], maxMembers: 10 });
  t.match(dm, { type: 'direct', memberCount: 2, maxMembers: 2, settings: { maxMembers: 2 } });
  t.same((await store.getMember(k(dm.roomId), 'alice'))?.role, 'member', 'nobody owns a direct room');
  t.same((await store.getMember(k(dm.roomId), 'bob'))?.role, 'member');

  const frames = watch();
  const again = await rooms.create(bob, { name: 'other name', type: 'direct', members: [{ userId: 'alice' }] });
  t.equal(again.roomId, dm.roomId, 'either side finds the same room');
  t.equal(again.name, 'dm');
  t.same(frames(), [], 'finding it announces nothing');
  t.equal((await store.listRooms({ tenant: 'acme', type: 'direct', limit: 10, offset: 0 })).total, 1);

  const elsewhere = await rooms.create(as('alice', 'globex'), { name: 'dm', type: 'direct', members: [{ userId: 'bob' }] });
  t.not(elsewhere.roomId, dm.roomId, 'the same two ids in another tenant are other people');
  t.equal(elsewhere.tenant, 'globex');
});

t.test('room commands - group rooms hold at most 50, and no room starts over its size', async (t) => {
  const { rooms, store } = await setup(t);
  const people = (n: number) => Array.from({ length: n }, (_, i) => ({ userId: `u${i}` }));
  await t.rejects(rooms.create(alice, { name: 'g', type: 'group', maxMembers: 51 }), { code: 'bad_request', message: /at most 50/ });
  await t.rejects(rooms.create(alice, { name: 'g', type: 'group', members: people(50) }), { code: 'bad_request', message: /too many members/ });
  await t.rejects(rooms.create(alice, { name: 'p', type: 'public', maxMembers: 2, members: people(2) }), { code: 'bad_request', message: /holds 2/ });
  await t.rejects(rooms.create(alice, { name: 'p', type: 'private', settings: { maxMembers: 3 }, members: people(3) }), { code: 'bad_request' });
  t.equal((await store.listRooms({ tenant: 'acme', limit: 10, offset: 0 })).total, 0, 'nothing refused was stored');

  const full = await rooms.create(alice, { name: 'g', type: 'group', members: people(49) });
  t.match(full, { memberCount: 50, maxMembers: 50 });
  const capped = await rooms.create(alice, { name: 'g', type: 'group', settings: { maxMembers: 500 } });
  t.match(capped, { maxMembers: 50, settings: { maxMembers: 50 } }, 'a size asked in settings is capped at 50');
  const small = await rooms.create(alice, { name: 'p', type: 'public', maxMembers: 3, settings: { maxMembers: 7 } });
  t.match(small, { maxMembers: 3, settings: { maxMembers: 3 } }, 'maxMembers wins over settings.maxMembers');
});

t.test('room commands - a room id is taken once per tenant; another tenant gets its own room of that id', async (t) => {
  const { rooms, frames } = await setup(t);
  await rooms.create(alice, { name: 'General', type: 'private', roomId: 'general' });
  await t.rejects(rooms.create(bob, { name: 'Mine', type: 'public', roomId: 'general' }), { code: 'conflict' }, 'within the tenant');
  // issue 12, finding 9: a 409 here told another tenant that this private room exists
  const globexBob = as('bob', 'globex');
  const theirs = await rooms.create(globexBob, { name: 'Mine', type: 'public', roomId: 'general' });
  t.match(theirs, { roomId: 'general', tenant: 'globex', name: 'Mine', createdBy: 'bob' });
  t.match((await rooms.get(alice, 'general')).room, { name: 'General', tenant: 'acme' }, 'ours is untouched');
  t.match((await rooms.get(globexBob, 'general')).room, { name: 'Mine', tenant: 'globex' });
  await t.rejects(rooms.get(as('carol', 'globex'), 'nope'), { code: 'not_found' });
  await rooms.join(as('carol', 'globex'), 'general');
  t.strictSame((await rooms.members(globexBob, 'general', { limit: 10, offset: 0 })).members.map((m) => m.userId), ['bob', 'carol']);
  t.strictSame((await rooms.members(alice, 'general', { limit: 10, offset: 0 })).members.map((m) => m.userId), ['alice']);
  t.same(frames(ctl('general', 'globex')).map((f) => f.type), ['user_joined'], 'their control subject is their own');
  t.same(frames(ctl('general')), [], 'ours heard nothing of it');
});

t.test('room commands - a room of another tenant is not_found for every command', async (t) => {
  const { rooms, store, watch } = await setup(t);
  const room = await rooms.create(alice, { name: 'Lobby', type: 'public', members: [{ userId: 'bob' }] });
  const frames = watch();
  const stranger = as('alice', 'globex');
  const attempts: Record<string, Promise<unknown>> = {
    get: rooms.get(stranger, room.roomId),
    update: rooms.update(stranger, room.roomId, { name: 'taken' }),
    join: rooms.join(stranger, room.roomId),
    leave: rooms.leave(stranger, room.roomId),
    invite: rooms.invite(stranger, room.roomId, { userId: 'carol' }),
    kick: rooms.kick(stranger, room.roomId, 'bob'),
    ban: rooms.setBanned(stranger, room.roomId, 'bob', true),
    mute: rooms.setMuted(stranger, room.roomId, 'bob', true),
    role: rooms.setRole(stranger, room.roomId, 'bob', 'admin'),
    members: rooms.members(stranger, room.roomId, { limit: 10, offset: 0 }),
  };
  for (const [name, attempt] of Object.entries(attempts)) await t.rejects(attempt, { code: 'not_found' }, name);
  t.same(frames(), []);
  t.same(await store.getRoom(k(room.roomId)), room, 'nothing changed');
  t.same((await store.listMembers(k(room.roomId), { limit: 10, offset: 0 })).members.map((m) => [m.userId, m.role, m.isBanned, m.isMuted]), [
    ['alice', 'owner', false, false], ['bob', 'member', false, false],
  ]);
});

t.test('room commands - private rooms are not_found to outsiders and to banned members; public rooms are seen by all', async (t) => {
  const { rooms, put } = await setup(t);
  const priv = await rooms.create(alice, { name: 'Secret', type: 'private', members: [{ userId: 'bob' }, { userId: 'dave' }] });
  await put(priv.roomId, 'dave', { isBanned: true });
  for (const who of [carol, dave]) {
    await t.rejects(rooms.get(who, priv.roomId), { code: 'not_found' }, `${who.userId}: get`);
    await t.rejects(rooms.members(who, priv.roomId, { limit: 10, offset: 0 }), { code: 'not_found' }, `${who.userId}: members`);
    await t.rejects(rooms.invite(who, priv.roomId, { userId: 'erin' }), { code: 'not_found' }, `${who.userId}: invite`);
  }
  t.match(await rooms.get(bob, priv.roomId), { room: { roomId: priv.roomId }, member: { userId: 'bob', role: 'member' } });

  const pub = await rooms.create(alice, { name: 'Lobby', type: 'public' });
  const seen = await rooms.get(carol, pub.roomId);
  t.equal(seen.room.roomId, pub.roomId);
  t.equal(seen.member, undefined);
  t.same((await rooms.members(carol, pub.roomId, { limit: 10, offset: 0 })).members.map((m) => m.userId), ['alice']);
  await t.rejects(rooms.invite(carol, pub.roomId, { userId: 'erin' }), { code: 'forbidden' }, 'seen, but only members invite');
});

t.test('room commands - update: admins and the owner change settings, never in direct rooms; the change is announced without the tenant', async (t) => {
  const { rooms, store, put, tick, frames, watch } = await setup(t);
  const room = await rooms.create(alice, { name: 'Team', type: 'group', members: [{ userId: 'bob' }, { userId: 'carol' }, { userId: 'dave' }] });
  await put(room.roomId, 'carol', { role: 'moderator' });
  await put(room.roomId, 'dave', { role: 'admin' });
  const quiet = watch();
  await t.rejects(rooms.update(bob, room.roomId, { name: 'x' }), { code: 'forbidden' });
  await t.rejects(rooms.update(carol, room.roomId, { name: 'x' }), { code: 'forbidden' }, 'moderators do not change settings');
  await t.rejects(rooms.update(dave, room.roomId, { settings: { maxMembers: 51 } }), { code: 'bad_request' }, 'a group stays within 50');
  t.same(quiet(), []);

  tick(5000);
  const updated = await rooms.update(dave, room.roomId, { name: 'Renamed', tags: ['x'], maxMembers: 20, settings: { enableAI: false } });
  t.match(updated, {
    name: 'Renamed', tags: ['x'], maxMembers: 20, createdAt: room.createdAt, updatedAt: new Date(Date.parse(room.updatedAt) + 5000).toISOString(),
    settings: { ...room.settings, enableAI: false, maxMembers: 20 },
  });
  t.same(await store.getRoom(k(room.roomId)), updated, 'stored as returned');
  const announced = frames(ctl(room.roomId));
  t.equal(announced.length, 1);
  t.match(announced[0], { type: 'room_updated', roomId: room.roomId, room: { roomId: room.roomId, name: 'Renamed', maxMembers: 20 } });
  t.notOk('tenant' in announced[0].room, 'the tenant is not shown to clients');

  const dm = await rooms.create(alice, { name: 'dm', type: 'direct', members: [{ userId: 'bob' }] });
  await t.rejects(rooms.update(alice, dm.roomId, { name: 'ours' }), { code: 'forbidden' });
});

t.test('room commands - join: discoverable rooms only, once, not when full, not past approval or a ban', async (t) => {
  const { rooms, store, put, watch } = await setup(t);
  const pub = await rooms.create(alice, { name: 'Lobby', type: 'public' });
  const frames = watch();
  const joined = await rooms.join(bob, pub.roomId);
  t.match(joined, { joined: true, room: { roomId: pub.roomId, memberCount: 2 }, member: { userId: 'bob', role: 'member', displayName: 'Bob' } });
  t.equal((await store.getRoom(k(pub.roomId)))?.memberCount, 2);
  t.same(frames(), [`${ctl(pub.roomId)} user_joined`, `${user('bob')} user_joined`], 'the room and bob\'s own connections hear of it');
  const twice = await rooms.join(bob, pub.roomId);
  t.match(twice, { joined: false, room: { memberCount: 2 }, member: { userId: 'bob' } });
  t.equal(frames().length, 2, 'joining again announces nothing');

  const news = await rooms.create(alice, { name: 'News', type: 'announcement' });
  t.match(await rooms.join(bob, news.roomId), { joined: true });
  for (const type of ['private', 'group'] as const) {
    const closed = await rooms.create(alice, { name: type, type });
    await t.rejects(rooms.join(bob, closed.roomId), { code: 'not_found' }, `${type} rooms are joined by invite`);
  }
  const small = await rooms.create(alice, { name: 'Small', type: 'public', maxMembers: 1 });
  await t.rejects(rooms.join(bob, small.roomId), { code: 'conflict', message: /full/ });
  const vetted = await rooms.create(alice, { name: 'Vetted', type: 'public', settings: { requireApproval: true } });
  await t.rejects(rooms.join(bob, vetted.roomId), { code: 'forbidden', message: /approval/ });
  await put(pub.roomId, 'carol', { isBanned: true });
  await t.rejects(rooms.join(carol, pub.roomId), { code: 'forbidden', message: /banned/ });
  t.equal(await store.getMember(k(small.roomId), 'bob'), undefined);
  t.equal(await store.getMember(k(vetted.roomId), 'bob'), undefined);
});

t.test('room commands - join of a private room by a user banned from it is not_found, as get is', async (t) => {
  const { rooms, put } = await setup(t);
  const priv = await rooms.create(alice, { name: 'Secret', type: 'private', members: [{ userId: 'bob' }] });
  await put(priv.roomId, 'bob', { isBanned: true });
  await t.rejects(rooms.get(bob, priv.roomId), { code: 'not_found' });
  await t.rejects(rooms.join(bob, priv.roomId), { code: 'not_found' });
});

t.test('room commands - leave: an owner leaving passes ownership to the highest role, then the longest standing', async (t) => {
  const { rooms, store, put, tick, watch } = await setup(t);
  const room = await rooms.create(alice, { name: 'Town', type: 'public' });
  for (const who of [bob, dave, carol, as('erin')]) { tick(); await rooms.join(who, room.roomId); }
  await put(room.roomId, 'dave', { role: 'moderator' });
  await put(room.roomId, 'carol', { role: 'moderator' });
  await put(room.roomId, 'erin', { role: 'admin', isBanned: true });

  const frames = watch();
  await rooms.leave(alice, room.roomId);
  t.equal(await store.getMember(k(room.roomId), 'alice'), undefined);
  t.equal((await store.getMember(k(room.roomId), 'dave'))?.role, 'owner', 'the moderator who joined first; bob ranks lower, erin is banned');
  t.equal((await store.getMember(k(room.roomId), 'carol'))?.role, 'moderator');
  t.same(frames(), [
    `${ctl(room.roomId)} member_updated`, `${user('dave')} member_updated`,
    `${ctl(room.roomId)} user_left`, `${user('alice')} user_left`,
  ]);
  t.equal((await store.getRoom(k(room.roomId)))?.memberCount, 3, 'bob, carol and dave');

  await rooms.leave(bob, room.roomId);
  t.equal((await store.getMember(k(room.roomId), 'dave'))?.role, 'owner', 'a member leaving changes no role');
  await t.rejects(rooms.leave(bob, room.roomId), { code: 'not_found' }, 'not a member any more');
  await t.rejects(rooms.leave(as('erin'), room.roomId), { code: 'not_found' }, 'a banned user is no member');
  t.equal((await store.getMember(k(room.roomId), 'erin'))?.isBanned, true, 'and leaving does not lift the ban');
});

t.test('room commands - leave: the heir is found among all members, not only the first thousand', async (t) => {
  const { rooms, store, put, tick } = await setup(t);
  const room = await rooms.create(alice, { name: 'Big', type: 'public' });
  for (let i = 0; i < 1000; i++) { tick(); await put(room.roomId, `u${String(i).padStart(4, '0')}`, {}); }
  tick();
  await put(room.roomId, 'late_admin', { role: 'admin' });
  await rooms.leave(alice, room.roomId);
  t.equal((await store.getMember(k(room.roomId), 'late_admin'))?.role, 'owner');
  t.equal((await store.getMember(k(room.roomId), 'u0000'))?.role, 'member');
});

t.test('room commands - invite: moderators always, members only while invites are on; a banned user is forbidden', async (t) => {
  const { rooms, store, put, watch } = await setup(t);
  const room = await rooms.create(alice, { name: 'Team', type: 'private', allowInvites: false, members: [{ userId: 'bob' }, { userId: 'carol' }] });
  await put(room.roomId, 'carol', { role: 'moderator' });
  await t.rejects(rooms.invite(bob, room.roomId, { userId: 'dave' }), { code: 'forbidden', message: /invites are disabled/ });

  const frames = watch();
  const invited = await rooms.invite(carol, room.roomId, { userId: 'dave', displayName: 'Dave D' });
  t.match(invited, { roomId: room.roomId, userId: 'dave', displayName: 'Dave D', role: 'member', isMuted: false, isBanned: false });
  t.same(await store.getMember(k(room.roomId), 'dave'), invited);
  t.same(frames(), [`${ctl(room.roomId)} user_joined`, `${user('dave')} user_joined`], 'dave\'s connections learn of the room at once');
  const again = await rooms.invite(carol, room.roomId, { userId: 'dave', displayName: 'Other name' });
  t.equal(again.displayName, 'Dave D', 'inviting a member returns the membership as it is');
  t.equal(frames().length, 2, 'and announces nothing');

  await put(room.roomId, 'erin', { isBanned: true });
  await t.rejects(rooms.invite(alice, room.roomId, { userId: 'erin' }), { code: 'forbidden', message: /unban/ });
  t.equal((await store.getMember(k(room.roomId), 'erin'))?.isBanned, true);

  const open = await rooms.create(alice, { name: 'Open', type: 'private', maxMembers: 2, members: [{ userId: 'bob' }] });
  await t.rejects(rooms.invite(bob, open.roomId, { userId: 'dave' }), { code: 'conflict', message: /full/ }, 'invites are on, but the room is full');
  const dm = await rooms.create(alice, { name: 'dm', type: 'direct', members: [{ userId: 'bob' }] });
  await t.rejects(rooms.invite(alice, dm.roomId, { userId: 'dave' }), { code: 'forbidden' });
});

t.test('room commands - kick, mute and ban go strictly down the ranks and tell the room and the target', async (t) => {
  const { rooms, store, put, watch } = await setup(t);
  const room = await rooms.create(alice, { name: 'Team', type: 'private', members: [{ userId: 'bob' }, { userId: 'carol' }, { userId: 'dave' }] });
  await put(room.roomId, 'bob', { role: 'moderator' });
  await put(room.roomId, 'carol', { role: 'moderator' });

  const frames = watch();
  await t.rejects(rooms.kick(dave, room.roomId, 'bob'), { code: 'forbidden' }, 'members moderate nobody');
  await t.rejects(rooms.kick(bob, room.roomId, 'carol'), { code: 'forbidden' }, 'not an equal rank');
  await t.rejects(rooms.setMuted(bob, room.roomId, 'alice', true), { code: 'forbidden' }, 'not a higher rank');
  await t.rejects(rooms.setBanned(bob, room.roomId, 'bob', true), { code: 'forbidden' }, 'not yourself');
  await t.rejects(rooms.kick(bob, room.roomId, 'zed'), { code: 'not_found' });
  await t.rejects(rooms.setMuted(bob, room.roomId, 'zed', true), { code: 'not_found' });
  t.same(frames(), [], 'refusals announce nothing');

  const muted = await rooms.setMuted(bob, room.roomId, 'dave', true);
  t.match(muted, { userId: 'dave', isMuted: true, isBanned: false, role: 'member' });
  t.equal((await store.getMember(k(room.roomId), 'dave'))?.isMuted, true);
  t.same(frames(), [`${ctl(room.roomId)} member_updated`, `${user('dave')} member_updated`]);
  t.equal((await rooms.setMuted(bob, room.roomId, 'dave', false)).isMuted, false);
  t.equal((await store.getMember(k(room.roomId), 'dave'))?.isMuted, false);

  const before = frames().length;
  await rooms.kick(bob, room.roomId, 'dave');
  t.equal(await store.getMember(k(room.roomId), 'dave'), undefined);
  t.same(frames().slice(before), [`${ctl(room.roomId)} user_left`, `${user('dave')} user_left`]);
  t.equal((await rooms.members(alice, room.roomId, { limit: 10, offset: 0 })).total, 3);

  const banned = await rooms.setBanned(alice, room.roomId, 'carol', true);
  t.match(banned, { userId: 'carol', role: 'moderator', isBanned: true });
  t.equal((await store.getRoom(k(room.roomId)))?.memberCount, 2, 'a banned member does not count');
  await t.rejects(rooms.get(carol, room.roomId), { code: 'not_found' });
});

t.test('room commands - a ban keeps out users who never joined; unbanning lets them join again', async (t) => {
  const { rooms, store, frames } = await setup(t);
  const room = await rooms.create(alice, { name: 'Town', type: 'public' });
  await t.rejects(rooms.setBanned(alice, room.roomId, 'mallory', false), { code: 'not_found' }, 'nobody to unban');
  const banned = await rooms.setBanned(alice, room.roomId, 'mallory', true);
  t.match(banned, { userId: 'mallory', role: 'member', isBanned: true });
  t.equal((await store.getRoom(k(room.roomId)))?.memberCount, 1);
  t.match(frames(ctl(room.roomId)), [{ type: 'user_left', user: { userId: 'mallory' }, reason: 'banned' }]);
  t.match(frames(user('mallory')), [{ type: 'user_left', reason: 'banned' }], 'their connections drop the room');
  await t.rejects(rooms.join(as('mallory'), room.roomId), { code: 'forbidden' });

  const unbanned = await rooms.setBanned(alice, room.roomId, 'mallory', false);
  t.match(unbanned, { userId: 'mallory', isBanned: false });
  t.equal(await store.getMember(k(room.roomId), 'mallory'), undefined, 'an unbanned user is no member: they join again');
  t.match(frames(user('mallory')).at(-1), { type: 'member_updated', isBanned: false, isMuted: false });
  t.match(await rooms.join(as('mallory'), room.roomId), { joined: true });
});

t.test('room commands - unbanning a member who is not banned keeps them in the room', async (t) => {
  const { rooms, store } = await setup(t);
  const room = await rooms.create(alice, { name: 'Team', type: 'private', members: [{ userId: 'bob' }] });
  await rooms.setBanned(alice, room.roomId, 'bob', false).catch(() => undefined);
  t.match(await store.getMember(k(room.roomId), 'bob'), { userId: 'bob', isBanned: false });
});

t.test('room commands - kicking a banned user keeps the ban', async (t) => {
  const { rooms, store } = await setup(t);
  const room = await rooms.create(alice, { name: 'Town', type: 'public' });
  await rooms.setBanned(alice, room.roomId, 'mallory', true);
  await rooms.kick(alice, room.roomId, 'mallory').catch(() => undefined);
  t.equal((await store.getMember(k(room.roomId), 'mallory'))?.isBanned, true);
  await t.rejects(rooms.join(as('mallory'), room.roomId), { code: 'forbidden' });
});

t.test('room commands - roles: the owner makes admins, admins make moderators, nobody assigns ownership', async (t) => {
  const { rooms, store, watch } = await setup(t);
  const room = await rooms.create(alice, { name: 'Team', type: 'private', members: [{ userId: 'bob' }, { userId: 'carol' }, { userId: 'dave' }] });
  const frames = watch();
  const admin = await rooms.setRole(alice, room.roomId, 'bob', 'admin');
  t.match(admin, { userId: 'bob', role: 'admin' });
  t.equal((await store.getMember(k(room.roomId), 'bob'))?.role, 'admin');
  t.same(frames(), [`${ctl(room.roomId)} member_updated`, `${user('bob')} member_updated`]);

  t.equal((await rooms.setRole(bob, room.roomId, 'carol', 'moderator')).role, 'moderator');
  await t.rejects(rooms.setRole(bob, room.roomId, 'dave', 'admin'), { code: 'forbidden' }, 'admins do not make admins');
  await t.rejects(rooms.setRole(bob, room.roomId, 'alice', 'member'), { code: 'forbidden' }, 'nor touch the owner');
  await t.rejects(rooms.setRole(carol, room.roomId, 'dave', 'moderator'), { code: 'forbidden' }, 'moderators set no roles');
  await t.rejects(rooms.setRole(alice, room.roomId, 'bob', 'owner'), { code: 'forbidden', message: /ownership/ });
  await t.rejects(rooms.setRole(alice, room.roomId, 'zed', 'moderator'), { code: 'not_found' });
  t.equal(frames().length, 4, 'only the two changes were announced');
  t.same((await store.listMembers(k(room.roomId), { limit: 10, offset: 0 })).members.map((m) => [m.userId, m.role]).sort(), [
    ['alice', 'owner'], ['bob', 'admin'], ['carol', 'moderator'], ['dave', 'member'],
  ]);

  const dm = await rooms.create(alice, { name: 'dm', type: 'direct', members: [{ userId: 'bob' }] });
  await t.rejects(rooms.setRole(alice, dm.roomId, 'bob', 'moderator'), { code: 'forbidden' });
  await t.rejects(rooms.kick(alice, dm.roomId, 'bob'), { code: 'forbidden' }, 'direct rooms have no moderation');
});

t.test('room commands - identity: users named in requests are canonical ids; room and display names are NFC, visible and free of bidi controls (issue 12)', async (t) => {
  const { rooms, store, seen } = await setup(t);
  const room = await rooms.create(alice, { name: ' Cafe\u0301 ', type: 'private', members: [{ userId: 'ｂｏｂ', displayName: 'Bo\u0301b' }, { userId: 'bob' }] });
  t.equal(room.name, 'Café', 'NFC and trimmed');
  t.same((await store.listMembers(k(room.roomId), { limit: 10, offset: 0 })).members.map((m) => [m.userId, m.displayName]).sort(), [['alice', 'Alice'], ['bob', 'Bób']], 'ｂｏｂ is bob: one member');

  const seenBefore = seen.length;
  for (const name of ['\u200b\u200b\u200b', '\u3164', 'evil\u202etxt.exe']) {
    await t.rejects(rooms.create(alice, { name, type: 'public' }), { code: 'bad_request', message: /room name/ }, `create ${JSON.stringify(name)}`);
    await t.rejects(rooms.update(alice, room.roomId, { name }), { code: 'bad_request', message: /room name/ }, `rename to ${JSON.stringify(name)}`);
  }
  t.equal((await store.getRoom(k(room.roomId)))?.name, 'Café', 'no rename stored');
  for (const userId of ['adm\u200bin', 'admin\u202e', 'ad min', '']) {
    await t.rejects(rooms.invite(alice, room.roomId, { userId }), { code: 'bad_request', message: /user id/ }, `invite ${JSON.stringify(userId)}`);
    await t.rejects(rooms.setBanned(alice, room.roomId, userId, true), { code: 'bad_request' }, `ban ${JSON.stringify(userId)}`);
    await t.rejects(rooms.kick(alice, room.roomId, userId), { code: 'bad_request' }, `kick ${JSON.stringify(userId)}`);
    await t.rejects(rooms.setMuted(alice, room.roomId, userId, true), { code: 'bad_request' });
    await t.rejects(rooms.setRole(alice, room.roomId, userId, 'moderator'), { code: 'bad_request' });
    await t.rejects(rooms.create(alice, { name: 'dm', type: 'direct', members: [{ userId }] }), { code: 'bad_request' });
  }
  await t.rejects(rooms.invite(alice, room.roomId, { userId: 'carol', displayName: '\u202eloraC' }), { code: 'bad_request', message: /display name/ });
  t.equal(seen.length, seenBefore, 'refusals announce nothing');

  t.match(await rooms.invite(alice, room.roomId, { userId: 'ｃａｒｏｌ' }), { userId: 'carol', displayName: 'carol' });
  t.match(await rooms.setMuted(alice, room.roomId, 'ｃａｒｏｌ', true), { userId: 'carol', isMuted: true });
  t.match(await rooms.setRole(alice, room.roomId, 'ｃａｒｏｌ', 'moderator'), { userId: 'carol', role: 'moderator' });
  t.match(await rooms.kick(alice, room.roomId, 'ｃａｒｏｌ'), { userId: 'carol' });
  t.equal(await store.getMember(k(room.roomId), 'carol'), undefined, 'ｃａｒｏｌ was carol');
  t.match(await rooms.setBanned(alice, room.roomId, 'ｍａｌｌｏｒｙ', true), { userId: 'mallory', isBanned: true });
  await t.rejects(rooms.invite(alice, room.roomId, { userId: 'mallory' }), { code: 'forbidden' }, 'the ban holds for mallory');

  const dm = await rooms.create(alice, { name: 'dm', type: 'direct', members: [{ userId: 'ｄａｖｅ' }] });
  t.equal((await rooms.create(alice, { name: 'dm', type: 'direct', members: [{ userId: 'dave' }] })).roomId, dm.roomId, 'the direct room with ｄａｖｅ is the one with dave');
});

t.test('room commands - openMatch tells the members once, when it creates the room; later calls only answer it', async (t) => {
  const { rooms, store, watch, tick } = await setup(t);
  const frames = watch();
  const first = await rooms.openMatch(alice, { name: 'Match', type: 'direct', matchId: 'm-1', members: [{ userId: 'ｂｏｂ' }] });
  t.equal(first.created, true);
  t.match(first.room, { type: 'direct', matchId: 'm-1', memberCount: 2, createdBy: 'alice' });
  t.strictSame(frames(), [`${user('alice')} user_joined`, `${user('bob')} user_joined`], 'each member hears of the new room');
  t.strictSame((await store.getMember(k(first.room.roomId), 'bob'))?.role, 'member', 'the other person, in canonical form');
  tick();
  const again = watch();
  const second = await rooms.openMatch(bob, { name: 'Other name', type: 'direct', matchId: 'm-1', members: [{ userId: 'alice' }] });
  t.strictSame([second.created, second.room.roomId, second.room.name], [false, first.room.roomId, 'Match'], 'the existing room, unchanged');
  t.strictSame(again(), [], 'nothing announced again');
  await t.rejects(rooms.openMatch(carol, { name: 'Match', type: 'direct', matchId: 'm-1', members: [{ userId: 'alice' }] }), { code: 'conflict' });
  await t.rejects(rooms.openMatch(alice, { name: 'Match', type: 'direct', matchId: 'bad id', members: [{ userId: 'bob' }] }), { code: 'bad_request' });
  await t.rejects(rooms.openMatch(alice, { name: 'Match', type: 'private', matchId: 'm-2', members: [{ userId: 'bob' }] }), { code: 'bad_request' });
});

t.test('room commands - setArchived is the caller\'s own, idempotent, and refuses non-members as a missing room', async (t) => {
  const { rooms, store, tick, watch } = await setup(t);
  const room = await rooms.create(alice, { name: 'Team', type: 'public', members: [{ userId: 'bob' }] });
  const frames = watch();
  const first = await rooms.setArchived(alice, room.roomId, true);
  t.strictSame(first, { roomId: room.roomId, archived: true, archivedAt: '2025-01-01T00:00:00.000Z' });
  tick();
  t.strictSame(await rooms.setArchived(alice, room.roomId, true), first, 'archiving again keeps the first time');
  t.equal(await store.archivedAt(k(room.roomId), 'bob'), undefined, 'bob\'s state is untouched');
  t.strictSame(frames(), [], 'nothing is announced: the archive is the caller\'s alone');
  await t.rejects(rooms.setArchived(carol, room.roomId, true), { code: 'not_found', message: `room ${room.roomId} not found` });
  await t.rejects(rooms.setArchived(carol, 'no_such_room', true), { code: 'not_found', message: 'room no_such_room not found' });
  t.strictSame(await rooms.setArchived(alice, room.roomId, false), { roomId: room.roomId, archived: false, archivedAt: null });
  t.equal(await store.archivedAt(k(room.roomId), 'alice'), undefined);
});
