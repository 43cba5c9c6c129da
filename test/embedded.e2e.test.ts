import t from 'tap';
import { Packr } from 'msgpackr';
import { SignJWT } from 'jose';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { TestClient, type Frame } from './support/ws-client.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * The embedded server as a user meets it: `chat all` as a real process, real sockets, JSON and
 * msgpack clients side by side, every bad input answered with its code while neighbours chat on.
 */
const ENV = {
  TYPING_TIMEOUT: '600',
  RATE_LIMIT_PER_SECOND: '20',
  RATE_LIMIT_BURST: '50',
  MAX_PAYLOAD_BYTES: '16384',
  PERSIST_INTERVAL_MS: '50',
};

let srv: ChatProcess;
const clients: TestClient[] = [];
/** Every acknowledged message id, by room, checked against history after a restart. */
const acked = new Map<string, string[]>();
const ack = (roomId: string, id: string) => { acked.set(roomId, [...(acked.get(roomId) ?? []), id]); };

async function connect(user: string, format: 'json' | 'msgpack' = 'json', query?: string): Promise<TestClient> {
  const c = await TestClient.connect(`${srv.ws}/chat`, { token: await devToken(user), format, ...(query ? { query } : {}) });
  clients.push(c);
  await c.next((f) => f.type === 'welcome');
  return c;
}

async function sendOk(c: TestClient, roomId: string, content: string, extra: Record<string, unknown> = {}): Promise<Frame> {
  const reply = await c.request({ type: 'send_message', roomId, content, ...extra });
  if (reply.type !== 'ack') throw new Error(`send failed: ${JSON.stringify(reply)}`);
  ack(roomId, reply.messageId);
  return reply;
}

t.before(async () => {
  srv = await startChatProcess({ env: ENV });
});

t.teardown(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await srv?.kill();
  if (srv) removeDir(srv.dataDir);
});

let alice: TestClient, bob: TestClient, carol: TestClient;
let roomId: string;
let aliceRest: ReturnType<typeof restClient>;

t.test('e2e - three clients (two JSON, one msgpack) share a room', async (t) => {
  aliceRest = restClient(srv.http, await devToken('alice'));
  const created = await aliceRest('POST', '/v1/chat/rooms', { name: 'General', type: 'public' });
  t.equal(created.status, 201);
  roomId = created.body.data.roomId;
  t.match(roomId, /^room_\d+$/);

  alice = await connect('alice');
  bob = await connect('bob');
  carol = await connect('carol', 'msgpack');
  t.same(alice.all('welcome')[0]!.rooms, [roomId], 'the creator is subscribed to her room at connect');
  for (const c of [bob, carol]) {
    const ack = await c.request({ type: 'join_room', roomId });
    t.equal(ack.type, 'ack');
    t.equal(ack.joined, true);
  }
  await alice.next((f) => f.type === 'user_joined' && f.user.userId === 'carol');

  const sent = await sendOk(alice, roomId, 'hello from alice');
  await sendOk(bob, roomId, 'hello from bob');
  await sendOk(carol, roomId, 'hello from carol');
  for (const c of [alice, bob, carol]) {
    for (const text of ['hello from alice', 'hello from bob', 'hello from carol']) {
      const f = await c.next((f) => f.type === 'new_message' && f.message.content === text);
      t.equal(f.roomId, roomId);
      t.type(f.seq, 'number');
    }
  }
  const viaMsgpack = await carol.next((f) => f.type === 'new_message' && f.message.messageId === sent.messageId);
  t.equal(viaMsgpack.message.authorId, 'alice', 'msgpack client decodes the same message');
});

t.test('e2e - typing starts, and expires after TYPING_TIMEOUT without a stop', async (t) => {
  const from = bob.frames.length;
  await alice.request({ type: 'typing_start', roomId });
  const on = await bob.next((f) => f.type === 'typing_indicator' && f.user.userId === 'alice' && f.isTyping === true, 3000, from);
  t.equal(on.roomId, roomId);
  const started = Date.now();
  await carol.next((f) => f.type === 'typing_indicator' && f.user.userId === 'alice' && f.isTyping === true);
  await bob.next((f) => f.type === 'typing_indicator' && f.user.userId === 'alice' && f.isTyping === false, 5000, from);
  t.ok(Date.now() - started >= 400, 'the indicator stayed on for about the timeout');

  const from2 = carol.frames.length;
  await bob.request({ type: 'typing_start', roomId });
  await bob.request({ type: 'typing_stop', roomId });
  await carol.next((f) => f.type === 'typing_indicator' && f.user.userId === 'bob' && f.isTyping === false, 3000, from2);
});

