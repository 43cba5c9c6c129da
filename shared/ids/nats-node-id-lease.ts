import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { StorageType, connect, type KV, type NatsConnection } from 'nats';
import { ChatError } from '../protocol/errors.ts';
import { MAX_NODE_ID } from './snowflake.ts';
import type { NodeIdLease } from './node-id-lease.ts';

/**
 * Node id leases in a NATS KV bucket (one key per id, `"0"`..`"1023"`, the value naming the holder).
 *
 * - Claim: `kv.create` on the lowest id whose key is absent (or expired, or deleted). `create`
 *   is a JetStream publish expecting "no message for this key yet", so of two processes racing
 *   for the same id exactly one wins; the loser tries the next id.
 * - Lifetime: the bucket's max age is the lease TTL. The server drops a key TTL after its last
 *   write, so a holder that died without releasing frees its id TTL later.
 * - Renewal: `kv.update` with the revision we wrote last, every TTL/3 (retried every
 *   RETRY_FRACTION of TTL while it fails). An update only lands if nobody wrote the key since.
 * - Validity: the server can drop our key TTL after it stored our last write, which happened
 *   after we sent it; so the lease is ours until `sent + TTL` (minus a safety margin) on our
 *   monotonic clock, whatever the network did. `valid()` compares against that deadline on every
 *   call, so a process that was paused (GC, SIGSTOP, a VM migration) past its deadline sees it
 *   at once, before a timer could fire.
 * - Lost: when the deadline passes without a renewal (NATS unreachable for about the TTL), or a
 *   renewal finds the key deleted, expired or written by another holder, the lease is lost for
 *   good: `valid()` is false and `lost` resolves. It is never silently re-claimed: ids made with
 *   that node id by someone else may already exist, and only a fresh start (new claim) is safe.
 *   An update whose reply was lost but which landed is recognised by our holder token and kept.
 * - Release: `kv.delete` expecting our revision, so it can never delete a successor's claim.
 *
 * The lease opens its own NATS connection: it must keep renewing whatever the bus is doing
 * (draining, reconnecting its consumers), and its failure must be visible on its own.
 * Wall clocks of different machines only matter in that ids carry their maker's time: a
 * successor whose clock is more than the TTL behind ours could make ids we already made.
 */
export interface NatsNodeIdLeaseConfig {
  servers: string[];
  /** Replicas of the bucket when this creates it (default 1); use the stream's on a cluster. */
  replicas?: number;
  /** Default DEFAULT_NODE_ID_BUCKET. */
  bucket?: string;
  /** Lease lifetime given to the bucket when this creates it; an existing bucket's max age wins. */
  ttlMs?: number;
  /** Shown in the key's value for operators (tier, version); our host, pid and a unique token are added. */
  holder?: Record<string, string>;
}

export interface NatsNodeIdLeaseOptions {
  /** Connect and JetStream API timeout (claims, release). Renewals use at most TTL/3. */
  apiTimeoutMs?: number;
  reconnectWaitMs?: number;
}

export const DEFAULT_NODE_ID_BUCKET = 'chat_node_ids';
export const DEFAULT_LEASE_TTL_MS = 30_000;
const API_TIMEOUT_MS = 5000;
const RECONNECT_WAIT_MS = 1000;
const RELEASE_TIMEOUT_MS = 2000;
/** How often a failing renewal is retried, as a fraction of the TTL (every second at 30 s). */
const RETRY_FRACTION = 1 / 30;
/** The lease is given up this long before the server could drop it (timer jitter, clock rates). */
const SAFETY_FRACTION = 1 / 15;
const JS_WRONG_LAST_SEQUENCE = 10071;

interface HolderValue {
  token: string;
  host?: string;
  pid?: number;
}

