import t from 'tap';
import { startChatProcess, removeDir } from './support/chat-process.ts';
import { startExchange, verifyExchange } from './support/exactly-once.ts';

/**
 * The distributed exactly-once checker (test/support/exactly-once.ts) against `chat all` on the
 * in-process bus: the same clients, rooms and series, all on one port. The fault tests of the
 * distributed suite don't apply here (there is one process and no server to lose).
 */
const srv = await startChatProcess({ env: { NODE_ID: '', NATS_URL: '', REDIS_URL: '', RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000' } });
t.teardown(async () => {
  await srv.kill();
  removeDir(srv.dataDir);
});

t.test('embedded - 9 clients in 3 rooms get every message exactly once, in order, and the store holds each once', async (t) => {
  const exchange = await startExchange({ gateways: [srv.ws], api: srv.http }, { tag: 'embedded', clients: 9, rooms: 3, perSender: 30 });
  t.teardown(() => exchange.stop());
  await exchange.sending;
  await verifyExchange(t, exchange, srv.http);
  const dropped = exchange.clients.reduce((s, c) => s + [...c.dropped.values()].reduce((a, b) => a + b, 0), 0);
  t.equal(dropped, 0, 'no frame reaches a client twice');
  t.ok(srv.output.some((l) => /"bus":"memory"/.test(l)), 'it ran on the in-process bus');
});
