import t from 'tap';
import { MAX_MESSAGE_LENGTH, eventually, historyOf, startApiHarness, type Client } from '../test/support/api-harness.ts';
import { roomKey } from '../shared/domain/index.ts';

const h = await startApiHarness();
t.teardown(() => h.close());
const alice = h.as('alice');
const bob = h.as('bob');
const carol = h.as('carol');

async function publicRoom(owner: Client, ...joiners: Client[]): Promise<string> {
  const roomId = (await owner.post('/rooms', { name: 'room', type: 'public' })).data.roomId as string;
  for (const c of joiners) await c.post(`/rooms/${roomId}/join`);
  return roomId;
}

async function messageOf(client: Client, roomId: string, messageId: string, ready: (m: any) => boolean): Promise<any> {
  return eventually(async () => {
    const r = await client.get(`/rooms/${roomId}/messages/${messageId}`);
    return r.status === 200 && ready(r.data) ? r.data : undefined;
  }, `message ${messageId} to change`);
}

t.test('api - messages - send, then history newest first, paged both ways', async (t) => {
  const room = await publicRoom(alice, bob);
  const sent: any[] = [];
  for (let i = 0; i < 7; i++) {
    const r = await (i % 2 ? bob : alice).post(`/rooms/${room}/messages`, i === 3 ? { content: `m${i}`, messageType: 'text' } : { content: `m${i}`, type: 'text' });
    t.equal(r.status, 201);
    sent.push(r.data);
  }
  t.match(sent[0], { duplicate: false, message: { roomId: room, authorId: 'alice', authorName: 'Alice', content: 'm0', type: 'text', isEdited: false } });
  t.ok(sent.every((s, i) => i === 0 || s.seq > sent[i - 1].seq), 'stream sequences grow');
  const ids = sent.map((s) => s.message.messageId as string);

  const all = await historyOf(alice, room, 7);
  t.same(all.map((m) => m.messageId), [...ids].reverse());

  const p1 = await alice.get(`/rooms/${room}/messages?limit=3`);
  t.same(p1.data.messages.map((m: any) => m.content), ['m6', 'm5', 'm4']);
  t.same(p1.data.pagination, { hasMore: true, before: ids[4], after: ids[6], limit: 3 });
  const p2 = await alice.get(`/rooms/${room}/messages?limit=3&before=${p1.data.pagination.before}`);
  t.same(p2.data.messages.map((m: any) => m.content), ['m3', 'm2', 'm1']);
  t.equal(p2.data.pagination.hasMore, true);
  const p3 = await alice.get(`/rooms/${room}/messages?limit=3&before=${p2.data.pagination.before}`);
  t.same(p3.data.messages.map((m: any) => m.content), ['m0']);
  t.equal(p3.data.pagination.hasMore, false);

  const f1 = await alice.get(`/rooms/${room}/messages?limit=3&after=${ids[0]}`);
  t.same(f1.data.messages.map((m: any) => m.content), ['m3', 'm2', 'm1'], 'forward pages are the oldest after the cursor, newest first');
  t.same(f1.data.pagination, { hasMore: true, before: ids[1], after: ids[3], limit: 3 });
  const f2 = await alice.get(`/rooms/${room}/messages?limit=3&after=${f1.data.pagination.after}`);
  t.same(f2.data.messages.map((m: any) => m.content), ['m6', 'm5', 'm4']);
  t.equal(f2.data.pagination.hasMore, false);
  const f3 = await alice.get(`/rooms/${room}/messages?limit=3&after=${ids[6]}`);
  t.same(f3.data, { messages: [], pagination: { hasMore: false, before: null, after: null, limit: 3 } });

  const one = await bob.get(`/rooms/${room}/messages/${ids[2]}`);
  t.equal(one.data.content, 'm2');
  t.equal((await bob.get(`/rooms/${room}/messages/123456789`)).status, 404);
  t.equal((await bob.get(`/rooms/${room}/messages?before=abc`)).status, 400);
  t.equal((await bob.get(`/rooms/${room}/messages?limit=0`)).status, 400);
});

