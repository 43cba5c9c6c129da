import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ConfigError, type RedisTopology } from '../config/config.ts';
import { ChatError } from '../protocol/errors.ts';

/** A standalone/Sentinel client or a Cluster client: the adapters only use what both offer. */
export type RedisClient = Redis | Cluster;

export interface RedisConnectionConfig {
  /** `redis://` or `rediss://`; with a topology it gives only user, password, db and TLS. */
  url: string;
  topology?: RedisTopology | undefined;
}

export interface RedisClientOptions {
  /** A command not answered within this fails (and the caller degrades). Default 500 ms. */
  commandTimeoutMs?: number;
  /** Set as CLIENT SETNAME, to find the connection in CLIENT LIST. */
  connectionName?: string;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 500;
const CONNECT_TIMEOUT_MS = 2000;
const MAX_RECONNECT_DELAY_MS = 1000;

/**
 * Redis is off the chat path's critical section: while it is unreachable a command must fail at
 * once, never wait in a queue for a reconnect, and never be replayed after the reconnect (a
 * rate-limit take replayed late would be counted twice, after the caller already answered from its
 * fallback). Reconnecting goes on in the background, at least once a second.
 */
function failFast(opts: RedisClientOptions): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (times: number) => Math.min(times * 50, MAX_RECONNECT_DELAY_MS),
    // heartbeats and presence reads issue one script per user; batching them per event-loop tick is free throughput
    enableAutoPipelining: true,
    ...(opts.connectionName !== undefined ? { connectionName: opts.connectionName } : {}),
  };
}

/** Opens a client for `cfg`; it connects in the background (see `waitReady`). */
export function openRedis(cfg: RedisConnectionConfig, opts: RedisClientOptions = {}): RedisClient {
  const base = failFast(opts);
  const topology = cfg.topology;
  if (topology === undefined) return new Redis(cfg.url, base);
  const auth = credentials(cfg.url);
  switch (topology.kind) {
    case 'cluster': {
      const { db: _ignored, ...nodeAuth } = auth;
      return new Cluster(topology.nodes.map((n) => hostPort(n, 6379)), {
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: (times: number) => Math.min(times * 50, MAX_RECONNECT_DELAY_MS),
        redisOptions: { ...base, ...nodeAuth },
      });
    }
    case 'sentinel':
      return new Redis({
        ...base, ...auth,
        sentinels: topology.sentinels.map((n) => hostPort(n, 26379)),
        name: topology.name,
      });
    default: {
      const never: never = topology;
      throw new ChatError('internal', `unknown Redis topology ${JSON.stringify(never)}`);
    }
  }
}

/** Resolves true once the client is ready, false if it is not within `timeoutMs`. */
export function waitReady(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ready);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    client.on('ready', onReady);
  });
}

/** QUIT when Redis answers, otherwise just drop the socket; never waits on an unreachable server. */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  await client.quit().then(
    () => undefined,
    () => client.disconnect(),
  );
}

function credentials(url: string): Pick<RedisOptions, 'username' | 'password' | 'db' | 'tls'> {
  let u: URL;
  try {
    u = new URL(url);
  } catch (err) {
    throw new ConfigError([`REDIS_URL: not a URL (${(err as Error).message})`]);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new ConfigError([`REDIS_URL: expected redis:// or rediss://, got ${u.protocol}//`]);
  const db = Number(u.pathname.slice(1) || '0');
  if (!Number.isSafeInteger(db) || db < 0) throw new ConfigError([`REDIS_URL: the path must be a database number, got "${u.pathname}"`]);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db,
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

function hostPort(node: string, defaultPort: number): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(node.trim());
  if (m === null) throw new ConfigError([`Redis node "${node}": expected host:port`]);
  return { host: m[1]!, port: m[2] !== undefined ? Number(m[2]) : defaultPort };
}
