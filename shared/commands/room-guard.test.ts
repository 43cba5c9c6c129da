import t from 'tap';
import { createSqliteStore } from '../store/index.ts';
import { ChatError } from '../protocol/index.ts';
import { DEFAULT_ROOM_SETTINGS, type Role, type Room, type RoomMember, type RoomType } from '../domain/index.ts';
import type { Principal } from '../auth/index.ts';
import { createStoreRoomAccess } from './room-access.ts';
import { RoomGuard } from './room-guard.ts';

const store = createSqliteStore({ file: ':memory:' });
t.teardown(() => store.close());
const guard = new RoomGuard(createStoreRoomAccess(store));

const as = (userId: string, tenant = 'acme'): Principal => ({ userId, name: userId, tenant, roles: [], expiresAt: undefined });

let rooms = 0;
/** A room of tenant acme owned by `owner`, with `others` as members (role and flags per member). */
async function roomWith(type: RoomType, others: Array<Partial<RoomMember> & { userId: string }> = [], extra: Partial<Room> = {}): Promise<string> {
  const roomId = `guard_${++rooms}`;
  const at = new Date().toISOString();
  const member = (m: Partial<RoomMember> & { userId: string }, role: Role): RoomMember => ({
    roomId, displayName: m.userId, role, joinedAt: at, isMuted: false, isBanned: false, ...m,
  });
  await store.createRoom({
    roomId, tenant: 'acme', name: roomId, description: '', type, createdBy: 'owner', createdAt: at, updatedAt: at,
    memberCount: 0, maxMembers: 100, lastActivity: at, settings: { ...DEFAULT_ROOM_SETTINGS }, isActive: true, tags: [], ...extra,
  }, [member({ userId: 'owner' }, 'owner'), ...others.map((m) => member(m, 'member'))]);
  return roomId;
}

/** What each check of the guard answers: 'ok' or the ChatError code it threw. */
async function verdicts(who: Principal, roomId: string) {
  const code = (p: Promise<unknown>) => p.then(() => 'ok', (err: unknown) => (err instanceof ChatError ? err.code : `not a ChatError: ${String(err)}`));
  return {
    reader: await code(guard.reader(who, roomId)),
    member: await code(guard.member(who, roomId)),
    poster: await code(guard.poster(who, roomId)),
    reactor: await code(guard.reactor(who, roomId)),
  };
}
const all = (code: string) => ({ reader: code, member: code, poster: code, reactor: code });

t.test('room guard - a room of another tenant is not_found, even for a user id that is a member there', async (t) => {
  const roomId = await roomWith('public', [{ userId: 'bob', role: 'admin' }]);
  t.same(await verdicts(as('bob'), roomId), all('ok'), 'in its own tenant bob may do everything');
  t.same(await verdicts(as('bob', 'globex'), roomId), all('not_found'));
  t.same(await verdicts(as('owner', 'globex'), roomId), all('not_found'), 'the owner id of another tenant is someone else');
  t.same(await verdicts(as('bob'), 'guard_no_such_room'), all('not_found'));
});

t.test('room guard - private, group and direct rooms are not_found to outsiders', async (t) => {
  for (const type of ['private', 'group', 'direct'] as const) {
    const roomId = await roomWith(type, [{ userId: 'bob' }]);
    t.same(await verdicts(as('carol'), roomId), all('not_found'), `${type}: an outsider learns nothing`);
    t.same(await verdicts(as('bob'), roomId), all('ok'), `${type}: a member may do everything`);
  }
});

t.test('room guard - a public room is read by anyone of the tenant; only members act in it', async (t) => {
  const roomId = await roomWith('public');
  t.same(await verdicts(as('carol'), roomId), { reader: 'ok', member: 'forbidden', poster: 'forbidden', reactor: 'forbidden' });
  const read = await guard.reader(as('carol'), roomId);
  t.equal(read.room.roomId, roomId);
  t.equal(read.member, undefined, 'a reader who is not a member has no membership');
});

t.test('room guard - a banned member cannot read a public room, and a private room looks absent to them', async (t) => {
  const pub = await roomWith('public', [{ userId: 'bob', isBanned: true }]);
  t.same(await verdicts(as('bob'), pub), all('forbidden'));
  const priv = await roomWith('private', [{ userId: 'bob', isBanned: true }]);
  t.same(await verdicts(as('bob'), priv), all('not_found'));
  const admin = await roomWith('public', [{ userId: 'bob', role: 'admin', isBanned: true }]);
  t.same(await verdicts(as('bob'), admin), all('forbidden'), 'a ban outweighs any role');
});

t.test('room guard - a muted member reads and acts as a member but neither posts nor reacts', async (t) => {
  const roomId = await roomWith('public', [{ userId: 'bob', isMuted: true }, { userId: 'mod', role: 'moderator', isMuted: true }]);
  t.same(await verdicts(as('bob'), roomId), { reader: 'ok', member: 'ok', poster: 'forbidden', reactor: 'forbidden' });
  t.same(await verdicts(as('mod'), roomId), { reader: 'ok', member: 'ok', poster: 'forbidden', reactor: 'forbidden' }, 'muting holds for moderators too');
  await t.rejects(guard.poster(as('bob'), roomId), { code: 'forbidden', message: /muted/ });
});

t.test('room guard - announcement rooms: the owner, admins and moderators post; members read and react', async (t) => {
  const roomId = await roomWith('announcement', [{ userId: 'adm', role: 'admin' }, { userId: 'mod', role: 'moderator' }, { userId: 'bob' }]);
  for (const userId of ['owner', 'adm', 'mod']) t.same(await verdicts(as(userId), roomId), all('ok'), `${userId} posts`);
  t.same(await verdicts(as('bob'), roomId), { reader: 'ok', member: 'ok', poster: 'forbidden', reactor: 'ok' });
  await t.rejects(guard.poster(as('bob'), roomId), { code: 'forbidden', message: /announcement/ });
  t.same(await verdicts(as('carol'), roomId), { reader: 'ok', member: 'forbidden', poster: 'forbidden', reactor: 'forbidden' }, 'announcement rooms are discoverable');
});

t.test('room guard - an archived room takes no new messages, from anyone', async (t) => {
  const roomId = await roomWith('public', [{ userId: 'bob' }], { isActive: false });
  // Archiving stops posting only (permissions.ts assertCanPost): reading, reacting and member actions go on.
  t.same(await verdicts(as('owner'), roomId), { reader: 'ok', member: 'ok', poster: 'forbidden', reactor: 'ok' });
  t.same(await verdicts(as('bob'), roomId), { reader: 'ok', member: 'ok', poster: 'forbidden', reactor: 'ok' });
  await t.rejects(guard.poster(as('owner'), roomId), { code: 'forbidden', message: /archived/ });
});

t.test('room guard - resolves with the room and the membership it checked', async (t) => {
  const roomId = await roomWith('private', [{ userId: 'bob', role: 'moderator', displayName: 'Bobby' }]);
  const { room, member } = await guard.poster(as('bob'), roomId);
  t.match(room, { roomId, tenant: 'acme', type: 'private' });
  t.match(member, { roomId, userId: 'bob', role: 'moderator', displayName: 'Bobby' });
});
