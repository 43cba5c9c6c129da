import t from 'tap';
import { startApiHarness } from '../test/support/api-harness.ts';

const h = await startApiHarness();
t.teardown(() => h.close());
const alice = h.as('alice');
const bob = h.as('bob');
const carol = h.as('carol');
const dave = h.as('dave');

t.test('api - rooms - create returns the seed shape and the creator owns the room', async (t) => {
  const r = await alice.post('/rooms', {
    name: 'Project Alpha Discussion', description: 'Private room for Project Alpha team', type: 'private', maxMembers: 25, allowInvites: true,
  });
  t.equal(r.status, 201);
  t.match(r.data, {
    name: 'Project Alpha Discussion', description: 'Private room for Project Alpha team', type: 'private',
    createdBy: 'alice', memberCount: 1, maxMembers: 25, isJoined: true, role: 'owner',
    settings: { allowInvites: true, maxMembers: 25 },
  });
  t.match(r.data.roomId, /^room_\d+$/);
  t.notOk('tenant' in r.data, 'the tenant is not shown');
  t.ok(Date.parse(r.data.createdAt) > 0);

  const named = await alice.post('/rooms', { name: 'General', type: 'public', roomId: 'general_rooms_1' });
  t.equal(named.status, 201);
  t.equal(named.data.roomId, 'general_rooms_1');
  const again = await bob.post('/rooms', { name: 'Other', type: 'public', roomId: 'general_rooms_1' });
  t.equal(again.status, 409);
  t.equal(again.error?.code, 'conflict');

  const invalid = await alice.post('/rooms', { name: '', type: 'public' });
  t.equal(invalid.status, 400);
  t.match(invalid.error?.message, /\/name/);
  const badType = await alice.post('/rooms', { name: 'x', type: 'secret' });
  t.equal(badType.status, 400);
  const badId = await alice.post('/rooms', { name: 'x', type: 'public', roomId: 'has.dot' });
  t.equal(badId.status, 400);

  const group = await alice.post('/rooms', { name: 'Big', type: 'group', maxMembers: 51 });
  t.equal(group.status, 400, 'group rooms hold at most 50');

  const direct = await alice.post('/rooms', { name: 'dm', type: 'direct', members: ['bob'] });
  t.equal(direct.status, 201);
  t.equal(direct.data.memberCount, 2);
  const sameDirect = await bob.post('/rooms', { name: 'dm', type: 'direct', members: [{ userId: 'alice' }] });
  t.equal(sameDirect.data.roomId, direct.data.roomId, 'the direct room between two people is reused');
});

t.test('api - rooms - get and update follow visibility and roles', async (t) => {
  const priv = (await alice.post('/rooms', { name: 'Secret', type: 'private', members: [{ userId: 'bob', displayName: 'Bobby' }] })).data;
  const got = await bob.get(`/rooms/${priv.roomId}`);
  t.equal(got.status, 200);
  t.match(got.data, { roomId: priv.roomId, isJoined: true, role: 'member', memberCount: 2 });

  const outsider = await carol.get(`/rooms/${priv.roomId}`);
  t.equal(outsider.status, 404, 'private rooms look absent to outsiders');
  t.equal(outsider.error?.code, 'not_found');
  t.equal((await alice.get('/rooms/no_such_room')).status, 404);

  const pub = (await alice.post('/rooms', { name: 'Lobby', type: 'public' })).data;
  const preview = await carol.get(`/rooms/${pub.roomId}`);
  t.match(preview.data, { isJoined: false, role: null });

  const updated = await alice.patch(`/rooms/${priv.roomId}`, { name: 'Renamed', tags: ['x'], settings: { enableAI: false } });
  t.equal(updated.status, 200);
  t.match(updated.data, { name: 'Renamed', tags: ['x'], settings: { enableAI: false, allowInvites: true }, role: 'owner' });
  t.equal((await bob.get(`/rooms/${priv.roomId}`)).data.name, 'Renamed');

  const byMember = await bob.patch(`/rooms/${priv.roomId}`, { name: 'Mine now' });
  t.equal(byMember.status, 403);
  t.equal(byMember.error?.code, 'forbidden');
  const byOutsider = await carol.patch(`/rooms/${priv.roomId}`, { name: 'Mine now' });
  t.equal(byOutsider.status, 404);
});

