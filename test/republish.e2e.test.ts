import t from 'tap';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { startNatsServer } from './support/nats-server.ts';
import { startChatCluster } from './support/chat-cluster.ts';
import { startChatProcess, type ChatProcess } from './support/chat-process.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { TestClient } from './support/ws-client.ts';

/**
 * Stored implies announced (issue 17). A gateway that dies the moment the stream's PubAck for a
 * message reaches it, before it can do anything more, still gets that message to the clients on
 * the other gateways live, and its sender never sent it twice: the stream republishes what it
 * stores, so the gateway has no live publish of its own left to miss.
 *
 * The doomed gateway reaches NATS through a proxy. Once armed, the proxy holds back the first
 * PubAck the server sends it and SIGKILLs the gateway instead of passing the PubAck on.
 */
const nats = await startNatsServer();
t.teardown(() => nats.destroy());
const cluster = await startChatCluster({ natsUrl: nats.url, gateways: 1, persisters: 1, env: { PERSIST_INTERVAL_MS: '20', RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000' } });
t.teardown(() => cluster.stop());

interface PubAckTrap {
  url: string;
  /** From now on the next PubAck to the gateway kills it instead. */
  arm(victim: ChatProcess): void;
  /** The PubAck held back, once the trap fired. */
  fired: Promise<string>;
  close(): void;
}

/** A TCP proxy in front of nats-server that can turn the next PubAck into a SIGKILL of its client. */
async function pubAckTrap(upstreamPort: number): Promise<PubAckTrap> {
  let victim: ChatProcess | undefined;
  let fire!: (ack: string) => void;
  const fired = new Promise<string>((r) => { fire = r; });
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(upstreamPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      const ack = victim !== undefined ? /\{"stream":"CHAT",\s*"seq":\d+[^}]*\}/.exec(chunk.toString('latin1')) : null;
      if (ack === null) {
        client.write(chunk);
        return;
      }
      // the stream has stored the message and said so; its gateway never hears of it
      victim!.child.kill('SIGKILL');
      victim = undefined;
      client.destroy();
      upstream.destroy();
      fire(ack[0]);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `nats://127.0.0.1:${port}`,
    arm: (p) => { victim = p; },
    fired,
    close: () => { for (const s of sockets) s.destroy(); server.close(); },
  };
}

t.test('republish - a socket\'s sends pipelined without waiting for acks are stored, acked and shown in the order sent', async (t) => {
  const [aliceToken, bobToken] = await Promise.all([devToken('pipe-alice'), devToken('pipe-bob')]);
  const created = await restClient(cluster.api.http, aliceToken)('POST', '/v1/chat/rooms', { name: 'pipelined', type: 'public' });
  const roomId = created.body.data.roomId as string;
  t.equal((await restClient(cluster.api.http, bobToken)('POST', `/v1/chat/rooms/${roomId}/join`)).status, 200);
  const gateway = cluster.gateways[0]!;
  const alice = await TestClient.connect(`${gateway.ws}/chat`, { token: aliceToken, format: 'msgpack' });
  const bob = await TestClient.connect(`${gateway.ws}/chat`, { token: bobToken });
  t.teardown(async () => { await alice.close(); await bob.close(); });
  await Promise.all([alice.next((f) => f.type === 'welcome'), bob.next((f) => f.type === 'welcome')]);

  const N = 100;
  const refs = Array.from({ length: N }, (_, i) => alice.send({ type: 'send_message', roomId, content: `p${i}`, clientMsgId: `p${i}` }));
  const acks = await Promise.all(refs.map((ref) => alice.next((f) => (f.type === 'ack' || f.type === 'error') && f.ref === ref, 20_000)));
  t.same(acks.filter((a) => a.type !== 'ack'), [], 'every send acked');
  const seqs = acks.map((a) => a.seq as number);
  t.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'stored in the order sent (growing seq)');
  await eventually(async () => bob.all('new_message').length >= N, 20_000);
  t.same(bob.all('new_message').map((f) => f.message.content), refs.map((_, i) => `p${i}`), 'shown in the order sent');
  t.same(bob.all('new_message').map((f) => f.seq), seqs, 'with the sequences the sender was acked with');
});

t.test('republish - a gateway killed as the PubAck reaches it: the message still reaches clients on other gateways live, sent once', async (t) => {
  const trap = await pubAckTrap(nats.port);
  t.teardown(() => trap.close());
  const doomed = await startChatProcess({ command: 'gateway', env: { ...cluster.env, NATS_URL: trap.url }, dataDir: cluster.dataDir, timeoutMs: 60_000 });
  t.teardown(() => doomed.kill());
  const healthy = cluster.gateways[0]!;

  const [aliceToken, bobToken] = await Promise.all([devToken('alice'), devToken('bob')]);
  const created = await restClient(cluster.api.http, aliceToken)('POST', '/v1/chat/rooms', { name: 'republish', type: 'public' });
  t.equal(created.status, 201);
  const roomId = created.body.data.roomId as string;
  t.equal((await restClient(cluster.api.http, bobToken)('POST', `/v1/chat/rooms/${roomId}/join`)).status, 200);

  const alice = await TestClient.connect(`${doomed.ws}/chat`, { token: aliceToken });
  const bob = await TestClient.connect(`${healthy.ws}/chat`, { token: bobToken, format: 'msgpack' });
  t.teardown(async () => { await alice.close(); await bob.close(); });
  await Promise.all([alice.next((f) => f.type === 'welcome'), bob.next((f) => f.type === 'welcome')]);

  // both gateways listen to the room once a message went through them
  const warm = await alice.request({ type: 'send_message', roomId, content: 'warm-up', clientMsgId: 'warm' });
  t.equal(warm.type, 'ack');
  await bob.next((f) => f.type === 'new_message' && f.message.content === 'warm-up', 10_000);

  trap.arm(doomed);
  const from = alice.frames.length;
  alice.send({ type: 'send_message', roomId, content: 'stored as its gateway died', clientMsgId: 'last-words' });
  const ack = await trap.fired;
  const exitCode = await doomed.exited;
  t.comment(`held back ${ack}; the gateway exited with ${String(exitCode ?? doomed.child.signalCode)}`);
  t.equal(doomed.child.signalCode, 'SIGKILL', 'the gateway was killed with the PubAck on its way to it');

  const got = await bob.next((f) => f.type === 'new_message' && f.message.content === 'stored as its gateway died', 10_000);
  t.equal(got.seq, Number(/"seq":(\d+)/.exec(ack)![1]), 'bob got it live, with the sequence of the PubAck its gateway never saw');
  t.same(alice.frames.slice(from).filter((f) => f.type === 'ack' || f.type === 'error'), [], 'alice got no ack, and sent it once: no retry');

  const history = await eventually(async () => {
    const page = await restClient(cluster.api.http, bobToken)('GET', `/v1/chat/rooms/${roomId}/messages?limit=10`);
    const found = (page.body.data?.messages ?? []) as Array<{ content: string; clientMsgId?: string }>;
    return found.some((m) => m.clientMsgId === 'last-words') ? found : undefined;
  }, 10_000);
  t.equal(history.filter((m) => m.clientMsgId === 'last-words').length, 1, 'and it is stored once');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(bob.frames.filter((f) => f.type === 'new_message' && f.message.content === 'stored as its gateway died').length, 1, 'bob got it once');
});
