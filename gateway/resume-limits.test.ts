import t from 'tap';
import { connectClient, startGatewayHarness, type GatewayHarness } from '../test/support/gateway-harness.ts';

/** Issue 12, finding 1: one resume frame must not replay a room many times, nor without bound, nor in one go. */

async function roomWith(h: GatewayHarness, messages: number): Promise<{ roomId: string; firstId: string }> {
  const ann = await h.principal('ann');
  const room = await h.rooms.create(ann, { name: `r${messages}`, type: 'public' });
  let firstId = '';
  for (let i = 0; i < messages; i++) {
    const sent = await h.messages.send(ann, { roomId: room.roomId, content: `m${i}` });
    if (i === 0) firstId = sent.message.messageId;
  }
  return { roomId: room.roomId, firstId };
}

t.test('resume - a room named 500 times in one resume frame is replayed once', async (t) => {
  const h = await startGatewayHarness(t, { RESUME_SKEW: '0' });
  const { roomId, firstId } = await roomWith(h, 20);
  const bob = await connectClient(h, await h.token('bob'));
  t.teardown(() => bob.ws.close());
  bob.send({ type: 'join_room', roomId, ref: 'j' });
  await bob.next((f) => f.type === 'ack' && f.ref === 'j');
  const from = bob.frames.length;
  bob.send({ type: 'resume', rooms: Array.from({ length: 500 }, () => ({ roomId, lastMessageId: firstId })), ref: 'r' });
  const resumed = await bob.next((f) => f.type === 'resumed', 60_000, from);
  t.same(resumed.rooms, [{ roomId, recovered: true, replayed: 20 }], 'one line for the room, its 20 events once');
  const replayed = bob.frames.slice(from).filter((f) => f.type === 'new_message');
  t.equal(replayed.length, 20, 'twenty new_message frames, not 500 x 20');
});

t.test('resume - a request replays at most RESUME_MAX_EVENTS; the rest is recovered: false (REST history)', async (t) => {
  const h = await startGatewayHarness(t, { RESUME_SKEW: '0', RESUME_MAX_EVENTS: '25' });
  const a = await roomWith(h, 15);
  const b = await roomWith(h, 15);
  const c = await roomWith(h, 5);
  const ann = await connectClient(h, await h.token('ann'));
  t.teardown(() => ann.ws.close());
  const from = ann.frames.length;
  ann.send({
    type: 'resume', ref: 'r',
    rooms: [{ roomId: a.roomId, lastMessageId: a.firstId }, { roomId: b.roomId, lastMessageId: b.firstId }, { roomId: c.roomId, lastMessageId: c.firstId }],
  });
  const resumed = await ann.next((f) => f.type === 'resumed', 30_000, from);
  t.same(resumed.rooms, [
    { roomId: a.roomId, recovered: true, replayed: 15 },
    { roomId: b.roomId, recovered: false, replayed: 10 },
    { roomId: c.roomId, recovered: false, replayed: 0 },
  ], 'the first room whole, the second cut at the budget, the third not replayed');
  const replayed = ann.frames.slice(from).filter((f) => f.type === 'new_message');
  t.equal(replayed.length, 25);
  t.same(replayed.filter((f) => f.roomId === b.roomId).map((f) => f.message.content), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9'],
    'the oldest events of the room cut short: the client pages REST history from there');
});

t.test('resume - a neighbour\'s message gets through while a big replay is being sent', async (t) => {
  const h = await startGatewayHarness(t, { RESUME_SKEW: '0', RESUME_MAX_EVENTS: '100000' });
  const big = await roomWith(h, 3000);
  const ann = await h.principal('ann');
  const lobby = await h.rooms.create(ann, { name: 'lobby', type: 'public' });
  const bob = await connectClient(h, await h.token('bob'));
  const cat = await connectClient(h, await h.token('cat'));
  t.teardown(() => { bob.ws.close(); cat.ws.close(); });
  for (const [c, roomId] of [[bob, big.roomId], [bob, lobby.roomId], [cat, lobby.roomId]] as const) {
    c.send({ type: 'join_room', roomId, ref: `j-${roomId}` });
    await c.next((f) => f.type === 'ack' && f.ref === `j-${roomId}`);
  }
  const from = bob.frames.length;
  bob.send({ type: 'resume', rooms: [{ roomId: big.roomId, lastMessageId: big.firstId }], ref: 'r' });
  // once the replay has begun, cat (on another socket) says something in the lobby, where bob is live
  await bob.next((f) => f.type === 'new_message' && f.roomId === big.roomId, 30_000, from);
  cat.send({ type: 'send_message', roomId: lobby.roomId, content: 'meanwhile', ref: 's' });
  await cat.next((f) => f.type === 'ack' && f.ref === 's', 30_000);
  await bob.next((f) => f.type === 'resumed', 60_000, from);
  const seen = bob.frames.slice(from);
  const neighbour = seen.findIndex((f) => f.type === 'new_message' && f.message.content === 'meanwhile');
  const resumed = seen.findIndex((f) => f.type === 'resumed');
  const replayed = seen.filter((f) => f.type === 'new_message' && f.roomId === big.roomId).length;
  t.equal(replayed, 3000, 'the whole replay arrived');
  t.ok(neighbour >= 0 && neighbour < resumed, `the neighbour's message arrived before the replay ended (at ${neighbour}, resumed at ${resumed})`);
});
