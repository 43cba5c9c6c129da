import t from 'tap';
import { BusDelivery, type Settler } from './delivery.ts';
import { consumerSettings } from './consume-options.ts';
import { DEFAULT_ACK_WAIT_MS } from './bus-defaults.ts';
import { checkDurableArguments } from './durable-arguments.ts';
import { DEFAULTS } from '../config/index.ts';

const msg = { seq: 7, roomId: 'r1', dedupeId: 'd1', storedAt: 1000, data: new Uint8Array([1]), headers: { a: 'b' } };

const notDecoded = (): unknown => {
  throw new Error('not decoded in these tests');
};

function recording() {
  const calls: Array<[string, string, number?]> = [];
  const settler: Settler<string> = {
    ack: (handle) => calls.push(['ack', handle]),
    nak: (handle, _d, delayMs) => calls.push(['nak', handle, delayMs]),
    term: (handle) => calls.push(['term', handle]),
    working: (handle) => calls.push(['working', handle]),
  };
  return { calls, settler };
}

t.test('delivery - carries the event and hands each settlement to the adapter with its handle', async (t) => {
  const { calls, settler } = recording();
  const d = new BusDelivery(msg, 3, settler, 'h', notDecoded);
  t.same([d.seq, d.roomId, d.dedupeId, d.storedAt, [...d.data], d.headers, d.deliveryCount], [7, 'r1', 'd1', 1000, [1], { a: 'b' }, 3]);
  d.nak(150);
  t.same(calls, [['nak', 'h', 150]]);
  const acked = new BusDelivery(msg, 1, settler, 'a', notDecoded);
  acked.ack();
  const termed = new BusDelivery(msg, 1, settler, 't', notDecoded);
  termed.term();
  t.same(calls.slice(1), [['ack', 'a'], ['term', 't']]);
});

t.test('delivery - the first settlement counts; later ones are ignored', async (t) => {
  const { calls, settler } = recording();
  const d = new BusDelivery(msg, 1, settler, 'h', notDecoded);
  d.nak(100);
  d.ack();
  d.term();
  d.nak(5);
  d.retryIfUnsettled();
  t.same(calls, [['nak', 'h', 100]]);
});

t.test('delivery - working is passed on until the delivery is settled, and does not settle it', async (t) => {
  const { calls, settler } = recording();
  const d = new BusDelivery(msg, 1, settler, 'h', notDecoded);
  t.equal(d.settled, false);
  d.working();
  d.working();
  t.equal(d.settled, false, 'still unsettled');
  d.ack();
  t.equal(d.settled, true);
  d.working();
  t.same(calls, [['working', 'h'], ['working', 'h'], ['ack', 'h']], 'nothing after the ack');
});

t.test('delivery - a nak without delay and an unsettled event of a throwing handler use the redelivery backoff', async (t) => {
  const { calls, settler } = recording();
  new BusDelivery(msg, 1, settler, 'first', notDecoded).nak();
  new BusDelivery(msg, 3, settler, 'third', notDecoded).retryIfUnsettled();
  new BusDelivery(msg, 9, settler, 'ninth', notDecoded).nak();
  t.same(calls, [['nak', 'first', 200], ['nak', 'third', 800], ['nak', 'ninth', 5000]]);
});

t.test('consume options - checked alike for every adapter; ack wait defaults to the config default', async (t) => {
  t.same(consumerSettings({ durable: 'p', maxBatch: 10, maxWaitMs: 0 }), { durable: 'p', maxBatch: 10, maxWaitMs: 0, ackWaitMs: DEFAULT_ACK_WAIT_MS });
  t.equal(DEFAULT_ACK_WAIT_MS, DEFAULTS.persistAckWaitMs, 'one default, the one PERSIST_ACK_WAIT_MS has');
  t.same(consumerSettings({ durable: 'p', maxBatch: 1, maxWaitMs: 5, ackWaitMs: 900 }).ackWaitMs, 900);
  for (const bad of [
    { durable: '', maxBatch: 1, maxWaitMs: 0 },
    { durable: 'p', maxBatch: 0, maxWaitMs: 0 },
    { durable: 'p', maxBatch: 1.5, maxWaitMs: 0 },
    { durable: 'p', maxBatch: 1, maxWaitMs: -1 },
    { durable: 'p', maxBatch: 1, maxWaitMs: Number.NaN },
    { durable: 'p', maxBatch: 1, maxWaitMs: 0, ackWaitMs: 0 },
  ]) {
    t.throws(() => consumerSettings(bad), { code: 'bad_request' }, JSON.stringify(bad));
  }
});

t.test('durable arguments - a room id is one subject token, a dedupe id is not empty', async (t) => {
  t.doesNotThrow(() => checkDurableArguments('room-1', 'd'));
  for (const room of ['a.b', 'a b', '*', '>', '']) t.throws(() => checkDurableArguments(room, 'd'), { code: 'bad_request' }, `room "${room}"`);
  t.throws(() => checkDurableArguments('r', ''), { code: 'bad_request' }, 'empty dedupe id');
});

t.test('delivery - decoded() is its data through the decoder the adapter gave it', async (t) => {
  const { settler } = recording();
  const seen: Uint8Array[] = [];
  const d = new BusDelivery(msg, 1, settler, 'h', (data) => {
    seen.push(data);
    return { kind: 'decoded', first: data[0] };
  });
  t.same(d.decoded(), { kind: 'decoded', first: 1 });
  t.equal(seen[0], msg.data, 'the stored bytes themselves');
});
