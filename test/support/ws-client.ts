import WebSocket from 'ws';
import { Packr, Unpackr } from 'msgpackr';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export type Frame = { type: string; [k: string]: any };

/**
 * A bare WebSocket client for tests: records every frame, waits for frames by predicate, and
 * sends JSON or msgpack exactly as given (so tests can also send garbage).
 */
export class TestClient {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;
  private waiters: Array<{ pred: (f: Frame) => boolean; resolve: (f: Frame) => void; from: number }> = [];
  private ref = 0;

  private constructor(readonly ws: WebSocket, readonly format: 'json' | 'msgpack') {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const frame = (isBinary ? unpackr.unpack(data) : JSON.parse(data.toString('utf8'))) as Frame;
      this.frames.push(frame);
      this.waiters = this.waiters.filter((w) => {
        if (w.pred(frame)) { w.resolve(frame); return false; }
        return true;
      });
    });
    ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; });
  }

  static async connect(url: string, opts: { token?: string; format?: 'json' | 'msgpack'; query?: string; headers?: Record<string, string> } = {}): Promise<TestClient> {
    const format = opts.format ?? 'json';
    const qs = [opts.token ? `token=${encodeURIComponent(opts.token)}` : '', opts.query ?? ''].filter(Boolean).join('&');
    const ws = new WebSocket(`${url}${qs ? `?${qs}` : ''}`, format === 'msgpack' ? ['chat.v1.msgpack'] : [], { headers: opts.headers });
    const client = new TestClient(ws, format);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
    });
    return client;
  }

  /** Sends a frame in this client's format; returns the ref it carries. */
  send(frame: Record<string, unknown>): string {
    const ref = (frame['ref'] as string | undefined) ?? `r${++this.ref}`;
    const full = { ...frame, ref };
    this.ws.send(this.format === 'msgpack' ? packr.pack(full) : JSON.stringify(full));
    return ref;
  }

  sendRaw(data: string | Buffer, binary = typeof data !== 'string'): void {
    this.ws.send(data, { binary });
  }

  /** Sends and waits for the ack or error with the same ref. */
  async request(frame: Record<string, unknown>, timeoutMs = 5000): Promise<Frame> {
    const from = this.frames.length;
    const ref = this.send(frame);
    return this.next((f) => (f.type === 'ack' || f.type === 'error') && f.ref === ref, timeoutMs, from);
  }

  /** The first frame matching, among frames received since index `from` (default: all so far). */
  next(pred: (f: Frame) => boolean, timeoutMs = 5000, from = 0): Promise<Frame> {
    const found = this.frames.slice(from).find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = { pred, resolve: (f: Frame) => { clearTimeout(timer); resolve(f); }, from };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no matching frame in ${timeoutMs} ms; last frames: ${JSON.stringify(this.frames.slice(-5))}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Frames of a type received so far. */
  all(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((r) => { this.ws.once('close', () => r()); this.ws.close(); });
  }
}