t.test('e2e - reactions, edits, deletes and read receipts reach everyone', async (t) => {
  const msg = await sendOk(alice, roomId, 'react to me');
  const messageId = msg.messageId;
  const react = await bob.request({ type: 'message_reaction', roomId, messageId, emoji: '👍' });
  t.equal(react.type, 'ack');
  for (const c of [alice, bob, carol]) {
    const f = await c.next((f) => f.type === 'reaction_updated' && f.messageId === messageId);
    t.match(f, { emoji: '👍', userId: 'bob', action: 'add' });
  }
  t.equal((await alice.request({ type: 'edit_message', roomId, messageId, content: 'react to me (edited)' })).type, 'ack');
  for (const c of [alice, bob, carol]) {
    const f = await c.next((f) => f.type === 'message_updated' && f.messageId === messageId);
    t.equal(f.content, 'react to me (edited)');
  }
  t.equal((await carol.request({ type: 'mark_read', roomId, messageId })).type, 'ack');
  for (const c of [alice, bob, carol]) {
    const f = await c.next((f) => f.type === 'read_receipt' && f.userId === 'carol');
    t.equal(f.messageId, messageId);
  }
  const doomed = await sendOk(bob, roomId, 'delete me');
  t.equal((await bob.request({ type: 'delete_message', roomId, messageId: doomed.messageId })).type, 'ack');
  for (const c of [alice, bob, carol]) await c.next((f) => f.type === 'message_deleted' && f.messageId === doomed.messageId);

  const stored = await eventually(async () => {
    const r = await aliceRest('GET', `/v1/chat/rooms/${roomId}/messages/${messageId}`);
    return r.status === 200 && r.body.data.isEdited ? r.body.data : undefined;
  });
  t.equal(stored.content, 'react to me (edited)');
  t.same(stored.reactions, { '👍': ['bob'] });
  const gone = await eventually(async () => {
    const r = await aliceRest('GET', `/v1/chat/rooms/${roomId}/messages/${doomed.messageId}`);
    return r.status === 200 && r.body.data.isDeleted ? r.body.data : undefined;
  });
  t.equal(gone.content, '', 'a deleted message keeps no content');
});

t.test('e2e - a retried clientMsgId makes one message', async (t) => {
  const first = await alice.request({ type: 'send_message', roomId, content: 'only once', clientMsgId: 'retry-1' });
  const second = await alice.request({ type: 'send_message', roomId, content: 'only once', clientMsgId: 'retry-1' });
  t.equal(first.type, 'ack');
  t.equal(second.type, 'ack');
  t.equal(second.messageId, first.messageId);
  t.equal(second.duplicate, true);
  ack(roomId, first.messageId);
  const page = await eventually(async () => {
    const r = await aliceRest('GET', `/v1/chat/rooms/${roomId}/messages?limit=100`);
    const hits = r.body.data.messages.filter((m: any) => m.content === 'only once');
    return hits.length ? hits : undefined;
  });
  await new Promise((r) => setTimeout(r, 200));
  const again = await aliceRest('GET', `/v1/chat/rooms/${roomId}/messages?limit=100`);
  t.equal(again.body.data.messages.filter((m: any) => m.content === 'only once').length, 1);
  t.equal(page[0].clientMsgId, 'retry-1');
});

t.test('e2e - history over REST pages both ways', async (t) => {
  const r = await aliceRest('POST', '/v1/chat/rooms', { name: 'History', type: 'public' });
  const hid = r.body.data.roomId as string;
  const dan = await connect('dan');
  const erin = await connect('erin');
  for (const c of [dan, erin]) await c.request({ type: 'join_room', roomId: hid });
  const ids: string[] = [];
  for (let i = 0; i < 120; i++) {
    const c = [alice, dan, erin][i % 3]!;
    if (i % 3 === 0) await alice.request({ type: 'join_room', roomId: hid });
    ids.push((await sendOk(c, hid, `h${i}`)).messageId);
  }
  await eventually(async () => {
    const p = await aliceRest('GET', `/v1/chat/rooms/${hid}/messages?limit=1`);
    return p.body.data.messages[0]?.messageId === ids[119];
  });
  const backwards: string[] = [];
  let before: string | undefined;
  for (;;) {
    const p = await aliceRest('GET', `/v1/chat/rooms/${hid}/messages?limit=50${before ? `&before=${before}` : ''}`);
    t.equal(p.status, 200);
    backwards.push(...p.body.data.messages.map((m: any) => m.messageId));
    if (!p.body.data.pagination.hasMore) break;
    before = p.body.data.pagination.before;
  }
  t.same(backwards, [...ids].reverse(), 'newest first, each exactly once');
  const forwards: string[] = [];
  let after = '0';
  for (;;) {
    const p = await aliceRest('GET', `/v1/chat/rooms/${hid}/messages?limit=50&after=${after}`);
    const page = p.body.data.messages.map((m: any) => m.messageId) as string[];
    forwards.push(...[...page].reverse());
    if (!p.body.data.pagination.hasMore) break;
    after = p.body.data.pagination.after;
  }
  t.same(forwards, ids, 'oldest first when walking forwards');
});

