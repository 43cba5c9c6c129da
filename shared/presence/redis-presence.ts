import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { RedisTopology } from '../config/config.ts';
import { PRESENCE_STATUSES, type PresenceStatus } from '../domain/models.ts';
import { ChatError } from '../protocol/errors.ts';
import { RedisFallback, closeRedis, escapeKeyPart, openRedis, waitReady, type RedisClient } from '../redis/index.ts';
import { registry } from '../telemetry/metrics.ts';
import { DEFAULT_OFFLINE_RETENTION_MS, createMemoryPresence } from './memory-presence.ts';
import type { ConnectionInfo, DeviceInfo, Presence, PresenceInfo, StatusUpdate } from './presence.ts';

/**
 * Presence shared by every gateway through Redis.
 *
 * Keys, with a `{tenant:user}` hash tag so one user's keys share a Cluster slot and each script
 * touches one slot:
 * - `p:{t:u}:conns` ZSET connectionId -> expiry (ms, Redis clock). Expired members count as gone
 *   and are removed by the next write; the key PEXPIREs with its last live member.
 * - `p:{t:u}` HASH status, customStatus, device (JSON), lastSeen (ms). It PEXPIREs
 *   `offlineRetentionMs` after the user's last connection would expire, like the memory adapter.
 * - `t:{t:room}` ZSET userId -> typing expiry; PEXPIREs with its last entry.
 * - `n:{t:room}` the room's message count; `r:{t:u}` HASH roomId -> count read up to (unread
 *   counts; the hash PEXPIREs 90 days after the user's last read or message).
 * Every operation is one Lua script, so transitions (first live connection in, last out) are exact
 * across gateways, and all times come from Redis TIME, never from the gateways' clocks.
 *
 * `heartbeat` is an upsert: a connection Redis does not know (it lost its data, or the entry expired
 * while Redis was unreachable) is added again, since the gateway that beats holds the socket.
 *
 * When Redis fails, calls are answered by a memory presence of this process for the duration of
 * the outage (see RedisFallback): this gateway's own users keep their presence and typing, other
 * gateways' users read as offline; each such call counts in chat_presence_degraded_total. When
 * Redis is back the memory state is dropped; the next heartbeat re-registers this gateway's live
 * connections (statuses set during the outage are lost). Calls never throw and never wait longer
 * than the command timeout.
 */
export interface RedisPresenceConfig {
  url: string;
  topology?: RedisTopology | undefined;
  ttlSec: number;
  typingTimeoutMs: number;
}

export interface RedisPresenceOptions {
  /** A client to use instead of opening one from `cfg.url`; the caller keeps it (close leaves it open). */
  client?: RedisClient;
  /** Put before every key; must not contain `{` or `}`. Default none. */
  keyPrefix?: string;
  /** How long a user's status is kept after their last connection. Default 24 h. */
  offlineRetentionMs?: number;
  /** For the client this adapter opens. Default 500 ms. */
  commandTimeoutMs?: number;
  /** How long `createRedisPresence` waits for Redis before starting degraded. Default 3 s. */
  connectWaitMs?: number;
  /** During an outage, how often a background PING checks whether Redis is back. Default 1 s. */
  probeIntervalMs?: number;
}

const DEFAULT_CONNECT_WAIT_MS = 3000;
/** Users per batch of scripts in heartbeat and get, so a gateway with many users stays bounded. */
const BATCH = 500;
const NEVER_SEEN = new Date(0).toISOString();

const degradedCalls = new Counter({
  name: 'chat_presence_degraded_total',
  help: 'Presence calls answered by the process-local fallback because Redis failed',
  labelNames: ['op'],
  registers: [registry],
});

const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// KEYS[1] conns, KEYS[2] user hash
const EXPIRE_USER = `
local function expire_user(now, retention)
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  local left = 0
  if last[2] then
    left = tonumber(last[2]) - now
    redis.call('PEXPIRE', KEYS[1], left)
  end
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], left + retention) end
end
`;

