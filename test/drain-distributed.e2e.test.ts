import t from 'tap';
import WebSocket from 'ws';
import { startNatsServer } from './support/nats-server.ts';
import { startChatCluster } from './support/chat-cluster.ts';
import { readHistory } from './support/exactly-once.ts';
import { eventually } from './support/rest.ts';
import { TestClient } from './support/ws-client.ts';
import { devToken } from './support/tokens.ts';
import { ChatClient, type ChatClientOptions } from '../shared/client/index.ts';

/**
 * Graceful drain of one gateway under load, in the distributed deployment as real processes:
 * 2 × `chat gateway`, 2 × `chat persister` and `chat api` on NATS JetStream, SDK clients spread over
 * both gateways sending continuously (each send with its clientMsgId) in three rooms. SIGTERM to
 * one gateway mid-load: its clients get `reconnect` and move to the other gateway, and every
 * acknowledged message reaches every member exactly once and is stored exactly once.
 *
 * The NATS server is private to the test (as in distributed.e2e.test.ts): the stream captures
 * `chat.durable.>`, which no second stream on a shared server may, and a shared durable consumer
 * would hand this deployment's events to other tests' persisters.
 */
const GRACE_MS = 4000;
const CLIENTS = 6;
const ROOMS = 3;
/** Pause between a sender's messages to one room: continuous, but not a flood on a shared machine. */
const PAUSE_MS = 25;