t.test('api - rooms - list pages by offset in every scope', async (t) => {
  const tenantA = h.as('erin', 'listing');
  const tenantB = h.as('fay', 'listing');
  const publicIds: string[] = [];
  for (let i = 0; i < 5; i++) {
    publicIds.push((await tenantA.post('/rooms', { name: `pub ${i}`, type: 'public' })).data.roomId);
  }
  const privateOfA = (await tenantA.post('/rooms', { name: 'a only', type: 'private' })).data.roomId;
  const shared = (await tenantA.post('/rooms', { name: 'with fay', type: 'group', members: ['fay'] })).data.roomId;
  await tenantB.post(`/rooms/${publicIds[0]}/join`);

  const collect = async (client: typeof tenantB, query: string, limit: number) => {
    const ids: string[] = [];
    let offset = 0;
    let total = -1;
    for (;;) {
      const r = await client.get(`/rooms?${query}&limit=${limit}&offset=${offset}`);
      t.equal(r.status, 200);
      total = r.data.pagination.total;
      ids.push(...r.data.rooms.map((room: any) => room.roomId));
      t.equal(r.data.pagination.hasMore, offset + r.data.rooms.length < total);
      if (!r.data.pagination.hasMore) break;
      offset += limit;
    }
    return { ids, total };
  };

  const discover = await collect(tenantB, 'scope=discover', 2);
  t.same([...discover.ids].sort(), [...publicIds].sort());
  t.equal(discover.total, 5);

  const joined = await collect(tenantB, 'scope=joined', 2);
  t.same([...joined.ids].sort(), [publicIds[0], shared].sort());

  const all = await collect(tenantB, 'scope=all', 2);
  t.same([...all.ids].sort(), [...publicIds, shared].sort(), 'all = joined + discoverable, each once');
  t.equal(all.total, 6);
  t.notOk(all.ids.includes(privateOfA));
  t.equal(new Set(all.ids).size, all.ids.length, 'no room twice across pages');

  const oneShot = await tenantB.get('/rooms?limit=100');
  t.same(oneShot.data.rooms.map((r: any) => r.roomId), all.ids, 'paging walks the same order as one big page');
  const flags = new Map(oneShot.data.rooms.map((r: any) => [r.roomId, r.isJoined]));
  t.equal(flags.get(publicIds[0]), true);
  t.equal(flags.get(publicIds[1]), false);
  t.equal(flags.get(shared), true);

  const groups = await tenantB.get('/rooms?type=group');
  t.same(groups.data.rooms.map((r: any) => r.roomId), [shared]);

  const aAll = await collect(tenantA, 'scope=all', 3);
  t.ok(aAll.ids.includes(privateOfA), 'the creator sees their private room');

  const otherTenant = await alice.get('/rooms?scope=discover&limit=100');
  t.notOk(otherTenant.data.rooms.some((r: any) => publicIds.includes(r.roomId)), 'tenants do not see each other');

  t.equal((await tenantB.get('/rooms?limit=101')).status, 400);
  t.equal((await tenantB.get('/rooms?scope=mine')).status, 400);
});

t.test('api - rooms - join and leave', async (t) => {
  const pub = (await alice.post('/rooms', { name: 'Open', type: 'public' })).data.roomId;
  const joined = await bob.post(`/rooms/${pub}/join`);
  t.equal(joined.status, 200);
  t.same(joined.data, { roomId: pub, joined: true, role: 'member', memberCount: 2 });
  const twice = await bob.post(`/rooms/${pub}/join`);
  t.equal(twice.status, 200, 'joining twice is harmless');
  t.equal((await bob.get(`/rooms/${pub}`)).data.memberCount, 2);

  const priv = (await alice.post('/rooms', { name: 'Closed', type: 'private' })).data.roomId;
  t.equal((await bob.post(`/rooms/${priv}/join`)).status, 404, 'private rooms are joined by invite only');

  const left = await bob.del(`/rooms/${pub}/leave`);
  t.same(left.data, { roomId: pub, left: true });
  t.equal((await bob.get(`/rooms/${pub}`)).data.isJoined, false);
  t.equal((await bob.del(`/rooms/${pub}/leave`)).status, 404);

  await bob.post(`/rooms/${pub}/join`);
  await alice.del(`/rooms/${pub}/leave`);
  t.equal((await bob.get(`/rooms/${pub}`)).data.role, 'owner', 'the owner leaving passes ownership on');
});