const SCRIPTS = {
  // ARGV connectionId, ttlMs, retentionMs, device JSON or ''. Returns 1 when it went online.
  chatPresenceConnect: { numberOfKeys: 2, lua: `${NOW_MS}${EXPIRE_USER}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local live = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSETNX', KEYS[2], 'status', 'online')
redis.call('HSET', KEYS[2], 'lastSeen', now)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'device', ARGV[4]) end
expire_user(now, tonumber(ARGV[3]))
if live == 0 then return 1 end
return 0` },

  // ARGV connectionId, retentionMs. Returns 1 when it went offline (a live connection, the last one).
  chatPresenceDisconnect: { numberOfKeys: 2, lua: `${NOW_MS}${EXPIRE_USER}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
local left = redis.call('ZCARD', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'lastSeen', now) end
expire_user(now, tonumber(ARGV[2]))
if removed == 1 and left == 0 then return 1 end
return 0` },

  // ARGV ttlMs, retentionMs, connectionId... Upsert: unknown or expired connections are added.
  chatPresenceHeartbeat: { numberOfKeys: 2, lua: `${NOW_MS}${EXPIRE_USER}
local expiresAt = now + tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], expiresAt, ARGV[i]) end
redis.call('HSETNX', KEYS[2], 'status', 'online')
redis.call('HSET', KEYS[2], 'lastSeen', now)
expire_user(now, tonumber(ARGV[2]))
return #ARGV - 2` },

  // ARGV status, '1' when customStatus is given, customStatus ('' clears), device JSON or '', retentionMs.
  // Returns { live connections, HGETALL }.
  chatPresenceSetStatus: { numberOfKeys: 2, lua: `${NOW_MS}${EXPIRE_USER}
redis.call('HSET', KEYS[2], 'status', ARGV[1])
if ARGV[2] == '1' then
  if ARGV[3] == '' then redis.call('HDEL', KEYS[2], 'customStatus') else redis.call('HSET', KEYS[2], 'customStatus', ARGV[3]) end
end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'device', ARGV[4]) end
redis.call('HSETNX', KEYS[2], 'lastSeen', now)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
expire_user(now, tonumber(ARGV[5]))
return { redis.call('ZCARD', KEYS[1]), redis.call('HGETALL', KEYS[2]) }` },

  // Returns { live connections, HGETALL }.
  chatPresenceGet: { numberOfKeys: 2, lua: `${NOW_MS}
return { redis.call('ZCOUNT', KEYS[1], string.format('(%d', now), '+inf'), redis.call('HGETALL', KEYS[2]) }` },

  // KEYS[1] typing zset; ARGV userId, timeoutMs. Returns 1 when this began a typing period.
  chatTypingStart: { numberOfKeys: 1, lua: `${NOW_MS}
local was = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], tonumber(last[2]) - now)
if was and tonumber(was) > now then return 0 end
return 1` },

  // ARGV userId. Returns 1 when the user was typing.
  chatTypingStop: { numberOfKeys: 1, lua: `${NOW_MS}
local was = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not was then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(was) > now then return 1 end
return 0` },

  chatTypingIn: { numberOfKeys: 1, lua: `${NOW_MS}
return redis.call('ZRANGEBYSCORE', KEYS[1], string.format('(%d', now), '+inf')` },
  // KEYS read hash; ARGV roomId, count, retentionMs. Read positions only move forward.
  chatReadUpTo: { numberOfKeys: 1, lua: `
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1` },
} as const;

/** A user's read positions are kept this long after their last read or message. */
const READ_RETENTION_MS = 90 * 24 * 3600_000;

type UserReply = [number, string[]];

