import t from 'tap';
import { startApiHarness, type Client } from '../test/support/api-harness.ts';
import { ChatRest } from '../shared/client/index.ts';

const h = await startApiHarness();
t.teardown(() => h.close());
const alice = h.as('alice');
const bob = h.as('bob');
const carol = h.as('carol');

const openMatch = (who: Client, matchId: string, other: string) =>
  who.post('/rooms', { name: 'Match', type: 'direct', matchId, members: [other] });

/** The ids of the caller's room list (`query` without the leading `?`). */
async function listed(who: Client, query = ''): Promise<string[]> {
  const r = await who.get(`/rooms${query ? `?${query}` : ''}`);
  if (r.status !== 200) throw new Error(`GET /rooms?${query}: ${r.status} ${JSON.stringify(r.body)}`);
  return (r.data.rooms as Array<{ roomId: string }>).map((room) => room.roomId);
}

t.test('api - match rooms - the flow of seed 004: one room per match, archived per user', async (t) => {
  const first = await openMatch(alice, 'match-0001', 'bob');
  t.equal(first.status, 201, 'the first call creates the room');
  t.match(first.data, { type: 'direct', matchId: 'match-0001', memberCount: 2, isJoined: true, role: 'member', isArchived: false });
  const roomId = first.data.roomId as string;

  const again = await openMatch(alice, 'match-0001', 'bob');
  t.equal(again.status, 200, 'a later call returns the room');
  t.equal(again.data.roomId, roomId);
  const fromBob = await openMatch(bob, 'match-0001', 'alice');
  t.equal(fromBob.status, 200, 'from either member');
  t.match(fromBob.data, { roomId, matchId: 'match-0001', memberCount: 2, isJoined: true });

  t.ok((await listed(alice)).includes(roomId), 'alice lists it');
  t.ok((await listed(bob, 'scope=joined')).includes(roomId), 'bob lists it');

  const archived = await alice.post(`/rooms/${roomId}/archive`);
  t.equal(archived.status, 200);
  t.match(archived.data, { roomId, archived: true });
  t.ok(Date.parse(archived.data.archivedAt) > 0, 'with the time');
  const twice = await alice.post(`/rooms/${roomId}/archive`);
  t.strictSame(twice.data, archived.data, 'archiving again changes nothing');

  t.notOk((await listed(alice)).includes(roomId), 'alice\'s list hides it');
  t.notOk((await listed(alice, 'scope=joined')).includes(roomId), 'whatever the scope');
  const onlyArchived = await alice.get('/rooms?archived=true');
  t.strictSame(onlyArchived.data.rooms.map((r: { roomId: string }) => r.roomId), [roomId], '?archived=true lists only it');
  t.match(onlyArchived.data.rooms[0], { isArchived: true, matchId: 'match-0001' });
  t.equal(onlyArchived.data.pagination.total, 1);
  t.ok((await listed(bob)).includes(roomId), 'bob still sees it');
  t.strictSame(await listed(bob, 'archived=true'), [], 'bob archived nothing');
  t.match((await alice.get(`/rooms/${roomId}`)).data, { roomId, isArchived: true }, 'the room says alice archived it');
  t.match((await bob.get(`/rooms/${roomId}`)).data, { roomId, isArchived: false }, 'and that bob did not');
  t.equal((await openMatch(alice, 'match-0001', 'bob')).data.isArchived, true, 'opening the match again does not unarchive it');

  const restored = await alice.post(`/rooms/${roomId}/unarchive`);
  t.equal(restored.status, 200);
  t.strictSame(restored.data, { roomId, archived: false, archivedAt: null });
  t.ok((await listed(alice)).includes(roomId), 'unarchive brings it back');
  t.strictSame(await listed(alice, 'archived=true'), []);
  t.strictSame((await alice.post(`/rooms/${roomId}/unarchive`)).data, restored.data, 'unarchiving again changes nothing');

  // someone outside the match
  const missing = await carol.post('/rooms/no_such_room/archive');
  t.equal(missing.status, 404);
  for (const path of [`/rooms/${roomId}/archive`, `/rooms/${roomId}/unarchive`]) {
    const refused = await carol.post(path);
    t.equal(refused.status, 404, `${path}: a non-member gets the missing-room answer`);
    t.strictSame(refused.error, { ...missing.error, message: missing.error!.message.replace('no_such_room', roomId) });
  }
  t.equal((await carol.get(`/rooms/${roomId}`)).status, 404, 'nor can they read it');
  const taken = await openMatch(carol, 'match-0001', 'alice');
  t.equal(taken.status, 409, 'another pair cannot open the match');
  t.equal(taken.error?.code, 'conflict');
  t.notOk(JSON.stringify(taken.body).includes(roomId), 'and is not told its room');
  t.equal((await openMatch(alice, 'match-0001', 'carol')).status, 409, 'nor can a member name someone else');
  t.notOk((await listed(carol)).includes(roomId));
  t.strictSame(await listed(carol, 'archived=true'), []);
});

