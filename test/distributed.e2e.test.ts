import t from 'tap';
import { connect } from 'nats';
import { startNatsServer } from './support/nats-server.ts';
import { startChatCluster, leasedNodeId } from './support/chat-cluster.ts';
import { startExchange, verifyExchange, whenAcked, type Topology } from './support/exactly-once.ts';

/**
 * The distributed deployment as an operator runs it: a private nats-server, then 3 × `chat
 * gateway`, 2 × `chat persister` and `chat api` as real processes sharing one SQLite store. Each
 * test runs the exactly-once checker (test/support/exactly-once.ts) over its own rooms, once on
 * the healthy deployment and then across a kill -9 of a persister and of a gateway.
 */
const CLUSTER_ENV = {
  RATE_LIMIT_PER_SECOND: '1000',
  RATE_LIMIT_BURST: '1000',
  // a killed persister's unacked events go to the other one after this
  PERSIST_ACK_WAIT_MS: '3000',
};

const nats = await startNatsServer();
t.teardown(() => nats.destroy());
const cluster = await startChatCluster({ natsUrl: nats.url, gateways: 3, persisters: 2, env: CLUSTER_ENV });
t.teardown(() => cluster.stop());

const topology = (): Topology => ({ gateways: cluster.gateways.map((g) => g.ws), api: cluster.api.http });

t.test('distributed - every process leases its own node id', async (t) => {
  const ids = cluster.all().map(leasedNodeId);
  t.equal(ids.length, 6);
  t.notOk(ids.includes(undefined), 'each process logged the id it claimed');
  t.equal(new Set(ids).size, 6, `six different node ids: ${ids.join(', ')}`);
});

t.test('distributed - 9 clients over 3 gateways get every message exactly once, in order, and the store holds each once', async (t) => {
  const exchange = await startExchange(topology(), { tag: 'steady', clients: 9, rooms: 3, perSender: 30 });
  t.teardown(() => exchange.stop());
  await exchange.sending;
  await verifyExchange(t, exchange, cluster.api.http);
  const dropped = exchange.clients.reduce((s, c) => s + [...c.dropped.values()].reduce((a, b) => a + b, 0), 0);
  t.equal(dropped, 0, 'without faults, no frame reaches a client twice');

  // the ids were made by the gateways the clients sent through, each with its leased node id
  const gatewayNodes = new Set(cluster.gateways.map(leasedNodeId));
  const nodes = new Set(exchange.clients.flatMap((c) => c.acked.map((a) => Number((BigInt(a.messageId) >> 12n) & 1023n))));
  t.same([...nodes].sort(), [...gatewayNodes].sort(), 'message ids carry the three gateways\' node ids');
});

t.test('distributed - kill -9 of a persister holding unacked events mid-stream loses nothing acked', async (t) => {
  const nc = await connect({ servers: nats.url, name: 'distributed test admin' });
  t.teardown(() => nc.close());
  const jsm = await nc.jetstreamManager();
  const exchange = await startExchange(topology(), { tag: 'pkill', clients: 9, rooms: 3, perSender: 30, pauseMs: 20 });
  t.teardown(() => exchange.stop());
  await whenAcked(exchange, 0.3);
  // frozen first, so the server keeps handing it events it will never ack; then killed
  const victim = cluster.persisters[0]!;
  victim.child.kill('SIGSTOP');
  await new Promise((r) => setTimeout(r, 600));
  const held = (await jsm.consumers.info('CHAT', 'persister')).num_ack_pending;
  await victim.kill();
  t.ok(held > 0, `the persister died holding ${held} unacked events`);
  t.comment(`killed persister pid ${victim.child.pid} with ${exchange.acked()} of ${exchange.total} acked`);
  await exchange.sending;
  await verifyExchange(t, exchange, cluster.api.http);
  t.equal(cluster.persisters[1]!.child.exitCode, null, 'the other persister wrote them, after the ack wait');
});

t.test('distributed - kill -9 of a gateway: its clients reconnect elsewhere, resume, and miss nothing', async (t) => {
  const exchange = await startExchange(topology(), { tag: 'gkill', clients: 9, rooms: 3, perSender: 30, pauseMs: 20 });
  t.teardown(() => exchange.stop());
  await whenAcked(exchange, 0.3);
  const victim = cluster.gateways[0]!;
  await victim.kill();
  t.comment(`killed gateway pid ${victim.child.pid} with ${exchange.acked()} of ${exchange.total} acked`);
  await exchange.sending;
  await verifyExchange(t, exchange, cluster.api.http);
  const moved = exchange.clients.filter((c) => c.connectedTo[0] === victim.ws);
  t.equal(moved.length, 3, 'three clients were on the killed gateway');
  for (const c of moved) {
    t.ok(c.connectedTo.length >= 2 && c.connectedTo.slice(1).every((url) => url !== victim.ws), `${c.user} reconnected to another gateway`);
    t.ok(c.resumes.length >= 1 && c.resumes.every((r) => r.every((room) => room.recovered)), `${c.user} resumed every room`);
  }
});
