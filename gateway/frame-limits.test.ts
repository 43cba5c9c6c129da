import t from 'tap';
import { connectClient, startGatewayHarness, until, type FrameClient, type GatewayHarness } from '../test/support/gateway-harness.ts';

/**
 * Issue 12, finding 3: floods of frames that are not messages. Typing, presence and read marks
 * coalesce (at most one change per window reaches the room, the last state wins); joins, leaves,
 * room creations, resumes and pings are limited with `rate_limited`; neighbours stay connected.
 * Bounds are stated in windows elapsed, so a slow machine does not make them flaky.
 */

const WINDOW_MS = 2000;

async function twoInRoom(h: GatewayHarness): Promise<{ roomId: string; ann: FrameClient; bob: FrameClient }> {
  const room = await h.rooms.create(await h.principal('ann'), { name: 'busy', type: 'public' });
  const ann = await connectClient(h, await h.token('ann'));
  const bob = await connectClient(h, await h.token('bob'));
  bob.send({ type: 'join_room', roomId: room.roomId, ref: 'j' });
  await bob.next((f) => f.type === 'ack' && f.ref === 'j');
  return { roomId: room.roomId, ann, bob };
}

/** Sends `n` frames and waits for all their answers; returns how long that took. */
async function burst(c: FrameClient, n: number, frame: (i: number) => Record<string, unknown>): Promise<{ ms: number; answers: any[] }> {
  const start = Date.now();
  const tag = `b${Math.random().toString(36).slice(2)}`;
  for (let i = 0; i < n; i++) c.send({ ...frame(i), ref: `${tag}-${i}` });
  await until(() => c.frames.filter((f) => typeof f.ref === 'string' && f.ref.startsWith(tag)).length === n, 60_000);
  return { ms: Date.now() - start, answers: c.frames.filter((f) => typeof f.ref === 'string' && f.ref.startsWith(tag)) };
}

/** At most one change per window: the first at once, then one per window begun since. */
const bound = (ms: number) => 2 + Math.ceil(ms / WINDOW_MS);

t.test('limits - 400 typing frames reach the room as a few indicators, the last state winning', async (t) => {
  const h = await startGatewayHarness(t, { COALESCE_TYPING_MS: String(WINDOW_MS) });
  const { roomId, ann, bob } = await twoInRoom(h);
  t.teardown(() => { ann.ws.close(); bob.ws.close(); });
  const from = bob.frames.length;
  const { ms, answers } = await burst(ann, 400, (i) => ({ type: i % 2 === 0 ? 'typing_start' : 'typing_stop', roomId }));
  t.equal(answers.filter((f) => f.type === 'ack').length, 400, 'every frame is acked');
  // the held last state (stopped) arrives when the window ends
  await until(() => bob.frames.slice(from).some((f) => f.type === 'typing_indicator' && f.isTyping === false));
  const indicators = bob.frames.slice(from).filter((f) => f.type === 'typing_indicator');
  t.ok(indicators.length <= bound(ms), `${indicators.length} indicators for 400 frames in ${ms} ms (at most ${bound(ms)})`);
  t.equal(indicators.at(-1)?.isTyping, false, 'the last state wins: not typing');
  t.equal(bob.ws.readyState, bob.ws.OPEN, 'the neighbour is still connected');
});

t.test('limits - 200 set_presence frames reach the room as a few updates, the last status winning', async (t) => {
  const h = await startGatewayHarness(t, { COALESCE_PRESENCE_MS: String(WINDOW_MS) });
  const { ann, bob } = await twoInRoom(h);
  t.teardown(() => { ann.ws.close(); bob.ws.close(); });
  await until(() => bob.frames.some((f) => f.type === 'presence_update' && f.userId === 'ann'), 2000);
  const from = bob.frames.length;
  const statuses = ['away', 'busy', 'online'] as const;
  const { ms, answers } = await burst(ann, 200, (i) => ({ type: 'set_presence', status: i === 199 ? 'busy' : statuses[i % 3] }));
  t.equal(answers.filter((f) => f.type === 'ack').length, 200, 'every frame is acked');
  t.ok(answers.some((f) => f.coalesced === true), 'those held say coalesced');
  await until(() => bob.frames.slice(from).some((f) => f.type === 'presence_update' && f.status === 'busy') && Date.now() > 0);
  await new Promise((r) => setTimeout(r, WINDOW_MS + 200));
  const updates = bob.frames.slice(from).filter((f) => f.type === 'presence_update' && f.userId === 'ann');
  t.ok(updates.length <= bound(ms), `${updates.length} updates for 200 frames in ${ms} ms (at most ${bound(ms)})`);
  t.equal(updates.at(-1)?.status, 'busy', 'the last status wins');
});