t.test('api - members - invite, kick, ban, mute and roles follow the rules', async (t) => {
  const room = (await alice.post('/rooms', { name: 'Team', type: 'private', allowInvites: false, members: ['bob'] })).data.roomId;
  const members = `/rooms/${room}/members`;

  const byMember = await bob.post(members, { userId: 'carol' });
  t.equal(byMember.status, 403, 'members cannot invite when invites are off');
  const invited = await alice.post(members, { userId: 'carol', displayName: 'Carol C' });
  t.equal(invited.status, 201);
  t.match(invited.data, { roomId: room, userId: 'carol', displayName: 'Carol C', role: 'member', isMuted: false, isBanned: false });
  await alice.post(members, { userId: 'dave' });

  const list = await carol.get(`${members}?limit=2`);
  t.equal(list.status, 200);
  t.equal(list.data.members.length, 2);
  t.same(list.data.pagination, { total: 4, limit: 2, offset: 0, hasMore: true });
  t.equal(list.data.members[0].isOnline, false);
  t.equal((await h.as('mallory').get(members)).status, 404);

  t.equal((await bob.del(`${members}/carol`)).status, 403, 'members cannot kick');
  const promoted = await alice.put(`${members}/bob/role`, { role: 'moderator' });
  t.equal(promoted.status, 200);
  t.equal(promoted.data.role, 'moderator');
  t.equal((await bob.put(`${members}/dave/role`, { role: 'moderator' })).status, 403, 'moderators cannot set roles');
  t.equal((await alice.put(`${members}/bob/role`, { role: 'owner' })).status, 403, 'ownership is never assigned');
  t.equal((await alice.put(`${members}/bob/role`, { role: 'king' })).status, 400);
  t.equal((await bob.del(`${members}/alice`)).status, 403, 'a moderator cannot act on the owner');

  const kicked = await bob.del(`${members}/carol`);
  t.equal(kicked.status, 200);
  t.same(kicked.data, { roomId: room, userId: 'carol', removed: true });
  t.equal((await carol.get(`/rooms/${room}`)).status, 404, 'a kicked member no longer sees the private room');
  t.equal((await bob.del(`${members}/carol`)).status, 404);

  const muted = await bob.post(`${members}/dave/mute`);
  t.equal(muted.data.isMuted, true);
  const mutedSend = await dave.post(`/rooms/${room}/messages`, { content: 'let me talk' });
  t.equal(mutedSend.status, 403);
  t.match(mutedSend.error?.message, /muted/);
  t.equal((await bob.del(`${members}/dave/mute`)).data.isMuted, false);
  t.equal((await dave.post(`/rooms/${room}/messages`, { content: 'thanks' })).status, 201);

  const banned = await bob.post(`${members}/dave/ban`);
  t.equal(banned.status, 200);
  t.equal(banned.data.isBanned, true);
  t.equal((await dave.get(`/rooms/${room}`)).status, 404);
  const reinvite = await alice.post(members, { userId: 'dave' });
  t.equal(reinvite.status, 403, 'a banned user is not re-invited until unbanned (issue 12: was 409)');
  t.equal(reinvite.error?.code, 'forbidden');
  const unbanned = await bob.del(`${members}/dave/ban`);
  t.equal(unbanned.data.isBanned, false);
  t.equal((await alice.post(members, { userId: 'dave' })).status, 201);

  const pub = (await alice.post('/rooms', { name: 'Town', type: 'public' })).data.roomId;
  await alice.post(`/rooms/${pub}/members/mallory/ban`);
  const bannedJoin = await h.as('mallory').post(`/rooms/${pub}/join`);
  t.equal(bannedJoin.status, 403, 'a ban holds for users who never joined');

  const direct = (await alice.post('/rooms', { name: 'dm', type: 'direct', members: ['carol'] })).data.roomId;
  t.equal((await alice.post(`/rooms/${direct}/members`, { userId: 'dave' })).status, 403, 'direct rooms stay two people');
});