t.test('api - match rooms - simultaneous first calls make one room', async (t) => {
  const replies = await Promise.all([
    openMatch(alice, 'match-race', 'bob'), openMatch(bob, 'match-race', 'alice'),
    openMatch(alice, 'match-race', 'bob'), openMatch(bob, 'match-race', 'alice'),
  ]);
  t.strictSame(replies.map((r) => r.status).sort(), [200, 200, 200, 201], 'one created it, the others found it');
  const ids = new Set(replies.map((r) => r.data.roomId));
  t.equal(ids.size, 1, 'all got the same room');
  const mine = await alice.get('/rooms?scope=joined&type=direct&limit=100');
  t.equal(mine.data.rooms.filter((r: { matchId?: string }) => r.matchId === 'match-race').length, 1, 'one room exists for the match');
});

t.test('api - match rooms - one room per match within a tenant', async (t) => {
  const acme = await openMatch(alice, 'match-tenant', 'bob');
  const other = await openMatch(h.as('alice', 'globex'), 'match-tenant', 'bob');
  t.equal(acme.status, 201);
  t.equal(other.status, 201, 'another tenant\'s match of the same id is another match');
  t.equal((await h.as('bob', 'globex').get(`/rooms/${other.data.roomId}`)).data.matchId, 'match-tenant');
  t.equal((await h.as('bob', 'globex').get(`/rooms/${acme.data.roomId}`)).status, 404, 'each tenant sees its own');
});

t.test('api - match rooms - bad input gets 400 bad_request', async (t) => {
  for (const matchId of ['', 'has space', '-leading', 'a/b', 'x'.repeat(129), 42]) {
    const r = await alice.post('/rooms', { name: 'Match', type: 'direct', matchId, members: ['bob'] });
    t.equal(r.status, 400, `matchId ${JSON.stringify(matchId)}`);
    t.equal(r.error?.code, 'bad_request');
  }
  const notDirect = await alice.post('/rooms', { name: 'Match', type: 'group', matchId: 'match-g', members: ['bob'] });
  t.equal(notDirect.status, 400, 'a match room is a direct room');
  t.equal(notDirect.error?.code, 'bad_request');
  const crowd = await alice.post('/rooms', { name: 'Match', type: 'direct', matchId: 'match-c', members: ['bob', 'carol'] });
  t.equal(crowd.status, 400, 'with exactly one other person');
  t.equal((await alice.post('/rooms', { name: 'Match', type: 'direct', matchId: 'match-c' })).status, 400);
  t.equal((await openMatch(alice, 'match-g', 'bob')).status, 201, 'the refused calls claimed nothing');
  t.equal((await alice.get('/rooms?archived=maybe')).status, 400, 'archived is true or false');
  t.equal((await alice.post('/rooms/has.dot/archive')).status, 400, 'a malformed room id');
});

t.test('api - match rooms - the SDK opens, archives and lists match rooms', async (t) => {
  const sdk = (user: string) => new ChatRest({ baseUrl: h.base, token: () => h.token(user) });
  const [ann, ben] = [sdk('ann'), sdk('ben')];
  const room = await ann.createRoom({ name: 'Match', type: 'direct', matchId: 'match-sdk', members: ['ben'] });
  t.equal((await ben.createRoom({ name: 'Match', type: 'direct', matchId: 'match-sdk', members: ['ann'] })).roomId, room.roomId);
  const state = await ann.archiveRoom(room.roomId);
  t.match(state, { roomId: room.roomId, archived: true });
  t.strictSame((await ann.listRooms({ scope: 'joined' })).rooms.map((r) => r.roomId), [], 'hidden from ann');
  t.strictSame((await ann.listRooms({ archived: true })).rooms.map((r) => [r.roomId, r.isArchived]), [[room.roomId, true]]);
  t.strictSame((await ben.listRooms({ scope: 'joined' })).rooms.map((r) => [r.roomId, r.isArchived]), [[room.roomId, false]], 'not from ben');
  t.strictSame(await ann.unarchiveRoom(room.roomId), { roomId: room.roomId, archived: false, archivedAt: null });
  await t.rejects(sdk('cid').archiveRoom(room.roomId), { code: 'not_found' });
});
