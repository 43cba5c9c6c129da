import WebSocket from 'ws';
import { Packr, Unpackr } from 'msgpackr';
import { compareIds, idAtTime } from '../../shared/ids/snowflake.ts';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

type Frame = { type: string; [k: string]: any };

/** A message as the application above the client sees it: deduplicated by seq, in delivery order. */
export interface Delivered {
  seq: number;
  messageId: string;
  authorId: string;
  content: string;
}

export interface Acked {
  roomId: string;
  clientMsgId: string;
  messageId: string;
  seq: number;
  duplicate: boolean;
}

/** Error codes after which the same send is retried unchanged (same clientMsgId). */
const RETRYABLE = new Set(['unavailable', 'timeout', 'rate_limited', 'internal']);
const CONNECT_TIMEOUT_MS = 5000;
const WELCOME_TIMEOUT_MS = 10_000;

class Closed extends Error {}

/**
 * The client logic the distributed checker relies on, written out in the test so the checker does
 * not depend on the SDK: it reconnects to the next gateway when its socket closes, resumes every
 * room from the newest id it saw, drops frames whose `seq` it already delivered, and delivers
 * what arrives while resuming in stream order once `resumed` came. Sends are retried with the
 * same `clientMsgId` after a retryable error, a lost reply or a reconnect, so each lands once.
 */
export class CheckedClient {
  /** Per room, what the application saw. */
  readonly delivered = new Map<string, Delivered[]>();
  /** Frames that arrived again (same seq) and were dropped, per room. */
  readonly dropped = new Map<string, number>();
  readonly acked: Acked[] = [];
  /** Sends that got an error or no answer and were retried, by reason. */
  readonly retries = new Map<string, number>();
  /** Connection history: gateway URLs in order. */
  readonly connectedTo: string[] = [];
  /** `resumed` results of every reconnect. */
  readonly resumes: Array<Array<{ roomId: string; recovered: boolean; replayed: number }>> = [];

  readonly #seen = new Map<string, Set<number>>();
  readonly #newest = new Map<string, string>();
  readonly #pending = new Map<string, { ws: WebSocket; resolve: (f: Frame) => void; reject: (e: Error) => void }>();
  #ws: WebSocket | undefined;
  #gateway = 0;
  #ref = 0;
  #stopped = false;
  /** While resuming: frames held until `resumed`, then delivered by seq. */
  #held: Array<{ roomId: string; frame: Frame }> | undefined;
  #ready: Promise<void> = Promise.resolve();

  constructor(
    readonly user: string,
    private readonly token: string,
    readonly rooms: readonly string[],
    readonly format: 'json' | 'msgpack',
    /** Gateways' WebSocket base URLs (`ws://127.0.0.1:port`); the client starts at `first`. */
    private readonly gateways: readonly string[],
    first: number,
  ) {
    this.#gateway = first % gateways.length;
    for (const roomId of rooms) {
      this.delivered.set(roomId, []);
      this.#seen.set(roomId, new Set());
      this.dropped.set(roomId, 0);
    }
  }

  /** Connects to the first gateway; resolves after `welcome`, subscribed to the user's rooms. */
  async start(): Promise<void> {
    // a message sent after this point is one the client must see, even across a reconnect
    const since = idAtTime(Date.now() - 1000);
    for (const roomId of this.rooms) this.#newest.set(roomId, since);
    this.#ready = this.#connect(false);
    await this.#ready;
  }

  /** Sends `count` numbered messages to the room one after another, each acked before the next. */
  async sendSeries(roomId: string, count: number, opts: { pauseMs?: number; deadlineMs?: number } = {}): Promise<void> {
    for (let n = 0; n < count; n++) {
      await this.sendReliably(roomId, n, opts.deadlineMs ?? 90_000);
      if (opts.pauseMs) await sleep(opts.pauseMs);
    }
  }

