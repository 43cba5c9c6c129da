import t from 'tap';
import { startApiHarness } from '../test/support/api-harness.ts';

/**
 * Issue 12, finding 8: a user named in a REST body, path or query is the user its canonical id
 * names (as in tokens: shared/domain/identity.ts), and names that hide or reorder text are refused.
 */
const h = await startApiHarness();
t.teardown(() => h.close());
const alice = h.as('alice');
const path = (s: string) => encodeURIComponent(s);

t.test('api - identity - room names: NFC, something visible, no bidi controls', async (t) => {
  for (const name of ['\u200b\u200b\u200b', '\u200b \u3164', 'evil\u202etxt.exe']) {
    const r = await alice.post('/rooms', { name, type: 'public' });
    t.equal(r.status, 400, JSON.stringify(name));
    t.equal(r.error?.code, 'bad_request');
  }
  const room = await alice.post('/rooms', { name: 'Cafe\u0301', type: 'public' });
  t.equal(room.data.name, 'Café');
  t.equal((await alice.patch(`/rooms/${room.data.roomId}`, { name: '\u2066\u2069' })).status, 400, 'a rename too');
});

t.test('api - identity - invites, bans, kicks and direct rooms resolve look-alike ids to one user, and refuse ids that hide characters', async (t) => {
  const room = (await alice.post('/rooms', { name: 'Team', type: 'private' })).data.roomId as string;
  const members = `/rooms/${room}/members`;
  const invited = await alice.post(members, { userId: 'ａｄｍｉｎ' });
  t.equal(invited.status, 201);
  t.equal(invited.data.userId, 'admin', 'ａｄｍｉｎ is admin');
  t.equal((await alice.post(members, { userId: 'admin' })).data.joinedAt, invited.data.joinedAt, 'inviting admin again finds the same membership');
  for (const userId of ['adm\u200bin', 'admin\u202e', 'ad min']) {
    const r = await alice.post(members, { userId });
    t.equal(r.status, 400, `invite ${JSON.stringify(userId)}`);
    t.equal(r.error?.code, 'bad_request');
    t.equal((await alice.post(`${members}/${path(userId)}/ban`)).status, 400, `ban ${JSON.stringify(userId)}`);
  }
  t.equal((await alice.put(`${members}/${path('ａｄｍｉｎ')}/role`, { role: 'moderator' })).data.role, 'moderator');
  const kicked = await alice.del(`${members}/${path('ａｄｍｉｎ')}`);
  t.same(kicked.data, { roomId: room, userId: 'admin', removed: true });
  const banned = await alice.post(`${members}/${path('ｍａｌｌｏｒｙ')}/ban`);
  t.equal(banned.data.userId, 'mallory');
  t.equal((await alice.post(members, { userId: 'mallory' })).status, 403, 'the ban holds for mallory');

  const dm = await alice.post('/rooms', { name: 'dm', type: 'direct', members: ['ｂｏｂ'] });
  t.equal(dm.status, 201);
  t.equal((await alice.post('/rooms', { name: 'dm', type: 'direct', members: ['bob'] })).data.roomId, dm.data.roomId, 'one direct room with bob');
  t.equal((await alice.post('/rooms', { name: 'dm', type: 'direct', members: ['b\u200bob'] })).status, 400);
});

t.test('api - identity - presence queries and mentions name users by canonical id', async (t) => {
  const presence = await alice.get(`/presence?userIds=${path('ｂｏｂ,bob')}`);
  t.equal(presence.status, 200);
  t.same(presence.data.presence.map((p: any) => p.userId), ['bob']);
  t.equal((await alice.get(`/presence?userIds=${path('b\u200bob')}`)).status, 400);

  const room = (await alice.post('/rooms', { name: 'Lobby', type: 'public' })).data.roomId as string;
  const sent = await alice.post(`/rooms/${room}/messages`, { content: 'hi', mentions: ['ｂｏｂ'] });
  t.same(sent.data.message.mentions, ['bob']);
  t.equal((await alice.post(`/rooms/${room}/messages`, { content: 'hi', mentions: ['b\u200bob'] })).status, 400);
});