/** The scripts as ioredis defines them on the client (defineCommand adds one method per script). */
interface PresenceCommands {
  chatPresenceConnect(conns: string, user: string, connectionId: string, ttlMs: number, retentionMs: number, device: string): Promise<number>;
  chatPresenceDisconnect(conns: string, user: string, connectionId: string, retentionMs: number): Promise<number>;
  chatPresenceHeartbeat(conns: string, user: string, ttlMs: number, retentionMs: number, ...connectionIds: string[]): Promise<number>;
  chatPresenceSetStatus(conns: string, user: string, status: string, setCustom: '0' | '1', customStatus: string, device: string, retentionMs: number): Promise<UserReply>;
  chatPresenceGet(conns: string, user: string): Promise<UserReply>;
  chatTypingStart(typing: string, userId: string, timeoutMs: number): Promise<number>;
  chatTypingStop(typing: string, userId: string): Promise<number>;
  chatTypingIn(typing: string): Promise<string[]>;
  chatReadUpTo(read: string, roomId: string, count: number, retentionMs: number): Promise<number>;
}

export async function createRedisPresence(cfg: RedisPresenceConfig, log: Logger, opts: RedisPresenceOptions = {}): Promise<Presence> {
  const keyPrefix = opts.keyPrefix ?? '';
  if (/[{}]/.test(keyPrefix)) throw new ChatError('internal', `presence key prefix "${keyPrefix}" must not contain { or } (they choose the Cluster slot)`);
  const own = opts.client === undefined;
  const client = opts.client ?? openRedis(cfg, {
    connectionName: 'chat-presence',
    ...(opts.commandTimeoutMs !== undefined ? { commandTimeoutMs: opts.commandTimeoutMs } : {}),
  });
  for (const [name, { numberOfKeys, lua }] of Object.entries(SCRIPTS)) client.defineCommand(name, { numberOfKeys, lua });

  const plog = log.child({ adapter: 'redis-presence' });
  const fallback = new RedisFallback(client, {
    what: 'presence',
    log: plog,
    onDegraded: (op) => degradedCalls.inc({ op }),
    open: () => createMemoryPresence({ ttlSec: cfg.ttlSec, typingTimeoutMs: cfg.typingTimeoutMs }),
    close: (memory) => memory.close(),
    ...(opts.probeIntervalMs !== undefined ? { probeIntervalMs: opts.probeIntervalMs } : {}),
  });
  const connectWaitMs = opts.connectWaitMs ?? DEFAULT_CONNECT_WAIT_MS;
  if (!(await waitReady(client, connectWaitMs))) {
    fallback.markDown(new Error(`Redis not ready within ${connectWaitMs} ms of start (status ${client.status})`));
  }
  return new RedisPresence(client, own, fallback, keyPrefix, cfg, opts.offlineRetentionMs ?? DEFAULT_OFFLINE_RETENTION_MS, plog);
}

class RedisPresence implements Presence {
  readonly kind = 'redis' as const;
  readonly #client: RedisClient;
  readonly #cmd: PresenceCommands;
  readonly #ownClient: boolean;
  readonly #fallback: RedisFallback<Presence>;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #typingMs: number;
  readonly #retentionMs: number;
  readonly #log: Logger;

  constructor(client: RedisClient, ownClient: boolean, fallback: RedisFallback<Presence>, prefix: string,
    cfg: RedisPresenceConfig, retentionMs: number, log: Logger) {
    this.#client = client;
    this.#cmd = client as unknown as PresenceCommands;
    this.#ownClient = ownClient;
    this.#fallback = fallback;
    this.#prefix = prefix;
    this.#ttlMs = cfg.ttlSec * 1000;
    this.#typingMs = cfg.typingTimeoutMs;
    this.#retentionMs = retentionMs;
    this.#log = log;
  }