t.test('api - messages - who may read history', async (t) => {
  const pub = await publicRoom(alice);
  await alice.post(`/rooms/${pub}/messages`, { content: 'hello world' });
  const preview = await historyOf(carol, pub, 1);
  t.equal(preview[0].content, 'hello world', 'public rooms are readable before joining');

  const priv = (await alice.post('/rooms', { name: 'p', type: 'private', members: ['bob'] })).data.roomId;
  await alice.post(`/rooms/${priv}/messages`, { content: 'secret' });
  t.equal((await historyOf(bob, priv, 1))[0].content, 'secret');
  const outsider = await carol.get(`/rooms/${priv}/messages`);
  t.equal(outsider.status, 404);
  t.equal((await carol.post(`/rooms/${priv}/messages`, { content: 'let me in' })).status, 404);

  await alice.post(`/rooms/${pub}/members/carol/ban`);
  t.equal((await carol.get(`/rooms/${pub}/messages`)).status, 403, 'banned users cannot read even public rooms');
  t.equal((await carol.post(`/rooms/${pub}/messages`, { content: 'hi' })).status, 403, 'non-members cannot post');
});

t.test('api - messages - a retried clientMsgId returns the first message', async (t) => {
  const room = await publicRoom(alice);
  const first = await alice.post(`/rooms/${room}/messages`, { content: 'once', clientMsgId: 'c-1' });
  t.equal(first.status, 201);
  t.equal(first.data.duplicate, false);
  const retry = await alice.post(`/rooms/${room}/messages`, { content: 'once', clientMsgId: 'c-1' });
  t.equal(retry.status, 200);
  t.equal(retry.data.duplicate, true);
  t.equal(retry.data.message.messageId, first.data.message.messageId);
  t.equal(retry.data.seq, first.data.seq);
  await alice.post(`/rooms/${room}/messages`, { content: 'marker' });
  const history = await historyOf(alice, room, 2);
  t.same(history.map((m) => m.content), ['marker', 'once'], 'stored once');
});

t.test('api - messages - edit, delete and posting rules', async (t) => {
  const room = await publicRoom(alice, bob);
  const mine = (await alice.post(`/rooms/${room}/messages`, { content: 'draft' })).data.message.messageId;
  await historyOf(alice, room, 1);

  const edited = await alice.patch(`/rooms/${room}/messages/${mine}`, { content: 'final' });
  t.equal(edited.status, 200);
  t.match(edited.data, { roomId: room, messageId: mine, content: 'final' });
  const after = await messageOf(bob, room, mine, (m) => m.isEdited);
  t.equal(after.content, 'final');

  const othersEdit = await bob.patch(`/rooms/${room}/messages/${mine}`, { content: 'hijack' });
  t.equal(othersEdit.status, 403);
  t.equal(othersEdit.error?.code, 'forbidden');
  t.equal((await bob.del(`/rooms/${room}/messages/${mine}`)).status, 403, 'members delete only their own messages');

  const deleted = await alice.del(`/rooms/${room}/messages/${mine}`);
  t.equal(deleted.status, 200);
  t.equal(deleted.data.deleted, true);
  const gone = await messageOf(bob, room, mine, (m) => m.isDeleted);
  t.equal(gone.content, '');

  const tooLong = await alice.post(`/rooms/${room}/messages`, { content: 'x'.repeat(MAX_MESSAGE_LENGTH + 1) });
  t.equal(tooLong.status, 413);
  t.equal(tooLong.error?.code, 'too_large');
  t.equal((await alice.post(`/rooms/${room}/messages`, { content: 'x'.repeat(MAX_MESSAGE_LENGTH) })).status, 201);
  t.equal((await alice.post(`/rooms/${room}/messages`, { content: '   ' })).status, 400, 'empty content');
  t.equal((await alice.post(`/rooms/${room}/messages`, { content: 'hi', type: 'system' })).status, 403, 'clients cannot send system messages');
  t.equal((await alice.post(`/rooms/${room}/messages`, { content: 'pic', type: 'image' })).status, 400, 'an image needs an attachment');
  const withImage = await alice.post(`/rooms/${room}/messages`, {
    content: 'pic', type: 'image', attachments: [{ id: 'a1', type: 'image', url: 'https://cdn.example/a.png', mimeType: 'image/png' }],
  });
  t.equal(withImage.status, 201);
  t.equal(withImage.data.message.attachments[0].url, 'https://cdn.example/a.png');
  const reply = await bob.post(`/rooms/${room}/messages`, { content: '@alice nice', replyTo: withImage.data.message.messageId });
  t.equal(reply.data.message.replyTo, withImage.data.message.messageId);
  t.same(reply.data.message.mentions, ['alice']);
  t.equal((await bob.post(`/rooms/${room}/messages`, { content: 'x', replyTo: '999' })).status, 404, 'replies need an existing message');

  const news = (await alice.post('/rooms', { name: 'News', type: 'announcement' })).data.roomId;
  await bob.post(`/rooms/${news}/join`);
  const memberPost = await bob.post(`/rooms/${news}/messages`, { content: 'me too' });
  t.equal(memberPost.status, 403);
  t.match(memberPost.error?.message, /announcement/);
  t.equal((await alice.post(`/rooms/${news}/messages`, { content: 'release 1.0' })).status, 201);
});

