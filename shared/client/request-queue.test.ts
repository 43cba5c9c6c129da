import t from 'tap';
import { ChatClientError } from './errors.ts';
import { RequestQueue } from './request-queue.ts';
import type { Request } from './rest-commands.ts';

const NO_JITTER = { initialDelayMs: 5, maxDelayMs: 50, factor: 2, jitter: 0 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('request queue - requests made offline go out in order once online, each with a fresh ref', async (t) => {
  const q = new RequestQueue(NO_JITTER, 10_000);
  const sent: Request[] = [];
  const a = q.add({ type: 'send_message', content: 'a' });
  const b = q.add({ type: 'send_message', content: 'b' });
  t.equal(sent.length, 0, 'nothing is sent while offline');
  q.online((r) => sent.push(r));
  t.strictSame(sent.map((r) => r['content']), ['a', 'b'], 'oldest first');
  t.not(sent[0]!.ref, sent[1]!.ref);
  t.equal(q.settle({ type: 'ack', ref: sent[1]!.ref, seq: 2 }), true);
  t.equal(q.settle({ type: 'ack', ref: sent[0]!.ref, seq: 1 }), true);
  t.strictSame(await a, { seq: 1 }, 'the ack body without type and ref');
  t.strictSame(await b, { seq: 2 });
  t.equal(q.settle({ type: 'ack', ref: sent[0]!.ref }), false, 'an answer to nothing of ours is not settled');
  q.offline();
});

t.test('request queue - an unanswered attempt is sent again with the same content and a new ref', async (t) => {
  const q = new RequestQueue(NO_JITTER, 20);
  const sent: Request[] = [];
  q.online((r) => sent.push(r));
  const p = q.add({ type: 'send_message', clientMsgId: 'c1' });
  await sleep(60);
  t.ok(sent.length >= 2, `sent ${sent.length} times`);
  t.strictSame(new Set(sent.map((r) => r['clientMsgId'])), new Set(['c1']), 'every attempt keeps its clientMsgId');
  t.equal(q.settle({ type: 'ack', ref: sent[0]!.ref }), false, 'a late answer to an abandoned attempt settles nothing');
  t.equal(q.settle({ type: 'ack', ref: sent.at(-1)!.ref, ok: true }), true);
  t.strictSame(await p, { ok: true });
});

t.test('request queue - retryable errors are retried after retryAfterMs, others reject with the code', async (t) => {
  const q = new RequestQueue(NO_JITTER, 10_000);
  const sent: Request[] = [];
  q.online((r) => sent.push(r));
  const limited = q.add({ type: 'send_message', content: 'x' });
  q.settle({ type: 'error', code: 'rate_limited', message: 'slow down', ref: sent[0]!.ref, retryAfterMs: 30 });
  await sleep(10);
  t.equal(sent.length, 1, 'not before retryAfterMs');
  await sleep(50);
  t.equal(sent.length, 2, 'retried after it');
  q.settle({ type: 'ack', ref: sent[1]!.ref, n: 1 });
  t.strictSame(await limited, { n: 1 });

  const refused = q.add({ type: 'edit_message' });
  q.settle({ type: 'error', code: 'forbidden', message: 'not yours', ref: sent[2]!.ref });
  const err = await refused.then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof ChatClientError);
  t.equal((err as ChatClientError).code, 'forbidden');
  q.offline();
});

t.test('request queue - a lost connection puts attempts in flight back; closing rejects what is left', async (t) => {
  const q = new RequestQueue(NO_JITTER, 10_000);
  const first: Request[] = [];
  q.online((r) => first.push(r));
  const p = q.add({ type: 'join_room', roomId: 'r' });
  q.offline();
  t.equal(q.settle({ type: 'ack', ref: first[0]!.ref }), false, 'the old connection\'s answer no longer counts');
  const second: Request[] = [];
  q.online((r) => second.push(r));
  t.equal(second.length, 1, 'sent again on the next connection');
  t.equal(second[0]!['roomId'], 'r');
  q.offline();
  const stuck = q.add({ type: 'leave_room', roomId: 'r' });
  q.rejectAll(new ChatClientError('unavailable', 'the client was closed'));
  for (const r of [p, stuck]) {
    const err = await r.then(() => undefined, (e: unknown) => e);
    t.equal((err as ChatClientError).code, 'unavailable');
  }
});