t.test('limits - 200 mark_read frames store a few read marks, the last one winning', async (t) => {
  const h = await startGatewayHarness(t, { COALESCE_READ_MS: String(WINDOW_MS) });
  const { roomId, ann, bob } = await twoInRoom(h);
  t.teardown(() => { ann.ws.close(); bob.ws.close(); });
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) ids.push((await h.messages.send(await h.principal('ann'), { roomId, content: `m${i}` })).message.messageId);
  const from = ann.frames.length;
  const { ms, answers } = await burst(bob, 200, (i) => ({ type: 'mark_read', roomId, messageId: i === 199 ? ids[9] : ids[i % 9] }));
  t.equal(answers.filter((f) => f.type === 'ack').length, 200, 'every frame is acked');
  await until(() => ann.frames.slice(from).some((f) => f.type === 'read_receipt' && f.messageId === ids[9]));
  const receipts = ann.frames.slice(from).filter((f) => f.type === 'read_receipt' && f.userId === 'bob');
  t.ok(receipts.length <= bound(ms), `${receipts.length} read marks stored for 200 frames in ${ms} ms (at most ${bound(ms)})`);
  t.equal(receipts.at(-1)?.messageId, ids[9], 'the last mark wins');
});

t.test('limits - joins and leaves past RATE_LIMIT_MEMBERSHIP get rate_limited, and the room hears only the allowed ones', async (t) => {
  const h = await startGatewayHarness(t, { RATE_LIMIT_MEMBERSHIP: '6/60s' });
  const { roomId, ann, bob } = await twoInRoom(h); // bob's join took one
  t.teardown(() => { ann.ws.close(); bob.ws.close(); });
  await ann.next((f) => f.type === 'user_joined' && f.user.userId === 'bob');
  const from = ann.frames.length;
  const { answers } = await burst(bob, 40, (i) => ({ type: i % 2 === 0 ? 'leave_room' : 'join_room', roomId }));
  const limited = answers.filter((f) => f.type === 'error' && f.code === 'rate_limited');
  t.equal(answers.filter((f) => f.type === 'ack').length, 5, 'five more within the rule');
  t.equal(limited.length, 35, 'the rest refused with rate_limited');
  t.ok(limited.every((f) => f.retryAfterMs > 0), 'each says when to retry');
  await new Promise((r) => setTimeout(r, 200));
  const changes = ann.frames.slice(from).filter((f) => f.type === 'user_joined' || f.type === 'user_left');
  t.ok(changes.length <= 5, `the room saw ${changes.length} membership changes`);
  t.equal(ann.ws.readyState, ann.ws.OPEN, 'the neighbour is still connected');
});

t.test('limits - rooms created past RATE_LIMIT_ROOM_CREATE are refused, also by /ws?room=', async (t) => {
  const h = await startGatewayHarness(t, { RATE_LIMIT_ROOM_CREATE: '3/60s' });
  const ann = await h.principal('ann');
  for (let i = 0; i < 3; i++) await h.rooms.create(ann, { name: `r${i}`, type: 'public' });
  await t.rejects(h.rooms.create(ann, { name: 'one too many', type: 'public' }), { code: 'rate_limited' });
  const legacy = await connectClient(h, await h.token('ann'), '/ws?room=fresh_room', { welcome: false });
  t.teardown(() => legacy.ws.close());
  const err = await legacy.next((f) => f.type === 'error');
  t.equal(err.code, 'rate_limited', 'creating the seed-001 room at connect counts too');
  t.same(await h.store.getRoom('fresh_room'), undefined, 'and the room was not created');
});

t.test('limits - resume and ping frames have their own limits', async (t) => {
  const h = await startGatewayHarness(t, { RATE_LIMIT_RESUME: '2/60s', RATE_LIMIT_PING: '5/60s' });
  const room = await h.rooms.create(await h.principal('ann'), { name: 'r', type: 'public' });
  const first = await h.messages.send(await h.principal('ann'), { roomId: room.roomId, content: 'm0' });
  await h.messages.send(await h.principal('ann'), { roomId: room.roomId, content: 'm1' });
  const ann = await connectClient(h, await h.token('ann'));
  t.teardown(() => ann.ws.close());
  const resumes = await burst(ann, 4, () => ({ type: 'resume', rooms: [{ roomId: room.roomId, lastMessageId: first.message.messageId }] }));
  t.same(resumes.answers.map((f) => [f.type, f.rateLimited === true, f.rooms?.[0]?.recovered]), [
    ['ack', false, true], ['ack', false, true], ['ack', true, false], ['ack', true, false],
  ], 'past the rule a resume replays nothing: its rooms say recovered: false (the client pages REST history)');
  const tally = (answers: any[]) => answers.map((f) => f.type === 'error' ? f.code : f.type).sort();
  const pings = await burst(ann, 8, () => ({ type: 'ping' }));
  t.same(tally(pings.answers), ['pong', 'pong', 'pong', 'pong', 'pong', 'rate_limited', 'rate_limited', 'rate_limited']);
});

t.test('limits - a message ends typing at once, so typing again right after it is shown (no window hides it)', async (t) => {
  const h = await startGatewayHarness(t, { COALESCE_TYPING_MS: String(WINDOW_MS) });
  const { roomId, ann, bob } = await twoInRoom(h);
  t.teardown(() => { ann.ws.close(); bob.ws.close(); });
  await burst(ann, 1, () => ({ type: 'typing_start', roomId }));
  await burst(ann, 1, () => ({ type: 'typing_stop', roomId }));
  await burst(ann, 1, () => ({ type: 'send_message', roomId, content: 'done typing' }));
  const from = bob.frames.length;
  await burst(ann, 1, () => ({ type: 'typing_start', roomId }));
  const shown = await bob.next((f) => f.type === 'typing_indicator' && f.isTyping === true, 10_000, from);
  t.equal(shown.user.userId, 'ann', 'typing after the message is announced');
});
