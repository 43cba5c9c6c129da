import t from 'tap';
import { pino } from 'pino';
import type { Msg, NatsConnection } from 'nats';
import { ChatError } from '../protocol/errors.ts';
import type { Connected } from './nats-connection.ts';
import { NatsDurablePublisher } from './nats-publisher.ts';

/**
 * The pipelined publisher against a fake connection: the test sees every PUB it makes (subject,
 * reply, header block) and answers them on the reply subscription in any order, or not at all.
 */
const enc = new TextEncoder();
const dec = new TextDecoder();

interface Pub { subject: string; reply: string; headers: string; data: string }

function fakeConnection() {
  const pubs: Pub[] = [];
  const subs: Array<{ subject: string; callback: (err: Error | null, msg: Msg) => void }> = [];
  const nc = {
    publish(subject: string, data: Uint8Array, opts: { reply: string; headers: { encode(): Uint8Array } }) {
      pubs.push({ subject, reply: opts.reply, headers: dec.decode(opts.headers.encode()), data: dec.decode(data) });
    },
    subscribe(subject: string, opts: { callback: (err: Error | null, msg: Msg) => void }) {
      subs.push({ subject, callback: opts.callback });
      return { unsubscribe() {} };
    },
  } as unknown as NatsConnection;
  let up = true;
  const connection = {
    require(): Connected {
      if (!up) throw new ChatError('unavailable', 'NATS connection lost; reconnecting');
      return { nc } as Connected;
    },
  };
  const ensured: boolean[] = [];
  const stream = { name: 'CHAT', ensureInBackground: (throttled?: boolean) => { ensured.push(throttled ?? false); } };
  /** Answers a PUB on the reply subscription, as the server would. */
  const answer = (pub: Pub, body: string | { status: number }) => {
    const sub = subs.find((s) => pub.reply.startsWith(s.subject.slice(0, -1)))!;
    const msg = typeof body === 'string'
      ? { subject: pub.reply, data: enc.encode(body), headers: undefined }
      : { subject: pub.reply, data: new Uint8Array(0), headers: { code: body.status } };
    sub.callback(null, msg as unknown as Msg);
  };
  return { connection, stream, pubs, subs, answer, ensured, setUp: (v: boolean) => { up = v; } };
}

function publisher(f: ReturnType<typeof fakeConnection>, timeoutMs = 2500) {
  return new NatsDurablePublisher(f.connection, f.stream, timeoutMs, pino({ level: 'silent' }));
}

/** Publishes are written at the end of the event loop's turn. */
const written = () => new Promise((r) => setImmediate(r));
const settle = <T>(p: Promise<T>) => p.then((v) => ({ ok: v }), (err: unknown) => ({ err: err as ChatError }));

t.test('nats publisher - publishes go out in call order before any ack; acks answered out of order reach their own publish', async (t) => {
  const f = fakeConnection();
  const pub = publisher(f);
  const pending = Array.from({ length: 5 }, (_, i) => settle(pub.publish(`room${i}`, `id-${i}`, enc.encode(`e${i}`), i === 2 ? { traceparent: '00-aa-bb-01' } : undefined)));
  t.equal(f.pubs.length, 0, 'nothing written before the end of the loop\'s turn');
  await written();
  t.same(f.pubs.map((p) => [p.subject, p.data]), [0, 1, 2, 3, 4].map((i) => [`chat.durable.room${i}`, `e${i}`]), 'every PUB written together, in call order, before any ack');
  t.equal(f.subs.length, 1, 'one reply subscription for all of them');
  t.match(f.subs[0]!.subject, /^_INBOX\.[A-Za-z0-9]+\.\*$/);
  t.equal(new Set(f.pubs.map((p) => p.reply)).size, 5, 'each with its own reply subject');
  t.ok(f.pubs.every((p) => p.reply.startsWith(f.subs[0]!.subject.slice(0, -1))), 'under the subscription\'s prefix');
  t.equal(f.pubs[0]!.headers, 'NATS/1.0\r\nNats-Msg-Id: id-0\r\n\r\n', 'the dedupe id is the JetStream message id');
  t.equal(f.pubs[2]!.headers, 'NATS/1.0\r\nNats-Msg-Id: id-2\r\ntraceparent: 00-aa-bb-01\r\n\r\n', 'caller headers follow it');
  t.equal(pub.inFlight, 5);

  // the server's own spacing: {"stream":"CHAT", "seq":7,"duplicate": true}
  for (const i of [3, 0, 4, 1]) f.answer(f.pubs[i]!, `{"stream":"CHAT", "seq":${10 + i}${i === 4 ? ',"duplicate": true' : ''}}`);
  f.answer(f.pubs[2]!, '{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"CHAT","seq":0}');
  const results = await Promise.all(pending);
  t.same(results.slice(0, 2), [{ ok: { seq: 10, duplicate: false } }, { ok: { seq: 11, duplicate: false } }]);
  t.match(results[2], { err: { code: 'unavailable', message: /maximum messages exceeded/ } }, 'a refusal fails its own publish');
  t.same(results.slice(3), [{ ok: { seq: 13, duplicate: false } }, { ok: { seq: 14, duplicate: true } }]);
  t.equal(pub.inFlight, 0);
  f.answer(f.pubs[0]!, '{"stream":"CHAT", "seq":99}');
  t.equal(pub.inFlight, 0, 'a second answer to a settled publish is ignored');
});

