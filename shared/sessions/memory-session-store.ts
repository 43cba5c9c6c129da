import { SessionContextTooLargeError } from './context-too-large.ts';
import {
  contextBytes, SESSION_CONTEXT_MAX_BYTES,
  type ChannelSession, type InboundTouch, type JsonValue, type SessionKey, type SessionStore,
} from './session-store.ts';

/** Sessions of one process (embedded mode). Expired sessions are dropped when read and by a sweep. */
export interface MemorySessionStoreOptions {
  /** ms since epoch; default Date.now. */
  now?: () => number;
  sweepIntervalMs?: number;
}

const MAX_SWEEP_INTERVAL_MS = 60_000;

interface Entry {
  sessionId: string;
  platform: string;
  externalUserId: string;
  roomId: string;
  startedAt: number;
  lastActivityAt: number;
  inbound: number;
  outbound: number;
  /** key -> JSON text, as the Redis adapter keeps it, so both measure the same bytes. */
  context: Map<string, string>;
}

// joined with a character no id holds, so tenants, platforms and people cannot collide
const keyOf = (k: SessionKey) => `${k.tenant}\u0000${k.platform}\u0000${k.externalUserId}`;

export function createMemorySessionStore(cfg: { ttlSec: number }, opts: MemorySessionStoreOptions = {}): SessionStore {
  return new MemorySessionStore(cfg.ttlSec, opts);
}

class MemorySessionStore implements SessionStore {
  readonly kind = 'memory' as const;
  readonly ttlSec: number;
  readonly #ttlMs: number;
  readonly #clock: () => number;
  readonly #sessions = new Map<string, Entry>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(ttlSec: number, opts: MemorySessionStoreOptions) {
    this.ttlSec = ttlSec;
    this.#ttlMs = ttlSec * 1000;
    this.#clock = opts.now ?? Date.now;
    this.#sweeper = setInterval(() => this.#sweep(), opts.sweepIntervalMs ?? Math.min(MAX_SWEEP_INTERVAL_MS, this.#ttlMs));
    this.#sweeper.unref();
  }

  async touchInbound(key: SessionKey, touch: InboundTouch): Promise<{ session: ChannelSession; started: boolean }> {
    const k = keyOf(key);
    let entry = this.#live(k);
    const started = entry === undefined;
    if (entry === undefined) {
      entry = {
        sessionId: touch.newSessionId, platform: key.platform, externalUserId: key.externalUserId, roomId: touch.roomId,
        startedAt: touch.at, lastActivityAt: touch.at, inbound: 0, outbound: 0, context: new Map(),
      };
      this.#sessions.set(k, entry);
    }
    const messageId = JSON.stringify(touch.platformMessageId);
    if (entry.context.get('lastInboundMessageId') !== messageId) entry.inbound++;
    entry.context.set('lastInboundMessageId', messageId);
    for (const [name, value] of Object.entries(touch.context ?? {})) entry.context.set(name, JSON.stringify(value));
    entry.roomId = touch.roomId;
    entry.lastActivityAt = touch.at;
    return { session: this.#view(entry), started };
  }

  async touchOutbound(key: SessionKey, at: number): Promise<ChannelSession | undefined> {
    const entry = this.#live(keyOf(key));
    if (entry === undefined) return undefined;
    entry.outbound++;
    entry.lastActivityAt = at;
    return this.#view(entry);
  }

  async get(key: SessionKey): Promise<ChannelSession | undefined> {
    const entry = this.#live(keyOf(key));
    return entry && this.#view(entry);
  }

  async mergeContext(key: SessionKey, patch: Record<string, JsonValue | null>): Promise<ChannelSession | undefined> {
    const entry = this.#live(keyOf(key));
    if (entry === undefined) return undefined;
    const next = new Map(entry.context);
    for (const [name, value] of Object.entries(patch)) {
      if (value === null) next.delete(name);
      else next.set(name, JSON.stringify(value));
    }
    const bytes = contextBytes(next);
    if (bytes > SESSION_CONTEXT_MAX_BYTES) throw new SessionContextTooLargeError(bytes);
    entry.context = next;
    return this.#view(entry);
  }

  async close(): Promise<void> {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#sessions.clear();
  }

  #live(k: string): Entry | undefined {
    const entry = this.#sessions.get(k);
    if (entry === undefined) return undefined;
    if (entry.lastActivityAt + this.#ttlMs > this.#clock()) return entry;
    this.#sessions.delete(k);
    return undefined;
  }

  #view(e: Entry): ChannelSession {
    const context: Record<string, JsonValue> = {};
    for (const [name, json] of e.context) context[name] = JSON.parse(json) as JsonValue;
    return {
      sessionId: e.sessionId, platform: e.platform, externalUserId: e.externalUserId, roomId: e.roomId,
      startedAt: new Date(e.startedAt).toISOString(), lastActivityAt: new Date(e.lastActivityAt).toISOString(),
      expiresAt: new Date(e.lastActivityAt + this.#ttlMs).toISOString(),
      inbound: e.inbound, outbound: e.outbound, context,
    };
  }

  #sweep(): void {
    const before = this.#clock() - this.#ttlMs;
    for (const [k, e] of this.#sessions) if (e.lastActivityAt <= before) this.#sessions.delete(k);
  }
}
