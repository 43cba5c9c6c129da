import t from 'tap';
import type { HttpResponse } from 'uWebSockets.js';
import { RequestStream } from './request-stream.ts';

/** The part of a uWS response the stream uses: onData, pause, resume; chunks are pushed by the test. */
function fakeResponse() {
  let onData: ((chunk: ArrayBuffer, isLast: boolean) => void) | undefined;
  const state = { paused: false, pauses: 0 };
  const res = {
    onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void) { onData = handler; return res; },
    pause() { state.paused = true; state.pauses++; },
    resume() { state.paused = false; },
  };
  const push = (bytes: number, isLast = false, fill = 1) => {
    const chunk = new Uint8Array(bytes).fill(fill).buffer;
    onData!(chunk, isLast);
    // uWS neuters the chunk after the callback: the stream must have copied it
    new Uint8Array(chunk).fill(0);
  };
  return { res: res as unknown as HttpResponse, state, push };
}

async function drain(stream: RequestStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

t.test('request stream - starts paused, and pauses the socket while a bounded amount waits', async (t) => {
  const { res, state, push } = fakeResponse();
  const stream = new RequestStream(res, undefined, 10 * 1024 * 1024);
  t.ok(state.paused, 'nothing is read before someone reads');
  const reading = drain(stream);
  await new Promise((r) => setImmediate(r));
  t.notOk(state.paused, 'a reader resumes it');
  // the socket delivers faster than the reader takes: past 256 KiB waiting, the socket is paused
  push(100 * 1024);
  push(100 * 1024);
  t.notOk(state.paused, '200 KiB may wait');
  push(100 * 1024);
  t.ok(state.paused, 'not 300 KiB');
  await new Promise((r) => setImmediate(r));
  t.notOk(state.paused, 'resumed once the reader took them');
  push(64 * 1024, true, 2);
  const all = await reading;
  t.equal(all.length, 364 * 1024);
  t.equal(all[0], 1, 'chunks were copied before uWS reused their memory');
  t.equal(all[all.length - 1], 2);
  t.ok(stream.complete);
});

t.test('request stream - peek shows the head without consuming it', async (t) => {
  const { res, push } = fakeResponse();
  const stream = new RequestStream(res, undefined, 1000);
  const peeking = stream.peek(10);
  push(4, false, 7);
  push(20, true, 8);
  const head = await peeking;
  t.same([...head], [7, 7, 7, 7, 8, 8, 8, 8, 8, 8]);
  t.equal((await drain(stream)).length, 24, 'reading starts at byte 0');
});

t.test('request stream - over the limit the reader gets too_large, and later bytes are dropped', async (t) => {
  const { res, push } = fakeResponse();
  const stream = new RequestStream(res, undefined, 1000);
  const reading = drain(stream);
  push(600);
  push(600);
  await t.rejects(reading, { code: 'too_large', details: { limit: 1000 } });
  push(600, true);
  t.equal(stream.received, 1200, 'counting stopped at the chunk that passed the limit');
});

t.test('request stream - a declared length over the limit, or over a lowered limit, fails before reading', async (t) => {
  const over = new RequestStream(fakeResponse().res, 5000, 1000);
  t.match(over.error, { code: 'too_large' });
  const fits = new RequestStream(fakeResponse().res, 900, 1000);
  t.equal(fits.error, undefined);
  fits.setLimit(500);
  t.match(fits.error, { code: 'too_large', details: { limit: 500 } });
  await t.rejects(fits.peek(10), { code: 'too_large' });
});

t.test('request stream - a client that leaves fails the reader; after detach nothing is kept', async (t) => {
  const gone = fakeResponse();
  const stream = new RequestStream(gone.res, undefined, 1000);
  const reading = drain(stream);
  gone.push(10);
  stream.abort();
  await t.rejects(reading, { code: 'bad_request' });

  const answered = fakeResponse();
  const early = new RequestStream(answered.res, undefined, 10_000);
  answered.push(100);
  early.detach();
  t.notOk(answered.state.paused, 'the rest of the body is read...');
  answered.push(5000, true);
  t.equal(early.received, 100, '...and dropped');
  t.ok(early.complete);
});
