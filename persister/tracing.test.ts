import t from 'tap';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createMemoryBus } from '../shared/bus/index.ts';
import { createSqliteStore } from '../shared/store/index.ts';
import { createMemoryPresence } from '../shared/presence/memory-presence.ts';
import { createMemoryRateLimiter } from '../shared/rate-limit/memory-rate-limit.ts';
import { MessageCommands, RoomCommands, createStoreRoomAccess } from '../shared/commands/index.ts';
import { Snowflake } from '../shared/ids/snowflake.ts';
import { silentLogger } from '../shared/telemetry/logger.ts';
import { markTracingEnabled, tracingConfigured } from '../shared/telemetry/tracing.ts';
import { startPersister } from './start.ts';
import { keyOfRoom } from '../shared/domain/index.ts';

t.test('tracing - one trace shows send -> stream -> persist -> store write; the batch links to it', async (t) => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  provider.register();
  markTracingEnabled();
  t.teardown(async () => { markTracingEnabled(false); await provider.shutdown(); });

  const bus = await createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 10_000 });
  const store = createSqliteStore({ file: ':memory:' });
  const ids = new Snowflake(1);
  const presence = createMemoryPresence({ ttlSec: 300, typingTimeoutMs: 3000 });
  const rooms = new RoomCommands({ bus, store, presence, ids });
  const messages = new MessageCommands({
    bus, store, presence, ids, access: createStoreRoomAccess(store), limits: { maxMessageLength: 5000 },
    rateLimiter: createMemoryRateLimiter(), userRate: { perSecond: 100, burst: 100 }, tenantRate: undefined,
  });
  const persister = startPersister({ bus, store, persist: { intervalMs: 20, batchMax: 100, maxDeliver: 3 }, log: silentLogger() });
  t.teardown(async () => { await persister.flushAndStop(1000); await bus.close(); await store.close(); });

  const who = { userId: 'u1', name: 'U', tenant: 'acme', roles: [], expiresAt: undefined };
  const room = await rooms.create(who, { name: 'traced', type: 'public' });
  const sent = await messages.send(who, { roomId: room.roomId, content: 'follow me' });

  const deadline = Date.now() + 5000;
  while (!exporter.getFinishedSpans().some((s) => s.name === 'chat.persist') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const spans = exporter.getFinishedSpans();
  const publish = spans.find((s) => s.name === 'chat.publish message.created');
  const persist = spans.find((s) => s.name === 'chat.persist');
  t.ok(publish, 'the send made a publish span');
  t.ok(persist, 'the persister made a span for the stored event');
  t.equal(persist!.spanContext().traceId, publish!.spanContext().traceId, 'same trace');
  t.equal(persist!.parentSpanContext?.spanId, publish!.spanContext().spanId, 'the persist span is a child of the publish span');
  t.equal(persist!.attributes['chat.room_id'], keyOfRoom(room), 'the room\'s key: its tenant and id');
  const command = spans.find((s) => s.name === 'chat.command send');
  t.equal(publish!.parentSpanContext?.spanId, command?.spanContext().spanId, 'the publish is a child of the send command');
  const write = spans.find((s) => s.name === 'chat.store.write');
  t.equal(write?.parentSpanContext?.spanId, persist!.spanContext().spanId, 'the store write is a child of the persist span');
  t.equal(write?.attributes['db.system'], 'sqlite');
  const batch = spans.find((s) => s.name === 'chat.persist.batch');
  t.ok(batch, 'the batch write has its own span');
  t.not(batch!.spanContext().traceId, publish!.spanContext().traceId, 'in a trace of its own');
  t.ok(batch!.links.some((l) => l.context.spanId === publish!.spanContext().spanId), 'linked to the events it wrote');
  t.ok(await store.getMessage(keyOfRoom(room), sent.message.messageId), 'and the message is stored');
});

t.test('tracing - off unless an exporter is configured', async (t) => {
  t.equal(tracingConfigured({}), false);
  t.equal(tracingConfigured({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x' }), false);
  t.equal(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }), true);
  t.equal(tracingConfigured({ OTEL_TRACES_EXPORTER: 'console' }), true);
});
