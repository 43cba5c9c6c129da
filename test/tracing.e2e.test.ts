import t from 'tap';
import { startNatsServer } from './support/nats-server.ts';
import { startChatCluster } from './support/chat-cluster.ts';
import { startOtlpReceiver, type ReceivedSpan } from './support/otlp-receiver.ts';
import { restClient } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { TestClient } from './support/ws-client.ts';

/**
 * Traces across the tiers, as exported: `chat api`, `chat gateway` and `chat persister` as
 * separate processes on a private nats-server (the stream's subjects are fixed, so a shared server
 * would mix tests), each exporting OTLP/HTTP protobuf to a receiver here that decodes what it got.
 */
const otlp = await startOtlpReceiver();
t.teardown(() => otlp.close());
const nats = await startNatsServer();
t.teardown(() => nats.destroy());
const cluster = await startChatCluster({
  natsUrl: nats.url, gateways: 1, persisters: 1,
  env: {
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    // export each batch of spans quickly rather than every 5 s
    OTEL_BSP_SCHEDULE_DELAY: '100',
    LOG_LEVEL: 'debug',
  },
});
t.teardown(() => cluster.stop());

const byName = (spans: ReceivedSpan[], traceId: string, name: string) => spans.find((s) => s.traceId === traceId && s.name === name);
const logLines = (output: string[]) => output.flatMap((l) => { try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; } });

t.test('tracing - one trace from the WebSocket frame through the stream and fan-out to the store write, with its id in the logs', async (t) => {
  const token = await devToken('tracer');
  const rest = restClient(cluster.api.http, token);
  const created = await rest('POST', '/v1/chat/rooms', { name: 'traced', type: 'public' });
  t.equal(created.status, 201);
  const roomId = created.body.data.roomId as string;

  const client = await TestClient.connect(`${cluster.gateways[0]!.ws}/chat`, { token });
  t.teardown(() => client.close());
  await client.next((f) => f.type === 'welcome');
  const ack = await client.request({ type: 'send_message', roomId, content: 'follow me', clientMsgId: 'trace-1' });
  t.equal(ack.type, 'ack', 'the send was acked');

  // the frame span is the root: find it, then its trace must reach the persister's store write
  await otlp.until((spans) => spans.some((s) => s.name === 'chat.ws send_message'));
  const frame = otlp.spans.find((s) => s.name === 'chat.ws send_message')!;
  const traceId = frame.traceId;
  await otlp.until((spans) => ['chat.fanout', 'chat.persist', 'chat.store.write'].every((n) => byName(spans, traceId, n)));
  const spans = otlp.spans.filter((s) => s.traceId === traceId);
  t.comment(spans.map((s) => `${s.service} ${s.name}`).join('; '));

  t.ok(otlp.contentTypes.every((c) => c.startsWith('application/x-protobuf')), 'OTLP over HTTP in protobuf');
  t.equal(frame.service, 'chat-svc-gateway');
  t.equal(frame.parentSpanId, '', 'the frame span is the root of the trace');
  t.equal(frame.kind, 2, 'a server span');
  t.equal(frame.attributes['chat.frame_type'], 'send_message');
  const command = byName(spans, traceId, 'chat.command send');
  t.equal(command?.parentSpanId, frame.spanId, 'the command runs in the frame');
  const publish = byName(spans, traceId, 'chat.publish message.created');
  t.equal(publish?.parentSpanId, command?.spanId, 'the JetStream publish runs in the command');
  t.equal(publish?.kind, 4, 'a producer span');
  t.equal(publish?.attributes['chat.stream_seq'], ack['seq'], 'with the stream sequence the ack carried');
  const fanout = byName(spans, traceId, 'chat.fanout')!;
  t.equal(fanout.service, 'chat-svc-gateway');
  t.equal(fanout.parentSpanId, publish?.spanId, 'the fan-out joined the trace through the republished headers');
  t.equal(fanout.attributes['chat.delivery_count'], 1, 'to the one socket in the room');
  const persist = byName(spans, traceId, 'chat.persist')!;
  t.equal(persist.service, 'chat-svc-persister', 'the persister exported its part of the same trace');
  t.equal(persist.parentSpanId, publish?.spanId, 'its span is a child of the publish');
  t.equal(persist.kind, 5, 'a consumer span');
  const write = byName(spans, traceId, 'chat.store.write')!;
  t.equal(write.parentSpanId, persist.spanId, 'the store write is in the trace');
  t.equal(write.attributes['db.system'], 'sqlite');
  t.equal(write.kind, 3, 'a client span');
  await otlp.until((all) => all.some((s) => s.name === 'chat.persist.batch' && s.links.some((l) => l.spanId === publish?.spanId)));
  t.ok(otlp.spans.some((s) => s.name === 'chat.persist.batch' && s.parentSpanId === ''), 'the batch span is a root, linked to the event it wrote');

  const gatewayLines = logLines(cluster.gateways[0]!.output).filter((l) => l['trace_id'] === traceId);
  t.ok(gatewayLines.some((l) => l['msg'] === 'frame acked'), 'the gateway logged the frame with the trace id');
  await t.resolves(waitFor(() => logLines(cluster.persisters[0]!.output).some((l) => l['trace_id'] === traceId && l['msg'] === 'event persisted')),
    'the persister logged the event with the trace id');
  const untraced = logLines(cluster.gateways[0]!.output).filter((l) => l['msg'] === 'gateway listening');
  t.notOk(untraced[0]?.['trace_id'], 'lines written outside any span carry no trace id');
});