const nats = await startNatsServer();
t.teardown(() => nats.destroy());
const cluster = await startChatCluster({
  natsUrl: nats.url, gateways: 2, persisters: 2,
  env: { DRAIN_GRACE_MS: String(GRACE_MS), RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000', PERSIST_INTERVAL_MS: '50' },
});
t.teardown(() => cluster.stop());

interface Sdk {
  user: string;
  client: ChatClient;
  /** Ports of the gateways its WebSockets were opened to, in order. */
  ports: number[];
  /** Message ids of `message` events, per room, in arrival order. */
  got: Map<string, string[]>;
  acked: Array<{ roomId: string; clientMsgId: string; messageId: string; duplicate: boolean }>;
  reconnectFrames: number;
  disconnects: Array<{ code: number; at: number }>;
}

t.test('drain - SIGTERM to a gateway under load: clients move to the other gateway, nothing acked is lost or duplicated', async (t) => {
  const [victim, survivor] = cluster.gateways as [typeof cluster.gateways[0], typeof cluster.gateways[0]];
  const users = Array.from({ length: CLIENTS }, (_, i) => `drain-u${i}`);
  const tokens = await Promise.all(users.map((u) => devToken(u, { expiresIn: '1h' })));

  const sdks: Sdk[] = users.map((user, i) => {
    const ports: number[] = [];
    class TrackedWebSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        ports.push(Number(new URL(url).port));
      }
    }
    // client i starts on gateway i % 2; both are in every client's list
    const gateways = i % 2 === 0 ? [victim.http, survivor.http] : [survivor.http, victim.http];
    const opts: ChatClientOptions = {
      url: cluster.api.http, gateways, token: tokens[i]!, WebSocket: TrackedWebSocket as never,
      format: i % 2 === 0 ? 'json' : 'msgpack', reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
    };
    return { user, client: new ChatClient(opts), ports, got: new Map(), acked: [], reconnectFrames: 0, disconnects: [] };
  });
  t.teardown(() => { for (const s of sdks) s.client.close(); });

  const roomIds: string[] = [];
  for (let k = 0; k < ROOMS; k++) roomIds.push((await sdks[0]!.client.rest.createRoom({ name: `drain ${k}`, type: 'public' })).roomId);
  await Promise.all(sdks.slice(1).flatMap((s) => roomIds.map((r) => s.client.rest.joinRoom(r))));
  for (const s of sdks) {
    for (const r of roomIds) s.got.set(r, []);
    s.client.on('message', (f) => s.got.get(f.roomId)?.push(f.message.messageId));
    s.client.on('frame', (f) => { if (f.type === 'reconnect') s.reconnectFrames++; });
    s.client.on('disconnected', (d) => s.disconnects.push({ code: d.code, at: Date.now() }));
  }
  await Promise.all(sdks.map((s) => s.client.connect()));
  const onVictim = sdks.filter((s) => s.ports[0] === victim.port);
  t.equal(onVictim.length, CLIENTS / 2, 'half of the clients start on the gateway to be drained');

  // a raw socket that ignores `reconnect`: the gateway has to close it itself, after the grace
  const raw = await TestClient.connect(`${victim.ws}/chat`, { token: await devToken('drain-raw') });
  await raw.next((f) => f.type === 'welcome');
  const rawClosedAt = new Promise<number>((r) => raw.ws.once('close', () => r(Date.now())));

  let sending = true;
  const series = sdks.flatMap((s) => roomIds.map(async (roomId) => {
    for (let n = 0; sending; n++) {
      const clientMsgId = `${s.user}.${roomId}.${n}`;
      const ack = await s.client.send(roomId, `${s.user} #${n}`, { clientMsgId });
      s.acked.push({ roomId, clientMsgId, messageId: ack.messageId, duplicate: ack.duplicate });
      await new Promise((r) => setTimeout(r, PAUSE_MS));
    }
  }));
  const allSent = Promise.all(series);
  allSent.catch(() => {}); // awaited below; an early rejection must not go unhandled meanwhile
  const ackedCount = () => sdks.reduce((sum, s) => sum + s.acked.length, 0);
  await eventually(async () => ackedCount() >= 90, 30_000);

  // readiness of the victim, probed until it stops listening
  const probes: Array<{ status: number; at: number; draining: boolean }> = [];
  let probing = true;
  const prober = (async () => {
    while (probing) {
      try {
        const res = await fetch(`${victim.http}/health/ready`);
        const body = await res.json() as { checks?: Record<string, string> };
        probes.push({ status: res.status, at: Date.now(), draining: body.checks?.['draining'] !== undefined });
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  await eventually(async () => probes.length > 0, 10_000);
  t.equal(probes[0]!.status, 200, 'the gateway is ready before SIGTERM');
  const ackedBefore = ackedCount();
  const signalledAt = Date.now();
  victim.child.kill('SIGTERM');
  t.comment(`SIGTERM to gateway :${victim.port} with ${ackedBefore} sends acked`);

  // its SDK clients leave on `reconnect` and come back on the survivor
  await eventually(async () => onVictim.every((s) => s.ports.at(-1) === survivor.port && s.client.state === 'open'), 20_000);
  const movedAt = Date.now();
  const ackedAtMove = ackedCount();
  await eventually(async () => ackedCount() >= ackedAtMove + 60, 20_000);
  sending = false;
  await allSent;

  const exitCode = await Promise.race([victim.exited, new Promise<string>((r) => setTimeout(() => r('still running'), GRACE_MS + 15_000))]);
  const exitedAt = Date.now();
  probing = false;
  await prober;
  t.equal(exitCode, 0, 'the drained gateway exits 0');
  t.ok(exitedAt - signalledAt < GRACE_MS + 15_000, `within the grace and the shutdown margin (${exitedAt - signalledAt} ms)`);

  for (const s of onVictim) {
    t.ok(s.reconnectFrames >= 1, `${s.user} got the reconnect frame`);
    t.ok(s.disconnects.length >= 1 && s.disconnects[0]!.code === 1001, `${s.user} left the draining gateway (disconnected ${s.disconnects.map((d) => d.code).join(',')})`);
    t.equal(s.ports[1], survivor.port, `${s.user} reconnected straight to the other gateway, the next in its list (sockets to: ${s.ports.join(', ')})`);
  }
  t.ok(sdks.filter((s) => !onVictim.includes(s)).every((s) => s.disconnects.length === 0), 'clients of the other gateway were not disturbed');
  const rawClosed = await rawClosedAt;
  t.same(raw.closed, { code: 1001, reason: 'server draining' }, 'a socket that ignored the frame was closed with 1001 after the grace');
  t.ok(Math.max(...onVictim.map((s) => s.disconnects[0]?.at ?? Infinity)) < rawClosed, 'the SDK clients left before the gateway closed what remained');

  const firstNotReady = probes.find((p) => p.status === 503);
  const transitions = probes.map((p) => p.status).filter((s, i, all) => i === 0 || all[i - 1] !== s);
  t.ok(firstNotReady?.draining, `/health/ready answered 503 naming the drain (${probes.length} probes: ${transitions.join(' -> ')})`);
  t.ok(firstNotReady && firstNotReady.at < rawClosed, '503 came before the gateway closed its sockets');
  t.notOk(probes.some((p) => p.status === 200 && firstNotReady && p.at > firstNotReady.at), 'and it never turned ready again');

  // every acked message reached every member exactly once
  const ackedIds = new Map<string, Set<string>>(roomIds.map((r) => [r, new Set<string>()]));
  for (const s of sdks) for (const a of s.acked) ackedIds.get(a.roomId)!.add(a.messageId);
  const total = [...ackedIds.values()].reduce((sum, ids) => sum + ids.size, 0);
  await eventually(async () => sdks.every((s) => roomIds.every((r) => new Set(s.got.get(r)).size >= ackedIds.get(r)!.size)), 20_000).catch(() => {});
  const problems: string[] = [];
  for (const s of sdks) {
    for (const r of roomIds) {
      const counts = new Map<string, number>();
      for (const id of s.got.get(r)!) counts.set(id, (counts.get(id) ?? 0) + 1);
      const missing = [...ackedIds.get(r)!].filter((id) => !counts.has(id));
      const repeated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
      const unknown = [...counts.keys()].filter((id) => !ackedIds.get(r)!.has(id));
      if (missing.length) problems.push(`${s.user} in ${r}: ${missing.length} acked messages missing`);
      if (repeated.length) problems.push(`${s.user} in ${r}: ${repeated.length} delivered more than once`);
      if (unknown.length) problems.push(`${s.user} in ${r}: ${unknown.length} never acked to anyone`);
    }
  }
  t.same(problems.slice(0, 20), [], `every client got each of the ${total} acked messages of its rooms exactly once`);

  // and the store holds each exactly once, under the id its sender was acked with
  const storeProblems = async () => {
    const out: string[] = [];
    for (const r of roomIds) {
      const history = await readHistory(cluster.api.http, tokens[0]!, r);
      const ids = history.map((m) => m.messageId);
      const byClientMsgId = new Map<string, number>();
      for (const m of history) byClientMsgId.set(m.clientMsgId ?? '', (byClientMsgId.get(m.clientMsgId ?? '') ?? 0) + 1);
      const missing = [...ackedIds.get(r)!].filter((id) => !ids.includes(id));
      if (missing.length) out.push(`${r}: ${missing.length} acked messages not stored`);
      if (new Set(ids).size !== ids.length) out.push(`${r}: a message id stored twice`);
      if ([...byClientMsgId.values()].some((n) => n > 1)) out.push(`${r}: a clientMsgId stored twice`);
      if (ids.length !== ackedIds.get(r)!.size) out.push(`${r}: ${ids.length} stored, ${ackedIds.get(r)!.size} acked`);
    }
    return out;
  };
  let stored = await storeProblems();
  const deadline = Date.now() + 20_000;
  while (stored.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    stored = await storeProblems();
  }
  t.same(stored, [], 'REST history holds every acked message exactly once');

  const duplicates = sdks.reduce((sum, s) => sum + s.acked.filter((a) => a.duplicate).length, 0);
  t.comment(`${total} messages acked (${ackedBefore} before SIGTERM); clients moved ${movedAt - signalledAt} ms after it; `
    + `${duplicates} sends were resent and acked as duplicates; exit ${exitedAt - signalledAt} ms after SIGTERM`);
});

t.test('drain - SIGTERM to a persister under load: it stops pulling, finishes its batch and exits 0; the other writes the rest', async (t) => {
  const gateway = cluster.gateways.find((g) => g.child.exitCode === null)!;
  const [victim, other] = cluster.persisters as [typeof cluster.persisters[0], typeof cluster.persisters[0]];
  const users = ['drain-p0', 'drain-p1'];
  const tokens = await Promise.all(users.map((u) => devToken(u)));
  const clients = users.map((_, i) => new ChatClient({ url: cluster.api.http, gateways: [gateway.http], token: tokens[i]!, WebSocket: WebSocket as never }));
  t.teardown(() => { for (const c of clients) c.close(); });
  const roomId = (await clients[0]!.rest.createRoom({ name: 'persister drain', type: 'public' })).roomId;
  await clients[1]!.rest.joinRoom(roomId);
  await Promise.all(clients.map((c) => c.connect()));

  const acked = new Set<string>();
  let sending = true;
  const series = Promise.all(clients.map(async (c, i) => {
    for (let n = 0; sending; n++) {
      acked.add((await c.send(roomId, `${users[i]} #${n}`, { clientMsgId: `${users[i]}.${n}` })).messageId);
      await new Promise((r) => setTimeout(r, PAUSE_MS));
    }
  }));
  series.catch(() => {});
  await eventually(async () => acked.size >= 40, 20_000);
  const signalledAt = Date.now();
  victim.child.kill('SIGTERM');
  const exitCode = await Promise.race([victim.exited, new Promise<string>((r) => setTimeout(() => r('still running'), GRACE_MS + 15_000))]);
  const exitMs = Date.now() - signalledAt;
  const ackedAtExit = acked.size;
  await eventually(async () => acked.size >= ackedAtExit + 40, 20_000);
  sending = false;
  await series;
  t.equal(exitCode, 0, `the persister exits 0 (${exitMs} ms after SIGTERM, load still running)`);
  t.ok(exitMs < GRACE_MS + 10_000, 'within the grace and the shutdown margin');
  t.notOk(victim.output.some((l) => l.includes('shutdown timed out')), 'without timing out');

  let missing: string[] = [];
  const deadline = Date.now() + 20_000;
  for (;;) {
    const stored = (await readHistory(cluster.api.http, tokens[0]!, roomId)).map((m) => m.messageId);
    missing = [...acked].filter((id) => !stored.includes(id));
    if ((missing.length === 0 && stored.length === acked.size) || Date.now() > deadline) {
      t.equal(stored.length, new Set(stored).size, 'nothing is stored twice');
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  t.same(missing, [], `every one of the ${acked.size} acked messages is stored (the other persister wrote what was left)`);
  t.equal(other.child.exitCode, null, 'the other persister still runs');
});
