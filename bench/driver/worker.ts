import WebSocket from 'ws';
import { io, type Socket as IoSocket } from 'socket.io-client';
import { Unpackr } from 'msgpackr';
import { benchToken } from '../lib/tokens.ts';
import { sourceAddress } from '../lib/net.ts';
import { encodeHistogram, newHistogram, type Histogram } from '../lib/histogram.ts';
import type { ClientSpec, Command, ConnectReply, PeerTarget, Reply } from './messages.ts';

/**
 * A load worker: a separate process (one process may hold 20,000 files here) holding many client
 * connections. It speaks chat-svc's frames over `ws` (the reference peers speak the same) or
 * Socket.IO, sends at a paced rate and records send -> deliver latency of every delivered message.
 *
 * Delivered messages are found without decoding: the content starts with `bench:<step>:<sentAt>:`,
 * and message content appears verbatim in JSON and msgpack frames alike. `sentAt` is
 * `performance.timeOrigin + performance.now()` in ms, comparable across processes on one machine.
 */
const MARKER = Buffer.from('bench:');
const SKIP = [Buffer.from('user_joined'), Buffer.from('presence_update'), Buffer.from('typing_indicator')];
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const now = () => performance.timeOrigin + performance.now();

type Frame = { type?: string; ref?: string | number; action?: string; code?: string; message?: unknown; rooms?: unknown };

interface Client {
  spec: ClientSpec;
  send(frame: Record<string, unknown>): void;
  request(frame: Record<string, unknown>, timeoutMs: number): Promise<Frame>;
  close(): void;
  welcomed: Promise<void>;
  open: boolean;
}

const clients: Client[] = [];
const steps = new Map<number, { hist: Histogram; delivered: number }>();
let deliveredInWindow = 0;
/** Acks of send_message received while a step ran (the fanout sends carry no ref: they are counted, not awaited). */
let ackedInWindow = 0;
let errors: Record<string, number> = {};
let closedSinceReport = 0;
let nextRef = 0;

function slice(text: string | Buffer, from: number, to: number): string {
  return typeof text === 'string' ? text.slice(from, to) : text.toString('latin1', from, to);
}

function recordDelivery(text: string | Buffer, at: number): void {
  const t = now();
  // bench:<step>:<sentAt>:
  const stepEnd = text.indexOf(':', at);
  const tsEnd = stepEnd < 0 ? -1 : text.indexOf(':', stepEnd + 1);
  if (tsEnd < 0) return;
  const stepId = Number(slice(text, at, stepEnd));
  const sentAt = Number(slice(text, stepEnd + 1, tsEnd));
  deliveredInWindow++;
  let step = steps.get(stepId);
  if (!step) steps.set(stepId, (step = { hist: newHistogram(), delivered: 0 }));
  step.delivered++;
  step.hist.recordValue(Math.max(1, Math.round((t - sentAt) * 1000)));
}

/** Socket.IO's ack callback of a fanout send; one function for every send, no closure per frame. */
function countSendAck(frame: Frame | undefined): void {
  if (frame?.type === 'ack') ackedInWindow++;
}

function countError(frame: Frame): void {
  const code = String(frame.code ?? 'unknown');
  errors[code] = (errors[code] ?? 0) + 1;
}

