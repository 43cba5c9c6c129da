import t from 'tap';
import { startNatsServer } from './support/nats-server.ts';
import { startChatCluster } from './support/chat-cluster.ts';
import { startExchange, verifyExchange, whenAcked } from './support/exactly-once.ts';
import { eventually } from './support/rest.ts';

/**
 * The nats-server dies (kill -9) mid-stream and comes back on the same port with the same
 * storage. Sends made meanwhile fail with `unavailable` and are retried by the clients with the
 * same clientMsgId; no tier is restarted. The checker then finds every message exactly once, in
 * every client and in the store.
 */
const nats = await startNatsServer();
t.teardown(() => nats.destroy());
const cluster = await startChatCluster({
  natsUrl: nats.url, gateways: 3, persisters: 2,
  env: { RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000', PERSIST_ACK_WAIT_MS: '3000' },
});
t.teardown(() => cluster.stop());

t.test('distributed - a nats-server restart mid-stream: no acked message lost, everyone recovers by itself', async (t) => {
  const exchange = await startExchange(
    { gateways: cluster.gateways.map((g) => g.ws), api: cluster.api.http },
    { tag: 'natsrestart', clients: 9, rooms: 3, perSender: 30, pauseMs: 40, sendDeadlineMs: 60_000 },
  );
  t.teardown(() => exchange.stop());
  await whenAcked(exchange, 0.3);
  await nats.kill();
  // acks already on their way to the clients still arrive; nothing after them
  await new Promise((r) => setTimeout(r, 300));
  const ackedAtKill = exchange.acked();
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(exchange.acked(), ackedAtKill, 'nothing is acked while NATS is down');
  await nats.restart();
  t.comment(`nats-server down for 2.3 s with ${ackedAtKill} of ${exchange.total} acked`);

  await exchange.sending;
  await verifyExchange(t, exchange, cluster.api.http);
  const unavailable = exchange.clients.reduce((s, c) => s + (c.retries.get('unavailable') ?? 0), 0);
  t.ok(unavailable > 0, `sends during the outage were refused with unavailable (${unavailable}) and retried`);
  t.same(exchange.clients.map((c) => c.connectedTo.length), exchange.clients.map(() => 1), 'no client had to reconnect: the gateways kept their sockets');
  for (const p of cluster.all()) t.equal(p.child.exitCode, null, `pid ${p.child.pid} is still the same process`);
  for (const g of cluster.gateways) {
    t.ok(g.output.some((l) => l.includes('live gap repaired from the stream')), `gateway ${g.port} replayed what its sockets missed while cut off`);
  }
  for (const p of cluster.all()) {
    const ready = await eventually(async () => (await fetch(`${p.http}/health/ready`)).status === 200, 10_000);
    t.ok(ready, `${p.http} is ready again`);
  }
});
