import t from 'tap';
import { ChatError } from '../protocol/errors.ts';
import { DEFAULT_ROOM_SETTINGS, type Role, type Room, type RoomMember, type RoomType } from './models.ts';
import { assertCanPost, assertCanModerate, assertCanSetRole, assertCanDelete, assertCanEdit, assertCanPin, assertCanSee, assertCanUpdateRoom } from './permissions.ts';

const room = (type: RoomType): Room => ({
  roomId: 'r', tenant: 't', name: 'n', description: '', type, createdBy: 'o', createdAt: '', updatedAt: '', memberCount: 2,
  maxMembers: 10, lastActivity: '', settings: { ...DEFAULT_ROOM_SETTINGS }, isActive: true, tags: [],
});
const member = (userId: string, role: Role, extra: Partial<RoomMember> = {}): RoomMember => ({
  roomId: 'r', userId, displayName: userId, role, joinedAt: '', isMuted: false, isBanned: false, ...extra,
});
const code = (fn: () => void) => { try { fn(); return 'ok'; } catch (e) { return (e as ChatError).code; } };

t.test('permissions - posting', async (t) => {
  t.equal(code(() => assertCanPost(room('public'), member('a', 'member'))), 'ok');
  t.equal(code(() => assertCanPost(room('public'), undefined)), 'forbidden', 'not a member of a public room');
  t.equal(code(() => assertCanPost(room('private'), undefined)), 'not_found', 'private rooms are invisible');
  t.equal(code(() => assertCanPost(room('public'), member('a', 'member', { isMuted: true }))), 'forbidden');
  t.equal(code(() => assertCanPost(room('public'), member('a', 'admin', { isBanned: true }))), 'forbidden');
  t.equal(code(() => assertCanPost(room('announcement'), member('a', 'member'))), 'forbidden');
  t.equal(code(() => assertCanPost(room('announcement'), member('a', 'moderator'))), 'ok');
});

t.test('permissions - moderation goes strictly down the ranks', async (t) => {
  const r = room('public');
  t.equal(code(() => assertCanModerate(r, member('m', 'moderator'), member('x', 'member'))), 'ok');
  t.equal(code(() => assertCanModerate(r, member('m', 'moderator'), member('y', 'moderator'))), 'forbidden');
  t.equal(code(() => assertCanModerate(r, member('m', 'member'), member('x', 'member'))), 'forbidden');
  t.equal(code(() => assertCanModerate(r, member('o', 'owner'), member('o', 'owner'))), 'forbidden', 'not yourself');
  t.equal(code(() => assertCanModerate(room('direct'), member('o', 'owner'), member('x', 'member'))), 'forbidden');
});

t.test('permissions - roles', async (t) => {
  const r = room('public');
  t.equal(code(() => assertCanSetRole(r, member('o', 'owner'), member('x', 'member'), 'admin')), 'ok');
  t.equal(code(() => assertCanSetRole(r, member('a', 'admin'), member('x', 'member'), 'admin')), 'forbidden', 'admins cannot make admins');
  t.equal(code(() => assertCanSetRole(r, member('a', 'admin'), member('x', 'member'), 'moderator')), 'ok');
  t.equal(code(() => assertCanSetRole(r, member('o', 'owner'), member('x', 'member'), 'owner')), 'forbidden');
  t.equal(code(() => assertCanSetRole(r, member('m', 'moderator'), member('x', 'member'), 'moderator')), 'forbidden');
});

t.test('permissions - messages, pins, settings, visibility', async (t) => {
  t.equal(code(() => assertCanEdit('a', member('b', 'owner'))), 'forbidden', 'even the owner edits only their own');
  t.equal(code(() => assertCanEdit('a', member('a', 'member'))), 'ok');
  t.equal(code(() => assertCanDelete('a', member('b', 'moderator'))), 'ok');
  t.equal(code(() => assertCanDelete('a', member('b', 'member'))), 'forbidden');
  t.equal(code(() => assertCanPin(room('public'), member('a', 'member'))), 'forbidden');
  t.equal(code(() => assertCanPin(room('group'), member('a', 'member'))), 'ok');
  t.equal(code(() => assertCanUpdateRoom(room('public'), member('a', 'moderator'))), 'forbidden');
  t.equal(code(() => assertCanUpdateRoom(room('public'), member('a', 'admin'))), 'ok');
  t.equal(code(() => assertCanSee(room('public'), undefined)), 'ok');
  t.equal(code(() => assertCanSee(room('group'), undefined)), 'not_found');
});