t.test('tracing - a REST send is a route span with its status, continuing the caller\'s traceparent', async (t) => {
  const token = await devToken('rester');
  const rest = restClient(cluster.api.http, token);
  const created = await rest('POST', '/v1/chat/rooms', { name: 'rest-traced', type: 'public' });
  const roomId = created.body.data.roomId as string;
  const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const res = await fetch(`${cluster.api.http}/v1/chat/rooms/${roomId}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', traceparent: `00-${callerTrace}-00f067aa0ba902b7-01` },
    body: JSON.stringify({ content: 'over REST' }),
  });
  t.equal(res.status, 201);
  const route = 'POST /v1/chat/rooms/:roomId/messages';
  await otlp.until((spans) => spans.some((s) => s.name === route && s.traceId === callerTrace));
  const span = otlp.spans.find((s) => s.name === route && s.traceId === callerTrace)!;
  t.equal(span.service, 'chat-svc-api');
  t.equal(span.parentSpanId, '00f067aa0ba902b7', 'a child of the caller\'s span');
  t.equal(span.attributes['http.response.status_code'], 201);
  t.equal(span.attributes['http.route'], '/v1/chat/rooms/:roomId/messages');
  await otlp.until((spans) => byName(spans, callerTrace, 'chat.store.write') !== undefined);
  t.ok(byName(otlp.spans, callerTrace, 'chat.publish message.created'), 'and the message it sent is in the same trace');

  const bad = await fetch(`${cluster.api.http}/v1/chat/rooms/${roomId}/messages`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', traceparent: `00-${'ab'.repeat(16)}-00f067aa0ba902b7-01` },
    body: '{}',
  });
  t.equal(bad.status, 400);
  await otlp.until((spans) => spans.some((s) => s.name === route && s.traceId === 'ab'.repeat(16)));
  const failed = otlp.spans.find((s) => s.name === route && s.traceId === 'ab'.repeat(16))!;
  t.equal(failed.attributes['http.response.status_code'], 400, 'a refused request carries its status');
  t.equal(failed.statusCode, 0, 'a 4xx is the caller\'s error, not a failed span');
  t.notOk(otlp.spans.some((s) => s.name.includes('/health') || s.name.includes('/metrics')), 'probes and scrapes are not traced');
});

async function waitFor(pred: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 50));
  }
}
