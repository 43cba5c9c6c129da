import type { Test } from 'tap';
import { CheckedClient } from './checked-client.ts';
import { restClient } from './rest.ts';
import { devToken } from './tokens.ts';

/**
 * The exactly-once checker shared by the distributed and the embedded end-to-end tests.
 *
 * Clients spread over the gateways (JSON and msgpack alternating) join shared rooms; each sends
 * a numbered series to each of its rooms, every message acked before the next. The checker then
 * proves that every client saw every message of its rooms exactly once and in each sender's
 * order, and that the store (REST history through the api) holds each exactly once, under the
 * id its sender was acked with.
 */
export interface Topology {
  /** WebSocket base URLs of the gateways (`ws://127.0.0.1:port`); one for `chat all`. */
  gateways: string[];
  /** REST base URL: the api tier, or `chat all`. */
  api: string;
}

export interface ExchangePlan {
  /** Makes users and room names unique per exchange, so several can share one deployment. */
  tag: string;
  clients: number;
  rooms: number;
  perSender: number;
  /** Pause between a sender's messages, to stretch the exchange over a fault. */
  pauseMs?: number;
  /** How long one message may take to be acked, retries included. */
  sendDeadlineMs?: number;
}

export interface Exchange {
  plan: ExchangePlan;
  clients: CheckedClient[];
  /** Room id -> user ids of its members (every member is also a sender). */
  members: Map<string, string[]>;
  /** Resolves once every series is acked; rejects with the first send that never was. */
  sending: Promise<void>;
  /** Messages every sender together will have sent. */
  total: number;
  acked(): number;
  stop(): Promise<void>;
}

export async function startExchange(topology: Topology, plan: ExchangePlan): Promise<Exchange> {
  const users = Array.from({ length: plan.clients }, (_, i) => `${plan.tag}-u${i}`);
  const tokens = await Promise.all(users.map((u) => devToken(u, { expiresIn: '2h' })));
  const rest = restClient(topology.api, tokens[0]);

  // room 0 holds everyone; room k > 0 leaves out one group of clients, so rooms differ in members
  // while each still spans every gateway (client i is on gateway i % gateways)
  const groups = plan.rooms;
  const members = new Map<string, string[]>();
  for (let k = 0; k < plan.rooms; k++) {
    const created = await rest('POST', '/v1/chat/rooms', { name: `${plan.tag} room ${k}`, type: 'public' });
    if (created.status !== 201) throw new Error(`creating a room failed: ${created.status} ${JSON.stringify(created.body)}`);
    const roomId = created.body.data.roomId as string;
    const inRoom = users.filter((_, i) => k === 0 || Math.floor((i * groups) / plan.clients) !== k - 1);
    members.set(roomId, inRoom);
    await Promise.all(inRoom.map(async (u) => {
      if (u === users[0]) return; // the creator is a member already
      const joined = await restClient(topology.api, tokens[users.indexOf(u)])('POST', `/v1/chat/rooms/${roomId}/join`);
      if (joined.status !== 200) throw new Error(`${u} could not join ${roomId}: ${joined.status} ${JSON.stringify(joined.body)}`);
    }));
  }

  const clients = users.map((u, i) => new CheckedClient(
    u, tokens[i]!, [...members].filter(([, m]) => m.includes(u)).map(([r]) => r),
    i % 2 === 0 ? 'json' : 'msgpack', topology.gateways, i,
  ));
  await Promise.all(clients.map((c) => c.start()));

  const total = [...members.values()].reduce((sum, m) => sum + m.length * plan.perSender, 0);
  const sending = Promise.all(clients.flatMap((c) => c.rooms.map((roomId) => c.sendSeries(roomId, plan.perSender, {
    ...(plan.pauseMs !== undefined ? { pauseMs: plan.pauseMs } : {}),
    ...(plan.sendDeadlineMs !== undefined ? { deadlineMs: plan.sendDeadlineMs } : {}),
  })))).then(() => undefined);
  // the test awaits it, possibly after a fault; don't let an early failure go unhandled meanwhile
  sending.catch(() => {});
  return {
    plan, clients, members, sending, total,
    acked: () => clients.reduce((sum, c) => sum + c.acked.length, 0),
    stop: async () => { await Promise.all(clients.map((c) => c.stop())); },
  };
}

