import t from 'tap';
import { connect } from 'nats';
import { startNatsCluster } from './support/nats-server.ts';
import { startChatCluster } from './support/chat-cluster.ts';
import { startExchange, verifyExchange, whenAcked } from './support/exactly-once.ts';

/**
 * A 3-node NATS cluster with the stream (and the node id bucket) replicated 3 ways. The node
 * leading the stream is killed mid-stream; the deployment keeps accepting and delivering through
 * the other two. Publishes fail with `unavailable` while a new stream leader is elected, and the
 * persisters' consumer can stall for about 12 s while its own leader moves, so this test allows
 * generous time for sends (60 s each) and for the store to catch up (90 s). Live frames that were
 * passing through the killed node are lost for gateways connected elsewhere; they learn of the
 * node leaving and repair from the stream (the exactly-once check fails without that).
 */
const nodes = await startNatsCluster({ size: 3 });
t.teardown(() => Promise.all(nodes.map((n) => n.destroy())));
const natsUrl = nodes.map((n) => n.url).join(',');
const cluster = await startChatCluster({
  natsUrl, gateways: 3, persisters: 2,
  env: { NATS_STREAM_REPLICAS: '3', RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000', PERSIST_ACK_WAIT_MS: '3000' },
});
t.teardown(() => cluster.stop());

t.test('distributed - a 3-node NATS cluster that loses its stream leader keeps accepting and delivering', async (t) => {
  const admin = await connect({ servers: nodes.map((n) => n.url), name: 'cluster test admin' });
  t.teardown(() => admin.close());
  const jsm = await admin.jetstreamManager();
  const info = await jsm.streams.info('CHAT');
  t.equal(info.config.num_replicas, 3, 'the stream is replicated on all three nodes');
  const kv = await jsm.streams.info('KV_chat_node_ids');
  t.equal(kv.config.num_replicas, 3, 'and so is the node id bucket');
  const leader = nodes.find((n) => n.serverName === info.cluster?.leader);
  if (!leader) throw new Error(`stream leader ${info.cluster?.leader} is not one of ${nodes.map((n) => n.serverName).join(', ')}`);

  const exchange = await startExchange(
    { gateways: cluster.gateways.map((g) => g.ws), api: cluster.api.http },
    { tag: 'natscluster', clients: 9, rooms: 3, perSender: 30, pauseMs: 30, sendDeadlineMs: 60_000 },
  );
  t.teardown(() => exchange.stop());
  await whenAcked(exchange, 0.3);
  await leader.kill();
  const ackedAtKill = exchange.acked();
  const killedAt = Date.now();
  t.comment(`killed stream leader ${leader.serverName} with ${ackedAtKill} of ${exchange.total} acked`);

  await whenAcked(exchange, (ackedAtKill + 50) / exchange.total, 45_000);
  t.comment(`50 more messages acked ${Date.now() - killedAt} ms after the kill`);
  await exchange.sending;
  await verifyExchange(t, exchange, cluster.api.http, { deliverMs: 30_000, storeMs: 90_000 });
  const after = await jsm.streams.info('CHAT');
  t.not(after.cluster?.leader, leader.serverName, `a new stream leader took over (${after.cluster?.leader})`);
  for (const p of cluster.all()) t.equal(p.child.exitCode, null, `pid ${p.child.pid} kept running (its node id lease too)`);
});
