import t from 'tap';
import { eventually, startApiHarness, type Client } from '../test/support/api-harness.ts';
import { roomKey } from '../shared/domain/index.ts';

/**
 * REST history reads its own writes: every read below follows the write it checks at once, with
 * no wait for the persister, and shows it; and the reader check of a watched room follows
 * membership changes at once.
 */
const h = await startApiHarness();
t.teardown(() => h.close());
const alice = h.as('alice');
const bob = h.as('bob');
const carol = h.as('carol');

async function room(owner: Client, ...joiners: Client[]): Promise<string> {
  const roomId = (await owner.post('/rooms', { name: 'room', type: 'public' })).data.roomId as string;
  for (const c of joiners) await c.post(`/rooms/${roomId}/join`);
  return roomId;
}

const newest = async (c: Client, roomId: string) => (await c.get(`/rooms/${roomId}/messages?limit=10`)).data.messages as any[];

t.test('api - history - sends, edits, deletes, reactions and pins are in history as soon as they are acknowledged', async (t) => {
  const r = await room(alice, bob);
  t.strictSame(await newest(bob, r), [], 'the room is watched from this read on');
  const first = (await alice.post(`/rooms/${r}/messages`, { content: 'first' })).data.message;
  t.strictSame((await newest(bob, r)).map((m) => m.content), ['first']);
  const second = (await bob.post(`/rooms/${r}/messages`, { content: 'second' })).data.message;
  t.strictSame((await newest(alice, r)).map((m) => m.content), ['second', 'first']);

  t.equal((await alice.patch(`/rooms/${r}/messages/${first.messageId}`, { content: 'first, edited' })).status, 200);
  const edited = (await newest(bob, r))[1];
  t.match(edited, { content: 'first, edited', isEdited: true });
  t.equal((await bob.post(`/rooms/${r}/messages/${first.messageId}/reactions`, { emoji: '👍' })).status, 200);
  t.strictSame((await newest(bob, r))[1].reactions, { '👍': ['bob'] });
  t.equal((await alice.post(`/rooms/${r}/messages/${second.messageId}/pin`)).status, 200);
  t.equal((await newest(bob, r))[0].isPinned, true);
  t.equal((await bob.del(`/rooms/${r}/messages/${second.messageId}`)).status, 200);
  t.match((await newest(alice, r))[0], { content: '', isDeleted: true });
  t.match((await bob.get(`/rooms/${r}/messages/${second.messageId}`)).data, { isDeleted: true }, 'one message too');

  const settled = await eventually(async () => {
    const stored = await h.store.history(roomKey('acme', r), { limit: 10 });
    return stored[0]?.isDeleted && stored[1]?.reactions['👍'] ? stored : undefined;
  }, 'the persister to write every event');
  t.strictSame(await newest(carol, r), JSON.parse(JSON.stringify(settled)), 'what history showed is what the store holds once written');
});

t.test('api - history - a ban of a reader of a watched room takes effect at once', async (t) => {
  const r = await room(alice, bob);
  await alice.post(`/rooms/${r}/messages`, { content: 'hello' });
  t.equal((await carol.get(`/rooms/${r}/messages`)).status, 200, 'public history, read by a non-member');
  t.equal((await bob.get(`/rooms/${r}/messages`)).status, 200);
  t.equal((await alice.post(`/rooms/${r}/members/carol/ban`)).status, 200);
  t.equal((await carol.get(`/rooms/${r}/messages`)).status, 403);
  t.equal((await alice.post(`/rooms/${r}/members/bob/ban`)).status, 200);
  t.equal((await bob.get(`/rooms/${r}/messages`)).status, 403, 'a cached member is re-read after the ban');
  t.equal((await alice.del(`/rooms/${r}/members/carol/ban`)).status, 200);
  t.equal((await carol.get(`/rooms/${r}/messages`)).status, 200, 'and after the unban');
});