/** Resolves once `exchange.acked()` reached `fraction` of the total (to inject a fault mid-stream). */
export async function whenAcked(exchange: Exchange, fraction: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (exchange.acked() < exchange.total * fraction) {
    if (Date.now() > deadline) throw new Error(`only ${exchange.acked()} of ${exchange.total} acked after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What each client saw that it should not have, as readable lines (empty: all good). */
export function deliveryProblems(exchange: Exchange): string[] {
  const problems: string[] = [];
  for (const c of exchange.clients) {
    for (const roomId of c.rooms) {
      const got = c.numbersBy(roomId);
      for (const sender of exchange.members.get(roomId)!) {
        problems.push(...seriesProblems(`${c.user} in ${roomId} from ${sender}`, got.get(sender) ?? [], exchange.plan.perSender));
      }
      for (const author of got.keys()) {
        if (!exchange.members.get(roomId)!.includes(author)) problems.push(`${c.user} in ${roomId}: a message from ${author}, who is not in the room`);
      }
    }
  }
  return problems;
}

/** Missing, repeated and out-of-order numbers of one series. */
function seriesProblems(what: string, got: number[], count: number): string[] {
  const out: string[] = [];
  const seen = new Map<number, number>();
  for (const n of got) seen.set(n, (seen.get(n) ?? 0) + 1);
  const missing = Array.from({ length: count }, (_, n) => n).filter((n) => !seen.has(n));
  const repeated = [...seen].filter(([, times]) => times > 1).map(([n]) => n);
  if (missing.length) out.push(`${what}: missing ${summarize(missing)}`);
  if (repeated.length) out.push(`${what}: repeated ${summarize(repeated)}`);
  const swapped = got.findIndex((n, i) => i > 0 && n <= got[i - 1]!);
  if (swapped > 0 && !repeated.length) out.push(`${what}: out of order at ${got[swapped - 1]} -> ${got[swapped]}`);
  return out;
}

function summarize(ns: number[]): string {
  return ns.length > 10 ? `${ns.slice(0, 10).join(',')}... (${ns.length})` : ns.join(',');
}

/** Waits until every client saw as many messages as its rooms will hold (or the time is up). */
export async function settleDeliveries(exchange: Exchange, timeoutMs: number): Promise<void> {
  const expected = (c: CheckedClient) => c.rooms.reduce((s, r) => s + exchange.members.get(r)!.length * exchange.plan.perSender, 0);
  const got = (c: CheckedClient) => c.rooms.reduce((s, r) => s + c.delivered.get(r)!.length, 0);
  const deadline = Date.now() + timeoutMs;
  while (exchange.clients.some((c) => got(c) < expected(c)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface StoredMessage { messageId: string; authorId: string; content: string; clientMsgId?: string }

/** Every message of the room's main timeline, oldest first, read page by page through REST. */
export async function readHistory(api: string, token: string, roomId: string): Promise<StoredMessage[]> {
  const rest = restClient(api, token);
  const all: StoredMessage[] = [];
  let before: string | undefined;
  for (;;) {
    const page = await rest('GET', `/v1/chat/rooms/${roomId}/messages?limit=100${before ? `&before=${before}` : ''}`);
    if (page.status !== 200) throw new Error(`history of ${roomId}: ${page.status} ${JSON.stringify(page.body)}`);
    const messages = page.body.data.messages as StoredMessage[];
    all.push(...messages);
    if (!page.body.data.pagination.hasMore || messages.length === 0) break;
    before = page.body.data.pagination.before;
  }
  return all.reverse();
}

/** What the store holds that it should not, or lacks, as readable lines (empty: all good). */
export async function storeProblems(exchange: Exchange, api: string): Promise<string[]> {
  const token = await devToken(exchange.clients[0]!.user);
  const problems: string[] = [];
  const ackedIds = new Map<string, string>();
  for (const c of exchange.clients) for (const a of c.acked) ackedIds.set(a.clientMsgId, a.messageId);
  for (const [roomId, senders] of exchange.members) {
    const history = await readHistory(api, token, roomId);
    const byClientMsgId = new Map<string, StoredMessage[]>();
    for (const m of history) {
      const key = m.clientMsgId ?? `(none) ${m.messageId}`;
      byClientMsgId.set(key, [...(byClientMsgId.get(key) ?? []), m]);
    }
    for (const sender of senders) {
      const missing: number[] = [];
      for (let n = 0; n < exchange.plan.perSender; n++) {
        const clientMsgId = `${sender}.${roomId}.${n}`;
        const stored = byClientMsgId.get(clientMsgId) ?? [];
        byClientMsgId.delete(clientMsgId);
        if (stored.length === 0) missing.push(n);
        else if (stored.length > 1) problems.push(`store ${roomId}: ${clientMsgId} stored ${stored.length} times`);
        else if (ackedIds.get(clientMsgId) !== stored[0]!.messageId) {
          problems.push(`store ${roomId}: ${clientMsgId} stored as ${stored[0]!.messageId} but acked as ${ackedIds.get(clientMsgId)}`);
        }
      }
      if (missing.length) problems.push(`store ${roomId} from ${sender}: missing ${summarize(missing)}`);
    }
    for (const [key, extra] of byClientMsgId) problems.push(`store ${roomId}: unexpected ${key} (${extra.length})`);
  }
  return problems;
}

/** Waits (bounded) until the store holds everything, then asserts deliveries and the store. */
export async function verifyExchange(t: Test, exchange: Exchange, api: string, opts: { deliverMs?: number; storeMs?: number } = {}): Promise<void> {
  await settleDeliveries(exchange, opts.deliverMs ?? 20_000);
  const delivery = deliveryProblems(exchange);
  t.same(delivery.slice(0, 30), [], `every client got every message of its rooms exactly once, in each sender's order (${delivery.length} problems)`);

  // the store lags the acks by a batch, and by the ack wait when a persister died holding events
  const deadline = Date.now() + (opts.storeMs ?? 30_000);
  let stored = await storeProblems(exchange, api);
  while (stored.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    stored = await storeProblems(exchange, api);
  }
  t.same(stored.slice(0, 30), [], `the store holds every acked message exactly once, under its acked id (${stored.length} problems)`);

  const retries = new Map<string, number>();
  for (const c of exchange.clients) for (const [why, n] of c.retries) retries.set(why, (retries.get(why) ?? 0) + n);
  const dropped = exchange.clients.reduce((s, c) => s + [...c.dropped.values()].reduce((a, b) => a + b, 0), 0);
  const reconnects = exchange.clients.reduce((s, c) => s + c.connectedTo.length - 1, 0);
  const duplicates = exchange.clients.reduce((s, c) => s + c.acked.filter((a) => a.duplicate).length, 0);
  t.comment(`${exchange.total} messages; retried sends ${JSON.stringify(Object.fromEntries(retries))}, `
    + `acked as duplicate ${duplicates}, reconnects ${reconnects}, repeated frames dropped by seq ${dropped}`);
}