class Pending {
  private readonly waiting = new Map<string | number, { resolve: (f: Frame) => void; timer: NodeJS.Timeout }>();
  wait(ref: string | number, timeoutMs: number, what: string): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(ref);
        reject(new Error(`${what}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(ref, { resolve, timer });
    });
  }
  settle(frame: Frame): boolean {
    if (frame.ref === undefined) return false;
    const w = this.waiting.get(frame.ref);
    if (!w) return false;
    clearTimeout(w.timer);
    this.waiting.delete(frame.ref);
    w.resolve(frame);
    return true;
  }
  failAll(): void {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.resolve({ type: 'error', code: 'closed' });
    }
    this.waiting.clear();
  }
}

async function wsClient(peer: PeerTarget, spec: ClientSpec, token: string, localAddress: string, timeoutMs: number): Promise<Client> {
  const url = `${peer.urls[spec.idx % peer.urls.length]}?token=${encodeURIComponent(token)}`;
  const protocols = peer.format === 'msgpack' ? ['chat.v1.msgpack'] : [];
  const ws = new WebSocket(url, protocols, { perMessageDeflate: false, localAddress, handshakeTimeout: timeoutMs });
  const pending = new Pending();
  let welcome!: () => void;
  let fail!: (err: Error) => void;
  const welcomed = new Promise<void>((resolve, reject) => { welcome = resolve; fail = reject; });
  // connect() awaits it; a rejection after connect() gave up on the client (timeout) is expected
  welcomed.catch(() => undefined);
  const client: Client = {
    spec, open: false, welcomed,
    send: (frame) => ws.send(JSON.stringify(frame)),
    request(frame, ms) {
      const ref = ++nextRef;
      const answer = pending.wait(ref, ms, String(frame['type']));
      ws.send(JSON.stringify({ ...frame, ref }));
      return answer;
    },
    close: () => ws.terminate(),
  };
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const at = data.indexOf(MARKER);
    if (at >= 0) return recordDelivery(data, at + MARKER.length);
    for (const s of SKIP) if (data.indexOf(s) >= 0) return;
    let frame: Frame;
    try {
      frame = (isBinary ? unpackr.unpack(data) : JSON.parse(data.toString('utf8'))) as Frame;
    } catch {
      errors['undecodable'] = (errors['undecodable'] ?? 0) + 1;
      return;
    }
    if (frame.type === 'welcome') return welcome();
    if (frame.type === 'error') countError(frame);
    else if (frame.type === 'ack' && frame.action === 'send_message') ackedInWindow++;
    pending.settle(frame);
  });
  ws.on('open', () => { client.open = true; });
  ws.on('unexpected-response', (_req, res) => fail(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
  ws.on('error', (err) => fail(err));
  ws.on('close', (code, reason) => {
    const wasOpen = client.open;
    if (wasOpen) closedSinceReport++;
    client.open = false;
    pending.failAll();
    fail(new Error(`closed (${code}${reason.length ? ` ${reason.toString()}` : ''}) before welcome, ${wasOpen ? 'after' : 'before'} the upgrade`));
  });
  return client;
}

function socketIoClient(peer: PeerTarget, spec: ClientSpec, token: string, localAddress: string, timeoutMs: number): Client {
  // perMessageDeflate and localAddress are passed through to `ws` by engine.io-client but not in its types
  const wsOptions = { perMessageDeflate: false, localAddress } as object;
  const socket: IoSocket = io(peer.urls[spec.idx % peer.urls.length]!, {
    transports: ['websocket'], auth: { token }, forceNew: true, reconnection: false, timeout: timeoutMs, ...wsOptions,
  });
  let welcome!: () => void;
  let fail!: (err: Error) => void;
  const welcomed = new Promise<void>((resolve, reject) => { welcome = resolve; fail = reject; });
  welcomed.catch(() => undefined); // as for wsClient
  const client: Client = {
    spec, open: false, welcomed,
    // with an ack callback, as the other peers ack every send
    send: (frame) => socket.emit(String(frame['type']), frame, countSendAck),
    request: (frame, ms) => socket.timeout(ms).emitWithAck(String(frame['type']), frame) as Promise<Frame>,
    close: () => socket.disconnect(),
  };
  socket.on('welcome', () => { client.open = true; welcome(); });
  socket.on('new_message', (frame: { message?: { content?: string } }) => {
    const content = frame.message?.content;
    if (content?.startsWith('bench:')) recordDelivery(content, MARKER.length);
  });
  socket.on('connect_error', (err) => fail(err));
  socket.on('disconnect', (reason) => {
    if (client.open) closedSinceReport++;
    client.open = false;
    fail(new Error(`disconnected (${reason}) before welcome`));
  });
  return client;
}

async function connect(c: Extract<Command, { cmd: 'connect' }>): Promise<ConnectReply> {
  // tokens are signed before the clock starts: that is the client's work, not the server's
  const tokens = await Promise.all(c.clients.map((s) => benchToken(s.userId)));
  const ready = newHistogram();
  const failures: string[] = [];
  let failed = 0;
  let welcomedMs = 0;
  let joinedMs = 0;
  let resumedMs = 0;
  const start = performance.now();
  let next = 0;
  let retried = 0;
  const attempt = async (i: number, t0: number) => {
    const spec = c.clients[i]!;
    const localAddress = sourceAddress(spec.idx, c.sourceAddresses);
    let client: Client | undefined;
    try {
      client = c.peer.client === 'socketio'
        ? socketIoClient(c.peer, spec, tokens[i]!, localAddress, c.timeoutMs)
        : await wsClient(c.peer, spec, tokens[i]!, localAddress, c.timeoutMs);
      await withTimeout(client.welcomed, c.timeoutMs, 'welcome');
      welcomedMs = Math.max(welcomedMs, performance.now() - start);
      if (c.join) {
        const ack = await client.request({ type: 'join_room', roomId: spec.roomId }, c.timeoutMs);
        if (ack.type === 'error') throw new Error(`join_room: ${String(ack.code)}`);
        joinedMs = Math.max(joinedMs, performance.now() - start);
      }
      if (c.resume) {
        const ack = await client.request({ type: 'resume', rooms: [{ roomId: spec.roomId, ...(spec.lastMessageId ? { lastMessageId: spec.lastMessageId } : {}) }] }, c.timeoutMs);
        if (ack.type === 'error') throw new Error(`resume: ${String(ack.code)}`);
        resumedMs = Math.max(resumedMs, performance.now() - start);
      }
      ready.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
      clients.push(client);
    } catch (err) {
      client?.close();
      throw err;
    }
  };
  const one = async (i: number) => {
    const t0 = performance.now();
    for (let n = 0; ; n++) {
      try {
        return await attempt(i, t0);
      } catch (err) {
        if (failures.length < 5) failures.push((err as Error).message);
        if (n >= c.retries) {
          failed++;
          return;
        }
        retried++;
      }
    }
  };
  const lane = async () => {
    for (let i = next++; i < c.clients.length; i = next++) await one(i);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(c.concurrency, c.clients.length)) }, lane));
  return {
    id: c.id, ok: c.clients.length - failed, failed, retried, errors: failures,
    welcomedMs, joinedMs, resumedMs, readyHist: encodeHistogram(ready),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: none in ${ms} ms`)), ms); }),
  ]);
}