export async function claimNatsNodeId(cfg: NatsNodeIdLeaseConfig, log: Logger, opts: NatsNodeIdLeaseOptions = {}): Promise<NodeIdLease> {
  const bucket = cfg.bucket ?? DEFAULT_NODE_ID_BUCKET;
  const apiTimeoutMs = opts.apiTimeoutMs ?? API_TIMEOUT_MS;
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: cfg.servers,
      name: `chat-svc node-id lease ${hostname()} ${process.pid}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: opts.reconnectWaitMs ?? RECONNECT_WAIT_MS,
      timeout: apiTimeoutMs,
      pingInterval: 5000,
      maxPingOut: 2,
    });
  } catch (err) {
    throw new ChatError('unavailable', `node id lease: cannot connect to NATS at ${cfg.servers.join(',')}: ${describe(err)}`, { cause: err });
  }
  try {
    return await claim(nc, bucket, cfg, log, apiTimeoutMs);
  } catch (err) {
    await nc.close().catch((closeErr: unknown) => log.debug({ err: closeErr }, 'node id lease: closing the connection failed'));
    throw err;
  }
}

async function claim(nc: NatsConnection, bucket: string, cfg: NatsNodeIdLeaseConfig, log: Logger, apiTimeoutMs: number): Promise<NatsNodeIdLease> {
  let kv: KV;
  let ttlMs: number;
  try {
    kv = await nc.jetstream({ timeout: apiTimeoutMs }).views.kv(bucket, {
      history: 1,
      ttl: cfg.ttlMs ?? DEFAULT_LEASE_TTL_MS,
      replicas: cfg.replicas ?? 1,
      storage: StorageType.File,
      description: 'chat-svc snowflake node ids: one key per leased id, expiring unless renewed',
    });
    ttlMs = (await kv.status()).ttl;
  } catch (err) {
    throw new ChatError('unavailable', `node id lease: cannot open the KV bucket ${bucket}: ${describe(err)}`, { cause: err });
  }
  if (!(ttlMs > 0)) {
    throw new ChatError('unavailable', `node id lease: the KV bucket ${bucket} has no max age, so the id of a process that died would never be freed; recreate it with a TTL`);
  }
  if (cfg.ttlMs !== undefined && ttlMs !== cfg.ttlMs) {
    log.warn({ bucket, ttlMs, wanted: cfg.ttlMs }, 'node id lease: the bucket exists with another TTL; using the bucket\'s');
  }
  // renewals must come back (or fail) well within the TTL
  const renewTimeoutMs = Math.max(100, Math.min(apiTimeoutMs, Math.floor(ttlMs / 3)));
  const renewKv = await nc.jetstream({ timeout: renewTimeoutMs }).views.kv(bucket, { bindOnly: true }).catch((err: unknown) => {
    throw new ChatError('unavailable', `node id lease: cannot bind to the KV bucket ${bucket}: ${describe(err)}`, { cause: err });
  });

  const token = randomUUID();
  const value = JSON.stringify({ token, host: hostname(), pid: process.pid, claimedAt: new Date().toISOString(), ...cfg.holder });
  for (let id = 0; id <= MAX_NODE_ID; id++) {
    const sentAt = performance.now();
    let revision: number;
    try {
      revision = await kv.create(String(id), value);
    } catch (err) {
      if (jsErrCode(err) === JS_WRONG_LAST_SEQUENCE) continue; // held by someone, or raced and lost
      throw new ChatError('unavailable', `node id lease: claiming id ${id} in ${bucket} failed: ${describe(err)}`, { cause: err });
    }
    return new NatsNodeIdLease({ nc, kv: renewKv, bucket, nodeId: id, revision, token, value, ttlMs, sentAt, log });
  }
  throw new ChatError('unavailable', `node id lease: all ${MAX_NODE_ID + 1} node ids in ${bucket} are held by live processes`);
}

interface LeaseState {
  nc: NatsConnection;
  kv: KV;
  bucket: string;
  nodeId: number;
  revision: number;
  token: string;
  value: string;
  ttlMs: number;
  /** When the write that created the key was sent (monotonic ms). */
  sentAt: number;
  log: Logger;
}

class NatsNodeIdLease implements NodeIdLease {
  readonly kind = 'nats-kv' as const;
  readonly nodeId: number;
  readonly lost: Promise<ChatError>;

  readonly #nc: NatsConnection;
  readonly #kv: KV;
  readonly #key: string;
  readonly #bucket: string;
  readonly #token: string;
  readonly #value: string;
  readonly #ttlMs: number;
  readonly #log: Logger;
  #revision: number;
  /** Monotonic ms until which no one else can hold the id. */
  #validUntil: number;
  #state: 'held' | 'lost' | 'released' = 'held';
  #renewTimer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> | undefined;
  #failing = false;
  #signalLost!: (err: ChatError) => void;

  constructor(s: LeaseState) {
    this.nodeId = s.nodeId;
    this.#nc = s.nc;
    this.#kv = s.kv;
    this.#key = String(s.nodeId);
    this.#bucket = s.bucket;
    this.#token = s.token;
    this.#value = s.value;
    this.#ttlMs = s.ttlMs;
    this.#log = s.log.child({ nodeId: s.nodeId, bucket: s.bucket });
    this.#revision = s.revision;
    this.#validUntil = this.#deadline(s.sentAt);
    this.lost = new Promise((resolve) => { this.#signalLost = resolve; });
    this.#armDeadline();
    this.#schedule(this.#ttlMs / 3);
    this.#log.info({ ttlMs: s.ttlMs, revision: s.revision }, 'node id lease: claimed');
  }

  valid(): boolean {
    return this.#state === 'held' && performance.now() < this.#validUntil;
  }

  async release(): Promise<void> {
    if (this.#state === 'released') return;
    const held = this.#state === 'held';
    this.#state = 'released';
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#deadlineTimer);
    // a renewal in flight would change the revision the delete must expect
    await this.#renewing;
    if (held) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          this.#kv.delete(this.#key, { previousSeq: this.#revision }),
          new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${RELEASE_TIMEOUT_MS} ms`)), RELEASE_TIMEOUT_MS); }),
        ]);
        this.#log.info('node id lease: released');
      } catch (err) {
        this.#log.warn({ err }, 'node id lease: release failed; the id frees itself when the lease expires');
      } finally {
        clearTimeout(timer);
      }
    }
    if (!this.#nc.isClosed()) await this.#nc.close().catch((err: unknown) => this.#log.debug({ err }, 'node id lease: closing the connection failed'));
  }

  #deadline(sentAt: number): number {
    return sentAt + this.#ttlMs - this.#ttlMs * SAFETY_FRACTION;
  }

  #schedule(delayMs: number): void {
    if (this.#state !== 'held') return;
    clearTimeout(this.#renewTimer);
    this.#renewTimer = setTimeout(() => {
      this.#renewing = this.#renew().finally(() => { this.#renewing = undefined; });
    }, delayMs);
    this.#renewTimer.unref();
  }

  /** Fires when the deadline passes without a renewal: from then on the id may be someone else's. */
  #armDeadline(): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = setTimeout(() => {
      if (this.#state === 'held' && performance.now() >= this.#validUntil) {
        this.#lose(new ChatError('unavailable', `node id ${this.nodeId}: the lease could not be renewed for ${this.#ttlMs} ms (NATS unreachable?); another process may claim the id now`));
      } else {
        this.#armDeadline();
      }
    }, Math.max(0, this.#validUntil - performance.now()));
    this.#deadlineTimer.unref();
  }

  async #renew(): Promise<void> {
    if (this.#state !== 'held') return;
    const sentAt = performance.now();
    try {
      const revision = await this.#kv.update(this.#key, this.#value, this.#revision);
      if (this.#state !== 'held') return;
      this.#revision = revision;
      this.#validUntil = this.#deadline(sentAt);
      this.#armDeadline();
      if (this.#failing) {
        this.#failing = false;
        this.#log.info('node id lease: renewing again');
      }
      this.#schedule(this.#ttlMs / 3);
      return;
    } catch (err) {
      if (this.#state !== 'held') return;
      if (jsErrCode(err) === JS_WRONG_LAST_SEQUENCE) {
        await this.#onConflict(err);
        return;
      }
      if (!this.#failing) {
        this.#failing = true;
        this.#log.warn({ err, validForMs: Math.round(this.#validUntil - performance.now()) }, 'node id lease: renewal failed; retrying until the lease runs out');
      }
      this.#schedule(Math.max(50, this.#ttlMs * RETRY_FRACTION));
    }
  }

  /** The key is not at our revision: one of our renewals landed unanswered, or the id is gone. */
  async #onConflict(cause: unknown): Promise<void> {
    let holder: HolderValue | undefined;
    let described: string;
    try {
      const entry = await this.#kv.get(this.#key);
      if (this.#state !== 'held') return;
      if (entry === null || entry.operation !== 'PUT') {
        described = entry === null ? 'the key expired' : `the key was deleted (${entry.operation})`;
      } else {
        holder = parseHolder(entry.string());
        if (holder?.token === this.#token) {
          this.#revision = entry.revision;
          this.#schedule(0);
          return;
        }
        described = `the key now belongs to ${holder ? `${holder.host ?? '?'} pid ${holder.pid ?? '?'}` : 'an unknown holder'} (revision ${entry.revision})`;
      }
    } catch (err) {
      if (this.#state !== 'held') return;
      // cannot tell yet: keep trying until the deadline decides
      this.#log.warn({ err }, 'node id lease: renewal conflicted and the key cannot be read; retrying');
      this.#schedule(Math.max(50, this.#ttlMs * RETRY_FRACTION));
      return;
    }
    this.#lose(new ChatError('unavailable', `node id ${this.nodeId} is no longer ours: ${described}`, { cause }));
  }

  #lose(err: ChatError): void {
    if (this.#state !== 'held') return;
    this.#state = 'lost';
    this.#validUntil = -Infinity;
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#deadlineTimer);
    this.#log.error({ err }, 'node id lease: lost');
    this.#signalLost(err);
  }
}

function parseHolder(text: string): HolderValue | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    if (v !== null && typeof v === 'object' && typeof (v as HolderValue).token === 'string') return v as HolderValue;
  } catch {
    // a value some other tool wrote: not ours, described as unknown
  }
  return undefined;
}

function jsErrCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } } | null)?.api_error?.err_code;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