t.test('nats publisher - a publish without an ack fails with unavailable after the timeout; the others are not held up', async (t) => {
  const f = fakeConnection();
  const pub = publisher(f, 300);
  // the sweeper does not hold the process open (a real connection does)
  const alive = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(alive));
  const started = Date.now();
  const lost = settle(pub.publish('r', 'lost', enc.encode('x'), undefined));
  const answered = settle(pub.publish('r', 'answered', enc.encode('y'), undefined));
  await written();
  f.answer(f.pubs[1]!, '{"stream":"CHAT", "seq":2}');
  t.same(await answered, { ok: { seq: 2, duplicate: false } }, 'a later publish is acked before the earlier one times out');
  const r = await lost;
  const took = Date.now() - started;
  t.match(r, { err: { name: 'ChatError', code: 'unavailable', message: /did not confirm .* within 300 ms/ } });
  t.ok(took >= 290 && took < 1000, `timed out after ~300 ms (${took} ms)`);
  t.equal(pub.inFlight, 0);
});

t.test('nats publisher - failAll fails everything in flight at once; while disconnected new publishes fail without a PUB', async (t) => {
  const f = fakeConnection();
  const pub = publisher(f);
  const pending = Array.from({ length: 20 }, (_, i) => settle(pub.publish('r', `id-${i}`, enc.encode('x'), undefined)));
  await written();
  pending.push(settle(pub.publish('r', 'queued', enc.encode('x'), undefined)));
  const started = Date.now();
  f.setUp(false);
  pub.failAll('the NATS connection was lost');
  const results = await Promise.all(pending);
  t.ok(Date.now() - started < 50, 'at once');
  t.ok(results.every((r) => 'err' in r && r.err.code === 'unavailable' && /connection was lost/.test(r.err.message)), 'every one with unavailable');
  t.match(await settle(pub.publish('r', 'later', enc.encode('x'), undefined)), { err: { code: 'unavailable' } });
  await written();
  t.equal(f.pubs.length, 20, 'neither the one queued when the connection dropped nor the one made while down was handed to nats.js');
  f.setUp(true);
  const back = settle(pub.publish('r', 'back', enc.encode('x'), undefined));
  await written();
  f.answer(f.pubs.at(-1)!, '{"stream":"CHAT", "seq":5}');
  t.same(await back, { ok: { seq: 5, duplicate: false } }, 'works again once connected');
});

t.test('nats publisher - no responders, an oversized event and bad headers are told apart', async (t) => {
  const f = fakeConnection();
  const pub = publisher(f);
  const none = settle(pub.publish('r', 'a', enc.encode('x'), undefined));
  await written();
  f.answer(f.pubs[0]!, { status: 503 });
  t.match(await none, { err: { code: 'unavailable', message: /no JetStream stream takes chat\.durable\.r/ } });
  t.same(f.ensured, [true], 'and the stream is checked (throttled)');

  const big = settle(pub.publish('r', 'b', enc.encode('x'), undefined));
  await written();
  f.answer(f.pubs[1]!, '{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"}}');
  t.match(await big, { err: { code: 'too_large' } });

  t.match(await settle(pub.publish('r', 'c\r\nX-Injected: 1', enc.encode('x'), undefined)), { err: { code: 'bad_request' } }, 'a dedupe id cannot add header lines');
  t.match(await settle(pub.publish('r', 'd', enc.encode('x'), { 'bad key': 'v' })), { err: { code: 'bad_request' } });
  t.match(await settle(pub.publish('r.x', 'e', enc.encode('x'), undefined)), { err: { code: 'bad_request' } }, 'room ids are one subject token');
  await written();
  t.equal(f.pubs.length, 2, 'refused arguments never reach NATS');
});

t.test('nats publisher - a publish taken just before a drop that is not reported yet fails at its write, not after the timeout', async (t) => {
  const f = fakeConnection();
  const pub = publisher(f);
  const taken = settle(pub.publish('r', 'racing', enc.encode('x'), undefined));
  f.setUp(false); // the connection is down by the end of the turn, before failAll was called
  await written();
  t.match(await taken, { err: { code: 'unavailable' } });
  t.equal(f.pubs.length, 0, 'not handed to nats.js, which would keep it for the reconnect');
  t.equal(pub.inFlight, 0);
});