function content(stepId: number, payloadBytes: number): string {
  const head = `bench:${stepId}:${now().toFixed(3)}:`;
  return payloadBytes > head.length ? head + 'x'.repeat(payloadBytes - head.length) : head;
}

const TICK_MS = 5;

/** Open-loop sending at `rate` messages/s over this worker's clients, round-robin. */
function run(c: Extract<Command, { cmd: 'run' }>): Promise<Reply> {
  return new Promise((resolve) => {
    const senders = clients.filter((cl) => cl.open);
    let sent = 0;
    let sendFailures = 0;
    let rr = 0;
    deliveredInWindow = 0;
    ackedInWindow = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const tick = () => {
      const elapsed = performance.now() - t0;
      const due = Math.min(Math.floor((c.rate * Math.min(elapsed, c.durationMs)) / 1000), sent + Math.ceil(c.rate)); // at most 1 s of catch-up
      while (sent < due && senders.length > 0) {
        const cl = senders[rr++ % senders.length]!;
        try {
          cl.send({ type: 'send_message', roomId: cl.spec.roomId, content: content(c.stepId, c.payloadBytes) });
        } catch {
          sendFailures++;
        }
        sent++;
      }
      if (elapsed >= c.durationMs) {
        clearInterval(timer);
        const cpu = process.cpuUsage(cpu0);
        const reply = {
          id: c.id, sent, sendFailures, deliveredInWindow, ackedInWindow, windowMs: performance.now() - t0,
          cpuMicros: cpu.user + cpu.system, errors, closed: closedSinceReport,
        };
        errors = {};
        closedSinceReport = 0;
        resolve(reply);
      }
    };
    const timer = setInterval(tick, TICK_MS);
  });
}

/** Every client sends `perClient` messages keeping `window` unacknowledged; send -> ack latency. */
async function ingest(c: Extract<Command, { cmd: 'ingest' }>): Promise<Reply> {
  const hist = newHistogram();
  let acked = 0;
  let failed = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = Date.now() + c.timeoutMs;
  const lane = async (cl: Client, count: number) => {
    for (let i = 0; i < count && Date.now() < deadline && cl.open; i++) {
      const s = performance.now();
      const ack = await cl.request({ type: 'send_message', roomId: cl.spec.roomId, content: content(0, c.payloadBytes) }, c.timeoutMs).catch(() => ({ type: 'error', code: 'timeout' }) as Frame);
      if (ack.type === 'ack') {
        acked++;
        hist.recordValue(Math.max(1, Math.round((performance.now() - s) * 1000)));
      } else {
        failed++;
        if (ack.code === 'timeout') countError(ack);
      }
    }
  };
  const live = clients.filter((cl) => cl.open);
  await Promise.all(live.flatMap((cl) => {
    const per = Math.floor(c.perClient / c.window);
    return Array.from({ length: c.window }, (_, w) => lane(cl, per + (w < c.perClient % c.window ? 1 : 0)));
  }));
  const cpu = process.cpuUsage(cpu0);
  const reply = { id: c.id, acked, failed, elapsedMs: performance.now() - t0, cpuMicros: cpu.user + cpu.system, ackHist: encodeHistogram(hist), errors };
  errors = {};
  return reply;
}

async function handle(c: Command): Promise<Reply> {
  switch (c.cmd) {
    case 'connect':
      return connect(c);
    case 'run':
      return run(c);
    case 'stats':
      return { id: c.id, delivered: steps.get(c.stepId)?.delivered ?? 0 };
    case 'collect': {
      const step = steps.get(c.stepId);
      steps.delete(c.stepId);
      return { id: c.id, delivered: step?.delivered ?? 0, hist: step ? encodeHistogram(step.hist) : '' };
    }
    case 'ingest':
      return ingest(c);
    case 'close': {
      for (const cl of clients) cl.close();
      clients.length = 0;
      steps.clear();
      errors = {};
      closedSinceReport = 0;
      return { id: c.id };
    }
    case 'exit':
      for (const cl of clients) cl.close();
      setImmediate(() => process.exit(0));
      return { id: c.id };
    default: {
      const never: never = c;
      return { id: (never as { id: number }).id, error: 'unknown command' };
    }
  }
}

process.on('message', (c: Command) => {
  handle(c).then(
    (reply) => process.send!(reply),
    (err: unknown) => process.send!({ id: c.id, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
  );
});
// the parent went away (crash, Ctrl-C): never outlive it
process.on('disconnect', () => process.exit(0));