t.test('api - reactions - add and remove, with the emoji percent-encoded in the path', async (t) => {
  const room = await publicRoom(alice, bob);
  const id = (await alice.post(`/rooms/${room}/messages`, { content: 'react to me' })).data.message.messageId;
  await historyOf(alice, room, 1);
  const added = await bob.post(`/rooms/${room}/messages/${id}/reactions`, { emoji: '👍' });
  t.equal(added.status, 200);
  t.match(added.data, { roomId: room, messageId: id, emoji: '👍', action: 'add' });
  await carol.post(`/rooms/${room}/join`);
  await carol.post(`/rooms/${room}/messages/${id}/reactions`, { emoji: '👍' });
  const both = await messageOf(alice, room, id, (m) => m.reactions['👍']?.length === 2);
  t.same(both.reactions['👍'], ['bob', 'carol']);

  const removed = await bob.del(`/rooms/${room}/messages/${id}/reactions/${encodeURIComponent('👍')}`);
  t.equal(removed.status, 200);
  t.match(removed.data, { emoji: '👍', action: 'remove' });
  const one = await messageOf(alice, room, id, (m) => m.reactions['👍']?.length === 1);
  t.same(one.reactions['👍'], ['carol']);
  await alice.post(`/rooms/${room}/messages/${id}/reactions`, { emoji: '🎉' });
  await messageOf(alice, room, id, (m) => m.reactions['🎉']?.length === 1);
  const notMine = await bob.del(`/rooms/${room}/messages/${id}/reactions/${encodeURIComponent('🎉')}`);
  t.equal(notMine.status, 404, 'the owner\'s reaction is not bob\'s to remove (issue 12: was 200)');
  t.equal(notMine.error?.code, 'not_found');
  t.same((await messageOf(alice, room, id, () => true)).reactions['🎉'], ['alice'], 'the owner\'s reaction stays');

  t.equal((await h.as('zed').post(`/rooms/${room}/messages/${id}/reactions`, { emoji: '🎉' })).status, 403, 'non-members cannot react');
  t.equal((await bob.post(`/rooms/${room}/messages/${id}/reactions`, { emoji: '' })).status, 400);
});

t.test('api - pins - moderators pin, members cannot; pins are listed', async (t) => {
  const room = await publicRoom(alice, bob);
  const id = (await bob.post(`/rooms/${room}/messages`, { content: 'rules: be nice' })).data.message.messageId;
  await historyOf(alice, room, 1);
  t.equal((await bob.post(`/rooms/${room}/messages/${id}/pin`)).status, 403);
  const pinned = await alice.post(`/rooms/${room}/messages/${id}/pin`);
  t.match(pinned.data, { roomId: room, messageId: id, pinned: true, seq: Number });
  const pins = await eventually(async () => {
    const r = await bob.get(`/rooms/${room}/pins`);
    return r.data.messages.length ? r.data.messages : undefined;
  }, 'the pin');
  t.same(pins.map((m: any) => [m.messageId, m.isPinned]), [[id, true]]);
  await alice.del(`/rooms/${room}/messages/${id}/pin`);
  await eventually(async () => ((await bob.get(`/rooms/${room}/pins`)).data.messages.length === 0 ? true : undefined), 'the unpin');

  const group = (await alice.post('/rooms', { name: 'g', type: 'group', members: ['bob'] })).data.roomId;
  const gid = (await alice.post(`/rooms/${group}/messages`, { content: 'pin me' })).data.message.messageId;
  await historyOf(alice, group, 1);
  t.equal((await bob.post(`/rooms/${group}/messages/${gid}/pin`)).status, 200, 'anyone pins in a group room');
});

