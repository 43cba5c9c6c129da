import t from 'tap';
import { SseParser, type SseEvent } from './sse-parser.ts';
import { backoffDelay } from './backoff.ts';

t.test('sse parser - events across chunk boundaries, comments, ids, CRLF and multi-line data', async (t) => {
  const events: SseEvent[] = [];
  const p = new SseParser((e) => events.push(e));
  const stream = 'retry: 2000\n\n: heartbeat\n\nid: *:1\ndata: {"a":1}\n\ndata: line one\r\ndata: line two\r\n\r\nevent: custom\ndata:x\n\n';
  for (let i = 0; i < stream.length; i += 7) p.push(stream.slice(i, i + 7));
  t.same(events, [
    { data: '{"a":1}', id: '*:1', event: 'message' },
    { data: 'line one\nline two', id: undefined, event: 'message' },
    { data: 'x', id: undefined, event: 'custom' },
  ]);
  t.equal(p.lastEventId, '*:1', 'the last id stays until another comes');
});

t.test('backoff - grows by the factor up to the cap, with jitter taking up to its share off', async (t) => {
  const o = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 };
  t.same([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, o, () => 0)), [100, 200, 400, 800, 1000, 1000]);
  t.equal(backoffDelay(1, o, () => 1), 100, 'full jitter takes half of a 200 ms delay off');
  t.equal(backoffDelay(2, { ...o, jitter: 0 }, () => 0.9), 400, 'no jitter: exact');
});
