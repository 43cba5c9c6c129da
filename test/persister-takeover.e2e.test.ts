import t from 'tap';
import { connect } from 'nats';
import { startNatsServer } from './support/nats-server.ts';
import { startChatCluster } from './support/chat-cluster.ts';
import { readHistory } from './support/exactly-once.ts';
import { restClient } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { TestClient } from './support/ws-client.ts';

/**
 * Persister takeover: a gateway, an api and two persisters on a private nats-server, with the
 * default PERSIST_ACK_WAIT_MS. Under a steady send load one persister is killed with kill -9
 * while it holds unwritten events; the other one must have them in the store within 5 s of the
 * kill (not after a 30 s ack wait), read through REST history with the api's history windows off.
 */
const SENDERS = 4;
const ROOMS = 2;
const TAKEOVER_LIMIT_MS = 5000;

const nats = await startNatsServer();
t.teardown(() => nats.destroy());
const cluster = await startChatCluster({
  natsUrl: nats.url, gateways: 1, persisters: 2,
  // History windows off: REST history then shows exactly what the store holds, which is what this
  // test is about (with them on, the newest pages read their own writes before the store has them).
  env: { RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000', PERSIST_ACK_WAIT_MS: '', HISTORY_WINDOW_MESSAGES: '0' },
});
t.teardown(() => cluster.stop());

interface Acked { roomId: string; messageId: string; at: number }

t.test('persister takeover - kill -9 of a persister under load: every acked message is in REST history within 5 s', async (t) => {
  const nc = await connect({ servers: nats.url, name: 'takeover test admin' });
  t.teardown(() => nc.close());
  const jsm = await nc.jetstreamManager();

  const users = Array.from({ length: SENDERS }, (_, i) => `takeover-u${i}`);
  const tokens = await Promise.all(users.map((u) => devToken(u)));
  const rooms: string[] = [];
  for (let k = 0; k < ROOMS; k++) {
    const created = await restClient(cluster.api.http, tokens[0])('POST', '/v1/chat/rooms', { name: `takeover ${k}`, type: 'public' });
    t.equal(created.status, 201, `room ${k} created`);
    rooms.push(created.body.data.roomId as string);
    for (let i = 1; i < SENDERS; i++) {
      const joined = await restClient(cluster.api.http, tokens[i])('POST', `/v1/chat/rooms/${rooms[k]}/join`);
      t.equal(joined.status, 200, `${users[i]} joined room ${k}`);
    }
  }
  const info = await jsm.consumers.info('CHAT', 'persister');
  t.equal(info.config.ack_wait, 2000 * 1e6, 'the persisters run with the default ack wait of 2 s');

  // every sender sends to its room, one message at a time, until told to stop
  const acked: Acked[] = [];
  const failures: string[] = [];
  let sending = true;
  const clients = await Promise.all(tokens.map((token) => TestClient.connect(`${cluster.gateways[0]!.ws}/chat`, { token })));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  const loops = clients.map(async (client, i) => {
    const roomId = rooms[i % ROOMS]!;
    for (let n = 0; sending; n++) {
      const reply = await client.request({ type: 'send_message', roomId, content: `${users[i]} #${n}`, clientMsgId: `${users[i]}.${n}` }, 10_000);
      if (reply.type === 'ack') acked.push({ roomId, messageId: reply.messageId as string, at: Date.now() });
      else failures.push(`${users[i]} #${n}: ${JSON.stringify(reply)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  });

  await waitUntil(() => acked.length >= 200, 'the load is flowing', 30_000);
  // frozen a moment first so that it surely dies holding events the server handed it; the
  // freeze only shortens what is left of their ack wait at the kill
  const victim = cluster.persisters[0]!;
  victim.child.kill('SIGSTOP');
  await new Promise((r) => setTimeout(r, 300));
  const held = (await jsm.consumers.info('CHAT', 'persister')).num_ack_pending;
  await victim.kill();
  const killedAt = Date.now();
  const ackedAtKill = acked.length;
  t.ok(held > 0, `the persister died holding ${held} unacked events`);

  // the load goes on while the other persister takes over
  const stored = new Set<string>();
  const isStored = async (list: Acked[]) => {
    const missing = list.filter((a) => !stored.has(a.messageId));
    for (const roomId of new Set(missing.map((a) => a.roomId))) {
      for (const m of await readHistory(cluster.api.http, tokens[0]!, roomId)) stored.add(m.messageId);
    }
    return list.every((a) => stored.has(a.messageId));
  };
  let tookMs = Infinity;
  while (Date.now() - killedAt < TAKEOVER_LIMIT_MS * 3) {
    if (await isStored(acked.slice(0, ackedAtKill))) {
      tookMs = Date.now() - killedAt;
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(tookMs < TAKEOVER_LIMIT_MS, `all ${ackedAtKill} messages acked before the kill were in history ${tookMs} ms after it`);

  await new Promise((r) => setTimeout(r, 1000));
  sending = false;
  await Promise.all(loops);
  const lastAckAt = Math.max(...acked.map((a) => a.at));
  await waitUntil(() => isStored(acked), 'every acked message stored', TAKEOVER_LIMIT_MS);
  t.comment(`${acked.length} messages acked (${ackedAtKill} before the kill); all stored ${Date.now() - lastAckAt} ms after the last ack`);
  t.same(failures, [], 'no send failed: the persisters are not on the send path');

  // exactly once: each acked id once in its room's history, nothing else from these senders
  for (const roomId of rooms) {
    const history = (await readHistory(cluster.api.http, tokens[0]!, roomId)).map((m) => m.messageId);
    const expected = acked.filter((a) => a.roomId === roomId).map((a) => a.messageId);
    t.equal(history.length, new Set(history).size, `room ${roomId}: no message stored twice`);
    t.same([...history].sort(), [...expected].sort(), `room ${roomId}: history holds exactly the acked messages`);
  }
  t.equal(cluster.persisters[1]!.child.exitCode, null, 'the other persister is still running');
  t.ok(cluster.persisters[1]!.output.every((l) => !/"level":(50|60)/.test(l)), 'and logged no errors');
});

async function waitUntil(cond: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
