import type { Logger } from 'pino';
import type { RedisTopology } from '../config/config.ts';
import { ChatError } from '../protocol/errors.ts';
import { closeRedis, escapeKeyPart, openRedis, waitReady, type RedisClient } from '../redis/index.ts';
import { SessionContextTooLargeError } from './context-too-large.ts';
import {
  SESSION_CONTEXT_MAX_BYTES,
  type ChannelSession, type InboundTouch, type JsonValue, type SessionKey, type SessionStore,
} from './session-store.ts';

/**
 * Sessions in Redis, shared by every api process. One HASH per session,
 * `cs:{tenant:platform:externalUserId}` (ids escaped, so they cannot collide or leave the hash
 * tag): `id`, `room`, `started`, `last` (ms), `in`, `out`, and one field `c.<key>` per context key
 * holding its JSON text. The key PEXPIREs SESSION_TTL after the last touch, so an expired session
 * is simply absent and the next inbound touch starts a new one. Every call is one Lua script (or
 * one HGETALL): one round trip, atomic, so two processes touching an expired session at once start
 * one session, not two.
 *
 * No fallback: a call that fails throws ChatError('unavailable') after at most the command
 * timeout; the callers (the channel inbox and sender) log, count and go on without the session.
 */
export interface RedisSessionStoreConfig {
  url: string;
  topology?: RedisTopology | undefined;
  ttlSec: number;
}

export interface RedisSessionStoreOptions {
  /** Put before every key; must not contain `{` or `}`. Default none. */
  keyPrefix?: string;
  /** Default 500 ms (the shared Redis client's). */
  commandTimeoutMs?: number;
  /** How long `createRedisSessionStore` waits for Redis before going on (calls fail until it answers). Default 3 s. */
  connectWaitMs?: number;
}

const DEFAULT_CONNECT_WAIT_MS = 3000;
const CONTEXT_FIELD = 'c.';

