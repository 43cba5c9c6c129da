import t, { type Test } from 'tap';
import { pino } from 'pino';
import { createMemoryBus, createNatsBus, type Bus } from '../shared/bus/index.ts';
import type { DurableEvent } from '../shared/domain/events.ts';
import { Snowflake } from '../shared/ids/snowflake.ts';
import { encodeMsgpack } from '../shared/protocol/codec.ts';
import { createSqliteStore, type Store } from '../shared/store/index.ts';
import { silentLogger } from '../shared/telemetry/logger.ts';
import { startNatsServer } from '../test/support/nats-server.ts';
import { startPersister } from './start.ts';

/**
 * Two persisters of one group, the first with a store write four times longer than the ack wait:
 * it keeps its batch (and what it pulled behind it) for the whole write, so no event is written
 * by the other persister as well. Counted per event over every applyEvents call of both.
 */
const ACK_WAIT_MS = 500;
const SLOW_WRITE_MS = ACK_WAIT_MS * 4;
const EVENTS = 30;

const ids = new Snowflake(3);

function created(roomId: string, i: number): DurableEvent {
  const id = ids.next();
  const at = Date.now();
  return {
    kind: 'message.created', id, at, roomId,
    message: {
      messageId: id, roomId, authorId: 'u1', authorName: 'U', content: `m${i}`, type: 'text',
      timestamp: new Date(at).toISOString(), reactions: {}, replyTo: null, threadId: null, mentions: [], attachments: [],
      isEdited: false, isDeleted: false, isPinned: false, isAnonymous: false,
    },
  };
}

/** The store seen by one persister: counts what it writes, and makes its first write slow when asked. */
function countingStore(store: Store, writes: Map<string, number>, slow?: { started: boolean; done: boolean }): Store {
  return {
    ...store,
    async applyEvents(events) {
      const slowNow = slow !== undefined && !slow.started;
      if (slowNow) {
        slow.started = true;
        await new Promise((r) => setTimeout(r, SLOW_WRITE_MS));
      }
      await store.applyEvents(events);
      for (const e of events) writes.set(e.id, (writes.get(e.id) ?? 0) + 1);
      if (slowNow) slow.done = true;
    },
  };
}

async function run(t: Test, bus: Bus): Promise<void> {
  const store = createSqliteStore({ file: ':memory:' });
  const writes = new Map<string, number>();
  const slowWrite = { started: false, done: false };
  const persist = { intervalMs: 20, batchMax: 8, maxDeliver: 5, ackWaitMs: ACK_WAIT_MS };
  const durable = `slow${Date.now().toString(36)}`;
  const slow = startPersister({ bus, store: countingStore(store, writes, slowWrite), persist, log: silentLogger(), durable });
  let other: ReturnType<typeof startPersister> | undefined;
  try {

    const roomId = 'slowroom';
    const events = Array.from({ length: EVENTS }, (_, i) => created(roomId, i));
    // 12 events, batches of 8: the slow persister holds a batch in the write and pulls the next behind it
    for (const e of events.slice(0, 12)) await bus.publishDurable(roomId, e.id, encodeMsgpack(e));
    await waitFor(() => slowWrite.started, 'the slow write started');
    other = startPersister({ bus, store: countingStore(store, writes), persist, log: silentLogger(), durable });
    for (const e of events.slice(12)) await bus.publishDurable(roomId, e.id, encodeMsgpack(e));

    await waitFor(() => slowWrite.done && events.every((e) => writes.has(e.id)), 'the slow write done and every event written', SLOW_WRITE_MS + 10_000);
    await waitFor(async () => (await slow.pending()) === 0, 'nothing pending');
    await new Promise((r) => setTimeout(r, ACK_WAIT_MS * 2)); // a late redelivery would be written by now
    t.same(events.filter((e) => writes.get(e.id) !== 1).map((e) => [e.id, writes.get(e.id)]), [], 'each event written exactly once');
    t.equal((await store.history(roomId, { limit: 100 })).length, EVENTS, 'and all are in history');
  } finally {
    await Promise.all([slow.flushAndStop(2000), other?.flushAndStop(2000)]);
    await store.close();
  }
}

t.test('persister - a store write longer than the ack wait keeps its batch (memory bus)', async (t) => {
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 10_000 });
  try {
    await run(t, bus);
  } finally {
    await bus.close();
  }
});

t.test('persister - a store write longer than the ack wait keeps its batch (NATS bus)', async (t) => {
  const server = await startNatsServer();
  const bus = createNatsBus({ servers: [server.url], recoveryWindowSec: 3600 }, pino({ level: 'silent' }));
  try {
    await bus.ready();
    await run(t, bus);
  } finally {
    await bus.close();
    await server.destroy();
  }
});

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