  async sendReliably(roomId: string, n: number, deadlineMs: number): Promise<Acked> {
    const clientMsgId = `${this.user}.${roomId}.${n}`;
    const deadline = Date.now() + deadlineMs;
    let last = '';
    while (Date.now() < deadline) {
      if (this.#stopped) throw new Error(`${this.user}: stopped while sending ${clientMsgId}`);
      try {
        await this.#ready;
        const reply = await this.#request({ type: 'send_message', roomId, content: `${this.user} #${n}`, clientMsgId }, 10_000);
        if (reply.type === 'ack') {
          const acked = { roomId, clientMsgId, messageId: reply.messageId as string, seq: reply.seq as number, duplicate: reply.duplicate === true };
          this.acked.push(acked);
          return acked;
        }
        if (!RETRYABLE.has(reply.code)) throw new Error(`${this.user}: send ${clientMsgId} refused: ${reply.code} ${reply.message}`);
        last = `${reply.code}: ${reply.message}`;
        this.#count(reply.code);
        await sleep(typeof reply.retryAfterMs === 'number' ? reply.retryAfterMs : 200);
      } catch (err) {
        if (!(err instanceof Closed)) throw err;
        last = err.message;
        this.#count(err.message.startsWith('no reply') ? 'no reply' : 'closed');
        await sleep(100);
      }
    }
    throw new Error(`${this.user}: ${clientMsgId} not acked within ${deadlineMs} ms (last: ${last})`);
  }

  /** Delivered messages of the room, by author, as the numbers in their content. */
  numbersBy(roomId: string): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const d of this.delivered.get(roomId) ?? []) {
      const n = Number(/ #(\d+)$/.exec(d.content)?.[1] ?? NaN);
      const list = out.get(d.authorId) ?? [];
      list.push(n);
      out.set(d.authorId, list);
    }
    return out;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const ws = this.#ws;
    if (ws === undefined || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { ws.terminate(); resolve(); }, 2000);
      ws.once('close', () => { clearTimeout(timer); resolve(); });
      ws.close();
    });
  }

  // ---- connection ----

  async #connect(resume: boolean): Promise<void> {
    let attempt = 0;
    for (;;) {
      if (this.#stopped) throw new Closed('stopped');
      const url = this.gateways[this.#gateway]!;
      try {
        await this.#open(url, resume);
        return;
      } catch (err) {
        if (this.#stopped) throw new Closed('stopped');
        // that gateway is gone or refuses: try the next one
        this.#gateway = (this.#gateway + 1) % this.gateways.length;
        if (++attempt > 200) throw new Error(`${this.user}: no gateway accepted a connection: ${(err as Error).message}`);
        await sleep(Math.min(1000, 50 * attempt));
      }
    }
  }

  async #open(url: string, resume: boolean): Promise<void> {
    const ws = new WebSocket(`${url}/chat?token=${encodeURIComponent(this.token)}`, this.format === 'msgpack' ? ['chat.v1.msgpack'] : [], { handshakeTimeout: CONNECT_TIMEOUT_MS });
    // hold live frames from the first one on: a missed message replayed later must come before them
    if (resume) this.#held = [];
    let welcome!: (f: Frame) => void;
    const welcomed = new Promise<Frame>((r) => { welcome = r; });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const frame = (isBinary ? unpackr.unpack(data) : JSON.parse(data.toString('utf8'))) as Frame;
      if (frame.type === 'welcome') welcome(frame);
      this.#onFrame(frame);
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    ws.on('error', () => { /* the close event that follows handles it */ });
    ws.on('close', () => this.#onClose(ws));
    try {
      const w = await Promise.race([welcomed, sleep(WELCOME_TIMEOUT_MS).then(() => undefined)]);
      if (w === undefined) throw new Error(`no welcome from ${url}`);
      const missing = this.rooms.filter((r) => !(w.rooms as string[]).includes(r));
      if (missing.length) throw new Error(`${this.user}: welcome from ${url} lacks rooms ${missing.join(', ')}`);
      if (resume) {
        const rooms = this.rooms.map((roomId) => ({ roomId, lastMessageId: this.#newest.get(roomId)! }));
        const reply = await this.#request({ type: 'resume', rooms }, 30_000, ws);
        if (reply.type !== 'ack') throw new Error(`resume on ${url} failed: ${reply.code} ${reply.message}`);
      }
    } catch (err) {
      ws.terminate();
      throw err;
    }
    if (ws.readyState !== WebSocket.OPEN) throw new Error(`${url} closed the socket while it was being set up`);
    this.#ws = ws;
    this.connectedTo.push(url);
  }

  #onClose(ws: WebSocket): void {
    for (const [ref, p] of this.#pending) {
      if (p.ws !== ws) continue;
      this.#pending.delete(ref);
      p.reject(new Closed('socket closed'));
    }
    // only an established connection reconnects; one being set up is retried by #connect
    if (this.#ws !== ws) return;
    this.#ws = undefined;
    if (this.#stopped) return;
    this.#held = undefined;
    this.#ready = this.#connect(true);
    this.#ready.catch(() => { /* sendReliably reports it, with its deadline */ });
  }

  #request(frame: Record<string, unknown>, timeoutMs: number, ws = this.#ws): Promise<Frame> {
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return Promise.reject(new Closed('not connected'));
    const ref = `r${++this.#ref}`;
    const full = { ...frame, ref };
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(ref);
        reject(new Closed(`no reply to ${String(frame['type'])} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(ref, {
        ws,
        resolve: (f) => { clearTimeout(timer); resolve(f); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      ws.send(this.format === 'msgpack' ? packr.pack(full) : JSON.stringify(full));
    });
  }

  // ---- frames ----

  #onFrame(frame: Frame): void {
    if ((frame.type === 'ack' || frame.type === 'error') && frame.ref !== undefined) {
      const p = this.#pending.get(String(frame.ref));
      if (p) {
        this.#pending.delete(String(frame.ref));
        p.resolve(frame);
      }
      return;
    }
    if (frame.type === 'resumed') {
      this.resumes.push(frame.rooms);
      const held = this.#held ?? [];
      this.#held = undefined;
      held.sort((a, b) => a.frame.seq - b.frame.seq);
      for (const h of held) this.#deliver(h.roomId, h.frame);
      return;
    }
    if (frame.type !== 'new_message') return;
    const roomId = frame.roomId as string;
    if (!this.#seen.has(roomId)) return;
    if (this.#held) this.#held.push({ roomId, frame });
    else this.#deliver(roomId, frame);
  }

  #deliver(roomId: string, frame: Frame): void {
    const seen = this.#seen.get(roomId)!;
    if (seen.has(frame.seq)) {
      this.dropped.set(roomId, this.dropped.get(roomId)! + 1);
      return;
    }
    seen.add(frame.seq);
    const m = frame.message;
    this.delivered.get(roomId)!.push({ seq: frame.seq, messageId: m.messageId, authorId: m.authorId, content: m.content });
    if (compareIds(m.messageId, this.#newest.get(roomId)!) > 0) this.#newest.set(roomId, m.messageId);
  }

  #count(reason: string): void {
    this.retries.set(reason, (this.retries.get(reason) ?? 0) + 1);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
