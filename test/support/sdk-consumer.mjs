// A project that uses the packed SDK: plain JavaScript, no tsx, importing `chat-svc/client` from
// its own node_modules (test/sdk-package.e2e.test.ts copies this file into a scratch project).
// Prints one JSON line with what it observed; the test makes the assertions.
//
//   node sdk-consumer.mjs json    <url> <roomId> <aliceToken>
//   node sdk-consumer.mjs msgpack <url> <roomId> <aliceToken> <bobToken>
import WebSocket from 'ws';
import { ChatClient, ChatClientError, backoffDelay, isRetryable, newClientMsgId } from 'chat-svc/client';

const [mode, url, roomId, aliceToken, bobToken] = process.argv.slice(2);
setTimeout(() => {
  console.error('sdk consumer: timed out');
  process.exit(2);
}, 20_000).unref();

const out = { sdk: import.meta.resolve('chat-svc/client') };
const clients = [];
const client = (token, format) => {
  const c = new ChatClient({ url, token, WebSocket, format, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
  clients.push(c);
  return c;
};
/** The next `message` event of the room carrying `content`. */
const messageOf = (c, content) => new Promise((resolve) => {
  const off = c.on('message', (f) => {
    if (f.roomId === roomId && f.message.content === content) {
      off();
      resolve(f);
    }
  });
});

try {
  if (mode === 'json') {
    out.msgpackrResolvable = await import('msgpackr').then(() => true, () => false);
    // `random` fixed at 1: jitter takes its full share, so the values are exact.
    out.backoff = [0, 1, 2, 3, 10].map((a) => backoffDelay(a, { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 }, () => 1));
    out.retryable = Object.fromEntries(['rate_limited', 'unavailable', 'forbidden', 'bad_frame', 'not_a_code'].map((code) => [code, new ChatClientError(code, 'x').retryable]));
    out.isRetryable = isRetryable('timeout');
    out.clientMsgIds = new Set([newClientMsgId(), newClientMsgId()]).size;

    const alice = client(aliceToken, 'json');
    const room = await alice.rest.createRoom({ roomId, name: 'SDK package', type: 'public' });
    out.createdRoom = room.roomId;
    const welcome = await alice.connect();
    out.welcome = { type: welcome.type, userId: welcome.userId, format: welcome.format, rooms: welcome.rooms };
    const own = messageOf(alice, 'hello from the tarball');
    const ack = await alice.send(roomId, 'hello from the tarball');
    out.ack = { messageId: ack.messageId, duplicate: ack.duplicate, seq: ack.seq };
    out.received = { messageId: (await own).message.messageId, author: (await own).message.authorId };
    const refused = await alice.send('no_such_room', 'x').then(() => undefined, (err) => err);
    out.refused = { isChatClientError: refused instanceof ChatClientError, code: refused?.code };
  } else {
    const bob = client(bobToken, 'msgpack');
    const welcome = await bob.connect();
    out.welcome = { type: welcome.type, userId: welcome.userId, format: welcome.format };
    const joined = await bob.join(roomId);
    out.joined = joined.joined;
    // History trails a send by one persister batch.
    for (let i = 0; i < 50 && !out.history?.length; i++) {
      if (i) await new Promise((r) => setTimeout(r, 100));
      out.history = (await bob.history(roomId, { limit: 10 })).messages.map((m) => m.content);
    }
    const alice = client(aliceToken, 'json');
    await alice.connect();
    const seen = messageOf(bob, 'and back over msgpack');
    const ack = await alice.send(roomId, 'and back over msgpack');
    const frame = await seen;
    out.received = { messageId: frame.message.messageId, sameAsAck: frame.message.messageId === ack.messageId, author: frame.message.authorId };
  }
} catch (err) {
  out.error = `${err?.name}: ${err?.message}`;
} finally {
  for (const c of clients) c.close();
}
console.log(JSON.stringify(out));