t.test('e2e - bad input gets its code while a neighbour keeps chatting', async (t) => {
  const mallory = await connect('mallory');
  await mallory.request({ type: 'join_room', roomId });
  let n = 0;
  const neighbourStillChats = async () => {
    const text = `still here ${++n}`;
    await sendOk(bob, roomId, text);
    await carol.next((f) => f.type === 'new_message' && f.message.content === text);
  };
  const expectError = async (what: string, code: string, act: () => void | Promise<void>) => {
    const from = mallory.frames.length;
    await act();
    const err = await mallory.next((f) => f.type === 'error', 5000, from);
    t.equal(err.code, code, what);
    await neighbourStillChats();
    t.equal(mallory.closed, undefined, `${what}: the offender's socket stays open`);
  };

  await expectError('malformed JSON', 'bad_frame', () => mallory.sendRaw('{"type": "send_message", '));
  await expectError('malformed msgpack', 'bad_frame', () => mallory.sendRaw(Buffer.from([0xc1, 0xff, 0x00]), true));
  await expectError('not an object', 'bad_frame', () => mallory.sendRaw('[1,2,3]'));
  await expectError('unknown frame type', 'bad_frame', () => { mallory.send({ type: 'launch_rockets' }); });
  await expectError('missing field', 'bad_frame', () => { mallory.send({ type: 'send_message', roomId }); });
  await expectError('wrong-typed field', 'bad_frame', () => { mallory.send({ type: 'send_message', roomId, content: 42 }); });
  await expectError('text over MAX_MESSAGE_LENGTH', 'too_large', () => { mallory.send({ type: 'send_message', roomId, content: 'x'.repeat(5001) }); });
  await expectError('a message id beyond 64 bits', 'bad_request', () => { mallory.send({ type: 'mark_read', roomId, messageId: '99999999999999999999' }); });
  await expectError('frame over the payload limit', 'too_large', () => { mallory.send({ type: 'send_message', roomId, content: 'y'.repeat(20_000) }); });

  const priv = await aliceRest('POST', '/v1/chat/rooms', { name: 'Secret', type: 'private' });
  await expectError('sending to a room one is not a member of', 'not_found', () => {
    mallory.send({ type: 'send_message', roomId: priv.body.data.roomId, content: 'let me in' });
  });
  const ann = await aliceRest('POST', '/v1/chat/rooms', { name: 'News', type: 'announcement' });
  await mallory.request({ type: 'join_room', roomId: ann.body.data.roomId });
  await expectError('a member posting in an announcement room', 'forbidden', () => {
    mallory.send({ type: 'send_message', roomId: ann.body.data.roomId, content: 'my news' });
  });
  const victim = await sendOk(alice, roomId, 'alice wrote this');
  await expectError("editing someone else's message", 'forbidden', () => {
    mallory.send({ type: 'edit_message', roomId, messageId: victim.messageId, content: 'mallory was here' });
  });

  t.equal((await aliceRest('POST', `/v1/chat/rooms/${roomId}/members/mallory/mute`)).status, 200);
  await expectError('a muted member sending', 'forbidden', async () => {
    await eventually(async () => {
      const from = mallory.frames.length;
      const reply = await mallory.request({ type: 'send_message', roomId, content: 'muted?' });
      if (reply.type === 'ack') ack(roomId, reply.messageId);
      return reply.type === 'error' ? reply : (mallory.frames.splice(from), undefined);
    });
    mallory.send({ type: 'send_message', roomId, content: 'still muted' });
  });
  t.equal((await aliceRest('POST', `/v1/chat/rooms/${roomId}/members/mallory/ban`)).status, 200);
  await expectError('a banned member sending', 'forbidden', () => { mallory.send({ type: 'send_message', roomId, content: 'banned?' }); });

  // Rate limit: a burst past the bucket is refused with a retry hint; the neighbour is unaffected.
  const spammer = await connect('spammer');
  await spammer.request({ type: 'join_room', roomId });
  const replies = await Promise.all(Array.from({ length: 80 }, (_, i) => spammer.request({ type: 'send_message', roomId, content: `spam ${i}` })));
  for (const r of replies) if (r.type === 'ack') ack(roomId, r.messageId);
  const limited = replies.filter((r) => r.type === 'error' && r.code === 'rate_limited');
  t.ok(limited.length >= 20, `burst beyond the bucket is limited (${limited.length} of 80)`);
  t.ok(limited.every((r) => r.retryAfterMs > 0), 'every rate_limited error says when to retry');
  await neighbourStillChats();

  // Victim's message is unchanged by the attempts.
  const stored = await eventually(async () => {
    const r = await aliceRest('GET', `/v1/chat/rooms/${roomId}/messages/${victim.messageId}`);
    return r.status === 200 ? r.body.data : undefined;
  });
  t.equal(stored.content, 'alice wrote this');
  t.equal(stored.isEdited, false);
});