  connect(c: ConnectionInfo): Promise<{ wentOnline: boolean }> {
    return this.#fallback.run('connect', async () => {
      const [conns, user] = this.#userKeys(c.tenant, c.userId);
      const device = c.device !== undefined ? JSON.stringify(c.device) : '';
      const wentOnline = await this.#cmd.chatPresenceConnect(conns, user, c.connectionId, this.#ttlMs, this.#retentionMs, device);
      return { wentOnline: wentOnline === 1 };
    }, (memory) => memory.connect(c));
  }

  disconnect(tenant: string, userId: string, connectionId: string): Promise<{ wentOffline: boolean }> {
    return this.#fallback.run('disconnect', async () => {
      const [conns, user] = this.#userKeys(tenant, userId);
      return { wentOffline: (await this.#cmd.chatPresenceDisconnect(conns, user, connectionId, this.#retentionMs)) === 1 };
    }, (memory) => memory.disconnect(tenant, userId, connectionId));
  }

  heartbeat(tenant: string, connections: Array<{ userId: string; connectionId: string }>): Promise<void> {
    if (connections.length === 0) return Promise.resolve();
    const byUser = new Map<string, string[]>();
    for (const { userId, connectionId } of connections) {
      const ids = byUser.get(userId);
      if (ids === undefined) byUser.set(userId, [connectionId]);
      else ids.push(connectionId);
    }
    return this.#fallback.run('heartbeat', async () => {
      await inBatches([...byUser], async ([userId, ids]) => {
        const [conns, user] = this.#userKeys(tenant, userId);
        await this.#cmd.chatPresenceHeartbeat(conns, user, this.#ttlMs, this.#retentionMs, ...ids);
      });
    }, async (memory) => {
      // an upsert here too: connections that were registered only in Redis become known to this process
      for (const { userId, connectionId } of connections) await memory.connect({ tenant, userId, connectionId });
    });
  }

  setStatus(tenant: string, userId: string, update: StatusUpdate): Promise<PresenceInfo> {
    return this.#fallback.run('setStatus', async () => {
      const [conns, user] = this.#userKeys(tenant, userId);
      const reply = await this.#cmd.chatPresenceSetStatus(
        conns, user, update.status,
        update.customStatus !== undefined ? '1' : '0', update.customStatus ?? '',
        update.device !== undefined ? JSON.stringify(update.device) : '',
        this.#retentionMs,
      );
      return this.#info(userId, reply);
    }, (memory) => memory.setStatus(tenant, userId, update));
  }

  get(tenant: string, userIds: string[]): Promise<PresenceInfo[]> {
    if (userIds.length === 0) return Promise.resolve([]);
    return this.#fallback.run('get', () => inBatches(userIds, async (userId) => {
      const [conns, user] = this.#userKeys(tenant, userId);
      return this.#info(userId, await this.#cmd.chatPresenceGet(conns, user));
    }), (memory) => memory.get(tenant, userIds));
  }

  startTyping(tenant: string, roomId: string, userId: string): Promise<boolean> {
    return this.#fallback.run('startTyping', async () => (
      (await this.#cmd.chatTypingStart(this.#typingKey(tenant, roomId), userId, this.#typingMs)) === 1
    ), (memory) => memory.startTyping(tenant, roomId, userId));
  }

  stopTyping(tenant: string, roomId: string, userId: string): Promise<boolean> {
    return this.#fallback.run('stopTyping', async () => (
      (await this.#cmd.chatTypingStop(this.#typingKey(tenant, roomId), userId)) === 1
    ), (memory) => memory.stopTyping(tenant, roomId, userId));
  }

  typingIn(tenant: string, roomId: string): Promise<string[]> {
    return this.#fallback.run('typingIn', () => this.#cmd.chatTypingIn(this.#typingKey(tenant, roomId)), (memory) => memory.typingIn(tenant, roomId));
  }

  noteMessage(tenant: string, roomId: string, authorId: string): Promise<void> {
    return this.#fallback.run('noteMessage', async () => {
      const count = await this.#client.incr(this.#roomCountKey(tenant, roomId));
      await this.#cmd.chatReadUpTo(this.#readKey(tenant, authorId), roomId, count, READ_RETENTION_MS);
    }, (memory) => memory.noteMessage(tenant, roomId, authorId));
  }

  markRoomRead(tenant: string, roomId: string, userId: string, leftUnread = 0): Promise<void> {
    return this.#fallback.run('markRoomRead', async () => {
      const count = Number(await this.#client.get(this.#roomCountKey(tenant, roomId)) ?? 0);
      await this.#cmd.chatReadUpTo(this.#readKey(tenant, userId), roomId, count - leftUnread, READ_RETENTION_MS);
    }, (memory) => memory.markRoomRead(tenant, roomId, userId, leftUnread));
  }

  unreadCounts(tenant: string, userId: string, roomIds: string[]): Promise<Map<string, number>> {
    if (roomIds.length === 0) return Promise.resolve(new Map());
    return this.#fallback.run('unreadCounts', async () => {
      // Room counters live in other Cluster slots than the user's hash: one GET each, pipelined by the client.
      const [counts, read] = await Promise.all([
        Promise.all(roomIds.map((roomId) => this.#client.get(this.#roomCountKey(tenant, roomId)))),
        this.#client.hmget(this.#readKey(tenant, userId), ...roomIds),
      ]);
      const out = new Map<string, number>();
      roomIds.forEach((roomId, i) => out.set(roomId, Math.max(0, Number(counts[i] ?? 0) - Number(read[i] ?? 0))));
      return out;
    }, (memory) => memory.unreadCounts(tenant, userId, roomIds));
  }

  async ping(): Promise<void> {
    try {
      await this.#client.ping();
    } catch (err) {
      throw new ChatError('unavailable', `redis does not answer: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    // close before detaching, so errors of the closing connection still have a listener
    if (this.#ownClient) await closeRedis(this.#client);
    await this.#fallback.dispose();
  }

  #userKeys(tenant: string, userId: string): [conns: string, user: string] {
    const user = `${this.#prefix}p:{${escapeKeyPart(tenant)}:${escapeKeyPart(userId)}}`;
    return [`${user}:conns`, user];
  }

  #roomCountKey(tenant: string, roomId: string): string {
    return `${this.#prefix}n:{${escapeKeyPart(tenant)}:${escapeKeyPart(roomId)}}`;
  }

  #readKey(tenant: string, userId: string): string {
    return `${this.#prefix}r:{${escapeKeyPart(tenant)}:${escapeKeyPart(userId)}}`;
  }

  #typingKey(tenant: string, roomId: string): string {
    return `${this.#prefix}t:{${escapeKeyPart(tenant)}:${escapeKeyPart(roomId)}}`;
  }

  #info(userId: string, [connections, flat]: UserReply): PresenceInfo {
    const fields = new Map<string, string>();
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!);
    const lastSeen = Number(fields.get('lastSeen'));
    const info: PresenceInfo = {
      userId,
      status: connections === 0 ? 'offline' : toStatus(fields.get('status')),
      lastSeen: Number.isFinite(lastSeen) && lastSeen > 0 ? new Date(lastSeen).toISOString() : NEVER_SEEN,
      connections,
    };
    const customStatus = fields.get('customStatus');
    if (customStatus !== undefined) info.customStatus = customStatus;
    const device = fields.get('device');
    if (device !== undefined) {
      const parsed = this.#device(userId, device);
      if (parsed !== undefined) info.device = parsed;
    }
    return info;
  }

  #device(userId: string, json: string): DeviceInfo | undefined {
    try {
      const value: unknown = JSON.parse(json);
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as DeviceInfo;
    } catch (err) {
      this.#log.warn({ err, userId }, 'presence: unreadable device in Redis, ignored');
      return undefined;
    }
    this.#log.warn({ userId }, 'presence: device in Redis is not an object, ignored');
    return undefined;
  }
}

function toStatus(value: string | undefined): PresenceStatus {
  return (PRESENCE_STATUSES as readonly string[]).includes(value ?? '') ? (value as PresenceStatus) : 'online';
}

async function inBatches<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  if (items.length <= BATCH) return Promise.all(items.map(fn));
  const out: R[] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(...(await Promise.all(items.slice(i, i + BATCH).map(fn))));
  return out;
}
