import t from 'tap';
import { subjects } from '../shared/bus/index.ts';
import { CLOSE_CODES, encodeMsgpack } from '../shared/protocol/index.ts';
import { connectClient, startGatewayHarness, until } from '../test/support/gateway-harness.ts';

/** Issue 12, findings 2 and 6: how a socket ends is said with a close code and a reason. */

t.test('close codes - a frame over four times MAX_PAYLOAD_BYTES closes the socket with 1009 and a reason', async (t) => {
  const h = await startGatewayHarness(t, { MAX_PAYLOAD_BYTES: '4096' });
  const ann = await connectClient(h, await h.token('ann'));
  const bob = await connectClient(h, await h.token('bob'));
  t.teardown(() => { ann.ws.close(); bob.ws.close(); });
  ann.send({ type: 'ping', pad: 'x'.repeat(5000), ref: 'soft' });
  const soft = await ann.next((f) => f.type === 'error');
  t.equal(soft.code, 'too_large', 'up to four times the limit: an error, and the socket stays');
  ann.send({ type: 'ping', pad: 'x'.repeat(4096 * 5) });
  const closed = await ann.closed;
  t.equal(closed.code, CLOSE_CODES.messageTooBig);
  t.match(closed.reason, /20\d{3} bytes; the limit is 4096/);
  bob.send({ type: 'ping', ref: 'p' });
  t.ok(await bob.next((f) => f.type === 'pong'), 'a neighbour is not disturbed');
});

t.test('close codes - a socket that stops reading is closed with 4008 at MAX_BACKPRESSURE_BYTES, memory bounded', async (t) => {
  const limit = 65536;
  const h = await startGatewayHarness(t, { MAX_BACKPRESSURE_BYTES: String(limit) });
  const room = await h.rooms.create(await h.principal('ann'), { name: 'flood', type: 'public' });
  const bob = await connectClient(h, await h.token('bob'));
  bob.send({ type: 'join_room', roomId: room.roomId, ref: 'j' });
  await bob.next((f) => f.type === 'ack' && f.ref === 'j');
  t.teardown(() => bob.ws.terminate());
  (bob.ws as unknown as { _socket: { pause(): void } })._socket.pause();

  // 2 KB typing frames on the room's live subject, 64 KB at a time: far more than the kernel
  // buffers and the limit, paced so that the gateway's sweep runs in between
  const frame = encodeMsgpack({ type: 'typing_indicator', roomId: room.roomId, user: { userId: 'ann', name: 'a'.repeat(2000) }, isTyping: true });
  const rss0 = process.memoryUsage().rss;
  let published = 0;
  while (h.connections() > 0 && published < 64 * 1024 * 1024) {
    for (let i = 0; i < 32; i++) h.bus.publish(subjects.roomEvents(room.roomId), frame);
    published += 32 * frame.byteLength;
    await new Promise((r) => setTimeout(r, 20));
  }
  const grewMb = (process.memoryUsage().rss - rss0) / 1024 / 1024;
  t.equal(h.connections(), 0, `the gateway cut the slow socket (after ${(published / 1024 / 1024).toFixed(1)} MB published)`);
  t.ok(grewMb < 64, `RSS grew ${grewMb.toFixed(1)} MB while ${(published / 1024 / 1024).toFixed(1)} MB were published to it`);

  const metricsText = await (await fetch(`${h.base}/metrics`)).text();
  t.match(metricsText, /chat_slow_consumers_total\{transport="ws"\} [1-9]/, 'counted as a slow consumer');

  (bob.ws as unknown as { _socket: { resume(): void } })._socket.resume();
  const closed = await bob.closed;
  t.equal(closed.code, CLOSE_CODES.slowConsumer, 'once it reads again, the client finds 4008 after what was buffered');
  t.match(closed.reason, /slow consumer/);
});

t.test('token expiry - a socket is closed with 4401 when its token expires', async (t) => {
  const h = await startGatewayHarness(t);
  const ann = await connectClient(h, await h.token('ann', 2));
  t.teardown(() => ann.ws.close());
  const welcome = ann.frames.find((f) => f.type === 'welcome');
  t.ok(Date.parse(welcome.tokenExpiresAt) > Date.now() - 2000, `the welcome says when (${welcome.tokenExpiresAt})`);
  const closed = await ann.closed;
  t.equal(closed.code, CLOSE_CODES.tokenExpired);
  t.match(closed.reason, /token expired/);
  t.ok(Date.now() >= Date.parse(welcome.tokenExpiresAt), 'not before the token expired');
});

t.test('token expiry - an auth frame with a fresh token of the same user extends the socket', async (t) => {
  const h = await startGatewayHarness(t);
  const ann = await connectClient(h, await h.token('ann', 2));
  t.teardown(() => ann.ws.close());
  const oldExpiry = Date.parse(ann.frames.find((f) => f.type === 'welcome').tokenExpiresAt);

  ann.send({ type: 'auth', token: await h.token('bob', 3600), ref: 'other' });
  const other = await ann.next((f) => f.ref === 'other');
  t.match(other, { type: 'error', code: 'forbidden' }, 'another user\'s token is refused');
  ann.send({ type: 'auth', token: 'not.a.token', ref: 'bad' });
  t.match(await ann.next((f) => f.ref === 'bad'), { type: 'error', code: 'unauthorized' }, 'an invalid token is refused');

  ann.send({ type: 'auth', token: await h.token('ann', 3600), ref: 'fresh' });
  const ack = await ann.next((f) => f.ref === 'fresh');
  t.equal(ack.type, 'ack');
  t.ok(Date.parse(ack.tokenExpiresAt) > Date.now() + 3000_000, `the ack says the new expiry (${ack.tokenExpiresAt})`);

  await until(() => Date.now() > oldExpiry + 2500, 10_000);
  ann.send({ type: 'ping', ref: 'later' });
  t.match(await ann.next((f) => f.ref === 'later'), { type: 'pong' }, 'still open after the first token expired');
});

t.test('token expiry - an SSE stream ends with an unauthorized event when its token expires', async (t) => {
  const h = await startGatewayHarness(t);
  const res = await fetch(`${h.base}/v1/chat/stream?token=${await h.token('ann', 2)}`);
  t.equal(res.status, 200);
  let text = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body!) text += decoder.decode(chunk as Uint8Array, { stream: true });
  t.match(text, /"type":"welcome"/);
  t.match(text, /data: \{"type":"error","code":"unauthorized","message":"token expired/, 'the stream ended after saying why');
});