t.test('e2e - bad tokens are refused with 401 before the upgrade', async (t) => {
  const statusOf = async (token: string | undefined) => {
    try {
      const c = await TestClient.connect(`${srv.ws}/chat`, token ? { token } : {});
      await c.close();
      return 101;
    } catch (err) {
      return (err as { status?: number }).status;
    }
  };
  t.equal(await statusOf(undefined), 401, 'missing token');
  t.equal(await statusOf('not-a-jwt'), 401, 'garbage');
  t.equal(await statusOf(await devToken('alice', { expiresIn: '-10s' })), 401, 'expired');
  const wrongKey = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('1h')
    .sign(new TextEncoder().encode('another-secret-another-secret-another-secret'));
  t.equal(await statusOf(wrongKey), 401, 'signed with another key');
  const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url')}.`;
  t.equal(await statusOf(none), 401, 'alg none');
  const res = await fetch(`${srv.http}/v1/chat/rooms`, { headers: { authorization: `Bearer ${none}` } });
  t.equal(res.status, 401, 'REST refuses alg none too');
  t.equal(((await res.json()) as any).error.code, 'unauthorized');
  await sendOk(alice, roomId, 'the server still serves after bad tokens');
});

t.test('e2e - direct rooms report delivered and read status to the sender', async (t) => {
  const dm = await aliceRest('POST', '/v1/chat/rooms', { name: 'alice+bob', type: 'direct', members: [{ userId: 'bob' }] });
  t.equal(dm.status, 201);
  const dmId = dm.body.data.roomId as string;
  await bob.next((f) => f.type === 'user_joined' && f.roomId === dmId);
  await alice.request({ type: 'join_room', roomId: dmId });
  const sent = await sendOk(alice, dmId, 'are you there?');
  const delivered = await alice.next((f) => f.type === 'message_status' && f.messageId === sent.messageId && f.status === 'delivered');
  t.equal(delivered.userId, 'bob');
  await bob.request({ type: 'mark_read', roomId: dmId, messageId: sent.messageId });
  const read = await alice.next((f) => f.type === 'message_status' && f.messageId === sent.messageId && f.status === 'read');
  t.equal(read.userId, 'bob');
});

t.test('e2e - seed 001 clients: /ws?room= joins at connect and {type:"message"} sends', async (t) => {
  const legacy = await TestClient.connect(`${srv.ws}/ws`, { token: await devToken('oldtimer'), query: 'room=lobby' });
  clients.push(legacy);
  await legacy.next((f) => f.type === 'welcome');
  const ack_ = await legacy.request({ type: 'message', data: { room: 'lobby', message: 'hi from 2019', username: 'oldtimer' } });
  t.equal(ack_.type, 'ack');
  ack('lobby', ack_.messageId);
  const seen = await legacy.next((f) => f.type === 'message' && f.data.message === 'hi from 2019');
  t.match(seen.data, { room: 'lobby', username: 'oldtimer', id: ack_.messageId });
});

t.test('e2e - the process survived everything and SIGTERM keeps every acked message', async (t) => {
  const health = await fetch(`${srv.http}/health`);
  t.equal(health.status, 200);
  // Acks right before the stop are still in the persister's batch: the drain must write them.
  const last = await sendOk(alice, roomId, 'sent just before SIGTERM');
  const aliceClosed = new Promise<number>((r) => alice.ws.once('close', (code) => r(code)));
  const code = await srv.stop();
  t.equal(code, 0, 'clean exit');
  t.equal(await aliceClosed, 1001, 'sockets are closed with 1001 (going away)');

  const dataDir = srv.dataDir;
  srv = await startChatProcess({ env: ENV, dataDir });
  let checked = 0;
  for (const [rid, ids] of acked) {
    const rest = restClient(srv.http, await devToken(rid === 'lobby' ? 'oldtimer' : 'alice'));
    const stored = new Set<string>();
    let before: string | undefined;
    for (;;) {
      const p = await rest('GET', `/v1/chat/rooms/${rid}/messages?limit=100${before ? `&before=${before}` : ''}`);
      t.equal(p.status, 200, `history of ${rid}`);
      for (const m of p.body.data.messages) stored.add(m.messageId);
      if (!p.body.data.pagination.hasMore) break;
      before = p.body.data.pagination.before;
    }
    const missing = ids.filter((id) => !stored.has(id));
    t.same(missing, [], `every acked message of ${rid} is in history after restart`);
    checked += ids.length;
  }
  t.ok(checked > 150, `checked ${checked} acked messages`);
  t.ok(acked.get(roomId)!.includes(last.messageId), 'including the one sent just before SIGTERM');
});