const SCRIPTS = {
  // ARGV ttlMs, now, newSessionId, roomId, JSON of the platform message id, then field/JSON pairs.
  // Returns { 1 when it started the session, HGETALL }.
  chatSessionInbound: { numberOfKeys: 1, lua: `
local started = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'id', ARGV[3], 'started', ARGV[2], 'in', 0, 'out', 0)
  started = 1
end
if redis.call('HGET', KEYS[1], 'c.lastInboundMessageId') ~= ARGV[5] then redis.call('HINCRBY', KEYS[1], 'in', 1) end
redis.call('HSET', KEYS[1], 'room', ARGV[4], 'last', ARGV[2], 'c.lastInboundMessageId', ARGV[5])
for i = 6, #ARGV - 1, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return { started, redis.call('HGETALL', KEYS[1]) }` },

  // ARGV ttlMs, now. Returns { 0 } without a session, else { 1, HGETALL }.
  chatSessionOutbound: { numberOfKeys: 1, lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return { 0 } end
redis.call('HINCRBY', KEYS[1], 'out', 1)
redis.call('HSET', KEYS[1], 'last', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return { 1, redis.call('HGETALL', KEYS[1]) }` },

  // ARGV maxBytes, then field/JSON pairs ('' removes the field). The TTL is left alone.
  // Returns { 0 } without a session, { -1, bytes } when too large, else { 1, HGETALL }.
  chatSessionMerge: { numberOfKeys: 1, lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return { 0 } end
local ctx = {}
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  if string.sub(flat[i], 1, 2) == 'c.' then ctx[flat[i]] = flat[i + 1] end
end
for i = 2, #ARGV - 1, 2 do
  if ARGV[i + 1] == '' then ctx[ARGV[i]] = nil else ctx[ARGV[i]] = ARGV[i + 1] end
end
local bytes = 0
for k, v in pairs(ctx) do bytes = bytes + #k - 2 + #v end
if bytes > tonumber(ARGV[1]) then return { -1, bytes } end
for i = 2, #ARGV - 1, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return { 1, redis.call('HGETALL', KEYS[1]) }` },
} as const;

interface SessionCommands {
  chatSessionInbound(key: string, ttlMs: number, now: number, newSessionId: string, roomId: string, messageId: string, ...pairs: string[]): Promise<[number, string[]]>;
  chatSessionOutbound(key: string, ttlMs: number, now: number): Promise<[0] | [1, string[]]>;
  chatSessionMerge(key: string, maxBytes: number, ...pairs: string[]): Promise<[0] | [-1, number] | [1, string[]]>;
}

export async function createRedisSessionStore(cfg: RedisSessionStoreConfig, log: Logger, opts: RedisSessionStoreOptions = {}): Promise<SessionStore> {
  const keyPrefix = opts.keyPrefix ?? '';
  if (/[{}]/.test(keyPrefix)) throw new ChatError('internal', `session key prefix "${keyPrefix}" must not contain { or } (they choose the Cluster slot)`);
  const client = openRedis(cfg, {
    connectionName: 'chat-sessions',
    ...(opts.commandTimeoutMs !== undefined ? { commandTimeoutMs: opts.commandTimeoutMs } : {}),
  });
  for (const [name, { numberOfKeys, lua }] of Object.entries(SCRIPTS)) client.defineCommand(name, { numberOfKeys, lua });
  const slog = log.child({ adapter: 'redis-sessions' });
  // the error listener keeps a connection error from being an unhandled 'error' event; calls report their own
  client.on('error', (err: Error) => slog.debug({ err }, 'sessions: Redis connection error'));
  const connectWaitMs = opts.connectWaitMs ?? DEFAULT_CONNECT_WAIT_MS;
  if (!(await waitReady(client, connectWaitMs))) slog.warn({ status: client.status }, `sessions: Redis not ready within ${connectWaitMs} ms of start; session calls fail until it answers`);
  return new RedisSessionStore(client, keyPrefix, cfg.ttlSec);
}

class RedisSessionStore implements SessionStore {
  readonly kind = 'redis' as const;
  readonly ttlSec: number;
  readonly #client: RedisClient;
  readonly #cmd: SessionCommands;
  readonly #prefix: string;
  readonly #ttlMs: number;

  constructor(client: RedisClient, prefix: string, ttlSec: number) {
    this.#client = client;
    this.#cmd = client as unknown as SessionCommands;
    this.#prefix = prefix;
    this.ttlSec = ttlSec;
    this.#ttlMs = ttlSec * 1000;
  }

  async touchInbound(key: SessionKey, touch: InboundTouch): Promise<{ session: ChannelSession; started: boolean }> {
    const pairs: string[] = [];
    for (const [name, value] of Object.entries(touch.context ?? {})) pairs.push(CONTEXT_FIELD + name, JSON.stringify(value));
    const [started, flat] = await this.#call('touchInbound', () => this.#cmd.chatSessionInbound(
      this.#key(key), this.#ttlMs, touch.at, touch.newSessionId, touch.roomId, JSON.stringify(touch.platformMessageId), ...pairs,
    ));
    return { session: this.#view(key, flat), started: started === 1 };
  }

  async touchOutbound(key: SessionKey, at: number): Promise<ChannelSession | undefined> {
    const reply = await this.#call('touchOutbound', () => this.#cmd.chatSessionOutbound(this.#key(key), this.#ttlMs, at));
    return reply[0] === 1 ? this.#view(key, reply[1]) : undefined;
  }

  async get(key: SessionKey): Promise<ChannelSession | undefined> {
    const fields = await this.#call('get', () => this.#client.hgetall(this.#key(key)));
    const flat = Object.entries(fields).flat();
    return flat.length === 0 ? undefined : this.#view(key, flat);
  }

  async mergeContext(key: SessionKey, patch: Record<string, JsonValue | null>): Promise<ChannelSession | undefined> {
    const pairs: string[] = [];
    for (const [name, value] of Object.entries(patch)) pairs.push(CONTEXT_FIELD + name, value === null ? '' : JSON.stringify(value));
    const reply = await this.#call('mergeContext', () => this.#cmd.chatSessionMerge(this.#key(key), SESSION_CONTEXT_MAX_BYTES, ...pairs));
    if (reply[0] === 0) return undefined;
    if (reply[0] === -1) throw new SessionContextTooLargeError(reply[1]);
    return this.#view(key, reply[1]);
  }

  async close(): Promise<void> {
    await closeRedis(this.#client);
  }

  async #call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new ChatError('unavailable', `sessions: Redis failed in ${op}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  #key(k: SessionKey): string {
    return `${this.#prefix}cs:{${escapeKeyPart(k.tenant)}:${escapeKeyPart(k.platform)}:${escapeKeyPart(k.externalUserId)}}`;
  }

  #view(key: SessionKey, flat: string[]): ChannelSession {
    const fields = new Map<string, string>();
    const context: Record<string, JsonValue> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const name = flat[i]!;
      if (name.startsWith(CONTEXT_FIELD)) context[name.slice(CONTEXT_FIELD.length)] = JSON.parse(flat[i + 1]!) as JsonValue;
      else fields.set(name, flat[i + 1]!);
    }
    const last = Number(fields.get('last') ?? fields.get('started'));
    return {
      sessionId: fields.get('id') ?? '', platform: key.platform, externalUserId: key.externalUserId, roomId: fields.get('room') ?? '',
      startedAt: new Date(Number(fields.get('started'))).toISOString(), lastActivityAt: new Date(last).toISOString(),
      expiresAt: new Date(last + this.#ttlMs).toISOString(),
      inbound: Number(fields.get('in') ?? 0), outbound: Number(fields.get('out') ?? 0), context,
    };
  }
}