t.test('api - threads - replies sit under their root, not in the main timeline', async (t) => {
  const room = await publicRoom(alice, bob);
  const root = (await alice.post(`/rooms/${room}/messages`, { content: 'thread root' })).data.message.messageId;
  await historyOf(alice, room, 1);
  for (let i = 0; i < 3; i++) {
    const r = await bob.post(`/rooms/${room}/threads/${root}`, { content: `reply ${i}`, clientMsgId: `r${i}` });
    t.equal(r.status, 201);
    t.equal(r.data.message.threadId, root);
  }
  const viaMessages = await bob.post(`/rooms/${room}/messages`, { content: 'reply 3', threadId: root });
  t.equal(viaMessages.data.message.threadId, root);
  await alice.post(`/rooms/${room}/messages`, { content: 'main 2' });

  const thread = await eventually(async () => {
    const r = await alice.get(`/rooms/${room}/threads/${root}?limit=3`);
    return r.data.replies.length === 3 && r.data.pagination.hasMore ? r.data : undefined;
  }, 'thread replies');
  t.equal(thread.root.content, 'thread root');
  t.same(thread.replies.map((m: any) => m.content), ['reply 3', 'reply 2', 'reply 1']);
  const older = await alice.get(`/rooms/${room}/threads/${root}?limit=3&before=${thread.pagination.before}`);
  t.same(older.data.replies.map((m: any) => m.content), ['reply 0']);

  const main = await historyOf(alice, room, 2);
  t.same(main.map((m) => m.content), ['main 2', 'thread root'], 'the main timeline has no replies');
  t.equal((await alice.get(`/rooms/${room}/threads/424242`)).status, 404);
  t.equal((await bob.post(`/rooms/${room}/threads/424242`, { content: 'x' })).status, 404);
});

t.test('api - read state - unread counts follow read marks; direct rooms report status', async (t) => {
  const room = await publicRoom(alice, bob);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await alice.post(`/rooms/${room}/messages`, { content: `n${i}` })).data.message.messageId);
  await historyOf(bob, room, 3);
  // history shows a message before the persister wrote it; unread counts are counted in the store
  await eventually(async () => ((await h.store.history(roomKey('acme', room), { limit: 10 })).length === 3 ? true : undefined), 'the persister to write them');
  const unreadOf = async (client: Client) => (await client.get('/rooms?scope=joined&limit=100')).data.rooms.find((r: any) => r.roomId === room).unreadCount;
  t.equal(await unreadOf(bob), 3);
  t.equal(await unreadOf(alice), 0, 'your own messages are not unread');

  const read = await bob.post(`/rooms/${room}/read`, { messageId: ids[1] });
  t.equal(read.status, 200);
  t.match(read.data, { roomId: room, messageId: ids[1] });
  t.equal(await eventually(async () => ((await unreadOf(bob)) === 1 ? 1 : undefined), 'unread to drop'), 1);
  await bob.post(`/rooms/${room}/read`, { messageId: ids[0] });
  await new Promise((r) => setTimeout(r, 100));
  t.equal(await unreadOf(bob), 1, 'read marks do not move backwards');
  t.equal((await carol.post(`/rooms/${room}/read`, { messageId: ids[2] })).status, 403, 'only members mark read');
  t.equal((await bob.post(`/rooms/${room}/read`, { messageId: '99999999999999999999' })).status, 400, 'ids past int64 never reach the stream');
  t.equal((await bob.post(`/rooms/${room}/read`, { messageId: 'abc' })).status, 400);

  const notJoined = (await carol.get('/rooms?scope=discover&limit=100')).data.rooms.find((r: any) => r.roomId === room);
  t.same([notJoined.isJoined, notJoined.unreadCount], [false, 0]);

  const dm = (await alice.post('/rooms', { name: 'dm', type: 'direct', members: ['carol'] })).data.roomId;
  const dmId = (await alice.post(`/rooms/${dm}/messages`, { content: 'hey carol' })).data.message.messageId;
  await historyOf(alice, dm, 1);
  const sent = await alice.get(`/rooms/${dm}/messages/${dmId}/status`);
  t.same(sent.data, { roomId: dm, messageId: dmId, statuses: [{ userId: 'carol', status: 'sent' }] });
  await carol.post(`/rooms/${dm}/read`, { messageId: dmId });
  const seen = await eventually(async () => {
    const r = await alice.get(`/rooms/${dm}/messages/${dmId}/status`);
    return r.data.statuses[0]?.status === 'read' ? r.data.statuses[0] : undefined;
  }, 'read status');
  t.equal(seen.userId, 'carol');
  t.ok(Date.parse(seen.readAt) > 0);
  t.equal((await bob.get(`/rooms/${dm}/messages/${dmId}/status`)).status, 404, 'outsiders do not see direct rooms');
});
