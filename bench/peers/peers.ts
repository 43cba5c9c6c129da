import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startServer, type Started } from '../lib/processes.ts';
import { freePort } from '../lib/net.ts';
import { NATS_SERVER_BIN, natsServerAvailable, startNats, type BenchNats } from '../lib/nats-server.ts';
import { REDIS_SERVER_BIN, redisAvailable, startRedis } from '../lib/redis-server.ts';
import { benchToken } from '../lib/tokens.ts';

export const ROOT = resolve(import.meta.dirname, '../..');

/** The servers a scenario can put side by side, in report order. */
export const PEER_NAMES = ['raw-uws', 'ws', 'socketio', 'socketio-redis', 'chat', 'chat-nats'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

/** Processes of the distributed Socket.IO peer; clients are spread over them like over gateways. */
export const SOCKETIO_REDIS_PROCESSES = 2;

/** How many processes of each tier the distributed chat-svc peer runs. */
export interface Topology {
  gateways: number;
  persisters: number;
}

/** "2 gateways", "4 gateways, 2 persisters": the part of chat-nats's label that varies. */
export function topologyText({ gateways: g, persisters: p }: Topology): string {
  return `${g} gateway${g === 1 ? '' : 's'}${p === 1 ? '' : `, ${p} persisters`}`;
}

/** The label of a peer in every table, chart and JSON record; chat-nats says its topology. */
export function peerLabel(name: PeerName, topology: Topology): string {
  switch (name) {
    case 'raw-uws': return 'raw uWebSockets.js';
    case 'ws': return 'ws broadcast';
    case 'socketio': return 'Socket.IO 4';
    case 'socketio-redis': return `Socket.IO 4 + Redis adapter (${SOCKETIO_REDIS_PROCESSES} processes)`;
    case 'chat': return 'chat-svc embedded';
    case 'chat-nats': return `chat-svc on NATS (${topologyText(topology)})`;
    default: {
      const never: never = name;
      throw new Error(`unknown peer ${String(never)}`);
    }
  }
}

export interface PeerOptions extends Topology {
  /** Outbound encoding chat-svc peers are asked for (the reference peers speak JSON only). */
  format: 'json' | 'msgpack';
  /** chat-svc processes run with `--cpu-prof` writing here (read after stop). */
  profileDir?: string;
  /** Extra environment of the embedded chat-svc (a setting compared within one run, e.g. the stream journal). */
  chatEnv?: Record<string, string>;
}

export interface Peer {
  name: PeerName;
  label: string;
  /** How the driver talks to it: a WebSocket speaking chat-svc frames, or a Socket.IO client. */
  client: 'ws' | 'socketio';
  format: 'json' | 'msgpack';
  /** Where clients connect; client i uses urls[i % urls.length] (one per gateway). */
  urls: string[];
  /** Processes whose CPU and RSS count as the server's. */
  serverPids(): number[];
  /** Processes measured and reported apart (nats-server, redis-server). */
  auxPids(): Record<string, number[]>;
  /** Creates the rooms where the server needs it (chat-svc: public rooms over REST). */
  createRooms(roomIds: string[]): Promise<void>;
  /** chat-svc: REST base (`http://host:port`) of the api, and the /metrics URLs of the persisters. */
  rest?: { base: string; token: string; metricsUrls: string[] };
  /** The last lines the server processes printed (warnings and errors: they run at LOG_LEVEL=warn). */
  logs(): string;
  stop(): Promise<void>;
}

/** Variables that would switch chat-svc to other adapters: the bench sets them itself. */
const ADAPTER_VARS = ['NATS_URL', 'BUS', 'STORE', 'CASSANDRA_CONTACT_POINTS', 'PRESENCE', 'REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS', 'REDIS_SENTINEL_NAME', 'NODE_ID', 'PORT'];

/**
 * The bench measures the server, not its per-user limiters: every limit out of reach, and every
 * frame takes effect at once (no coalescing), as with the reference peers.
 */
export const UNLIMITED_ENV: Readonly<Record<string, string>> = {
  RATE_LIMIT_PER_SECOND: '1000000',
  RATE_LIMIT_BURST: '1000000',
  RATE_LIMIT_ROOM_CREATE: '1000000/s',
  RATE_LIMIT_MEMBERSHIP: '1000000/s',
  RATE_LIMIT_ROOM_ADMIN: '1000000/s',
  RATE_LIMIT_RESUME: '1000000/s',
  RATE_LIMIT_PING: '1000000/s',
  RATE_LIMIT_PRESENCE: '1000000/s',
  COALESCE_TYPING_MS: '0',
  COALESCE_PRESENCE_MS: '0',
  COALESCE_READ_MS: '0',
};

function chatEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const v of ADAPTER_VARS) delete env[v];
  return {
    ...env,
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...UNLIMITED_ENV,
    ...extra,
  };
}

async function startNodeScript(name: string, script: string, args: string[], env: NodeJS.ProcessEnv, http: boolean, profileDir?: string): Promise<Started> {
  const port = await freePort();
  const prof = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  return startServer(process.execPath, [...prof, '--import', 'tsx', join(ROOT, script), ...args], {
    name, cwd: ROOT, env: { ...env, PORT: String(port) },
    ...(http ? { port, readyUrl: `http://127.0.0.1:${port}/health` } : {}),
  });
}

export async function startPeer(name: PeerName, opts: PeerOptions): Promise<Peer> {
  switch (name) {
    case 'raw-uws':
      return simplePeer(name, 'bench/peers/raw-uws.ts', 'ws', opts);
    case 'ws':
      return simplePeer(name, 'bench/peers/ws-server.ts', 'ws', opts);
    case 'socketio':
      return simplePeer(name, 'bench/peers/socketio-server.ts', 'socketio', opts);
    case 'socketio-redis':
      return socketIoRedisPeer(opts);
    case 'chat':
      return embeddedPeer(opts);
    case 'chat-nats':
      return natsPeer(opts);
    default: {
      const never: never = name;
      throw new Error(`unknown peer ${String(never)}`);
    }
  }
}

async function simplePeer(name: PeerName, script: string, client: 'ws' | 'socketio', opts: PeerOptions): Promise<Peer> {
  const proc = await startNodeScript(name, script, [], { ...process.env, NODE_ENV: 'production' }, false);
  const base = `127.0.0.1:${proc.port}`;
  return {
    name, label: peerLabel(name, opts), client, format: 'json',
    urls: [client === 'socketio' ? `http://${base}` : `ws://${base}/chat`],
    serverPids: () => [proc.pid],
    auxPids: () => ({}),
    createRooms: async () => {},
    logs: () => proc.output.join('\n'),
    stop: () => proc.stop(),
  };
}

/** `socketio-server.ts` x SOCKETIO_REDIS_PROCESSES on a private redis-server (measured apart). */
async function socketIoRedisPeer(opts: PeerOptions): Promise<Peer> {
  const redis = await startRedis();
  const procs: Started[] = [];
  const stopAll = async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await redis.stop();
  };
  try {
    const env = { ...process.env, NODE_ENV: 'production', REDIS_URL: redis.url };
    procs.push(...await Promise.all(Array.from({ length: SOCKETIO_REDIS_PROCESSES }, (_, i) =>
      startNodeScript(`socketio-redis ${i + 1}`, 'bench/peers/socketio-server.ts', [], env, false))));
    return {
      name: 'socketio-redis', label: peerLabel('socketio-redis', opts), client: 'socketio', format: 'json',
      urls: procs.map((p) => `http://127.0.0.1:${p.port}`),
      serverPids: () => procs.map((p) => p.pid),
      auxPids: () => ({ 'redis-server': [redis.pid] }),
      createRooms: async () => {},
      logs: () => procs.map((p, i) => `process ${i + 1}:\n${p.output.join('\n')}`).join('\n'),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

async function createChatRooms(base: string, token: string, roomIds: string[]): Promise<void> {
  // a few requests in flight: room creation is setup, not measured
  const queue = [...roomIds];
  const worker = async () => {
    for (let roomId = queue.shift(); roomId !== undefined; roomId = queue.shift()) {
      const res = await fetch(`${base}/v1/chat/rooms`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ roomId, name: roomId, type: 'public' }),
      });
      const body = await res.text();
      if (!res.ok && res.status !== 409) throw new Error(`creating room ${roomId}: HTTP ${res.status} ${body}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

async function embeddedPeer(opts: PeerOptions): Promise<Peer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-chat-'));
  try {
    const proc = await startNodeScript('chat all', 'bin/chat.ts', ['all'], chatEnv({ ...opts.chatEnv, DATA_DIR: dataDir }), true, opts.profileDir);
    const base = `http://127.0.0.1:${proc.port}`;
    const token = await benchToken('bench-owner');
    return {
      name: 'chat', label: peerLabel('chat', opts), client: 'ws', format: opts.format,
      urls: [`ws://127.0.0.1:${proc.port}/chat`],
      serverPids: () => [proc.pid],
      auxPids: () => ({}),
      createRooms: (roomIds) => createChatRooms(base, token, roomIds),
      rest: { base, token, metricsUrls: [`${base}/metrics`] },
      logs: () => proc.output.join('\n'),
      async stop() {
        await proc.stop(10_000);
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

/** `chat gateway` x N + `chat persister` x M + `chat api` on a private nats-server, one SQLite store dir. */
async function natsPeer(opts: PeerOptions): Promise<Peer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-chat-nats-'));
  let nats: BenchNats | undefined;
  const procs: Started[] = [];
  const stopAll = async () => {
    await Promise.all(procs.map((p) => p.stop(10_000)));
    await nats?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    nats = await startNats();
    const env = (nodeId: number) => chatEnv({ DATA_DIR: dataDir, NATS_URL: nats!.url, NODE_ID: String(nodeId) });
    // the api creates the store schema before the other tiers open it
    const api = await startNodeScript('chat api', 'bin/chat.ts', ['api'], env(1), true, opts.profileDir);
    procs.push(api);
    // node ids: api 1, persisters 100+, gateways 10+ (unique among live processes)
    const [persisters, gateways] = await Promise.all([
      Promise.all(Array.from({ length: opts.persisters }, (_, i) =>
        startNodeScript(`chat persister ${i + 1}`, 'bin/chat.ts', ['persister'], env(100 + i), true, opts.profileDir))),
      Promise.all(Array.from({ length: opts.gateways }, (_, i) =>
        startNodeScript(`chat gateway ${i + 1}`, 'bin/chat.ts', ['gateway'], env(10 + i), true, opts.profileDir))),
    ]);
    procs.push(...persisters, ...gateways);
    const base = `http://127.0.0.1:${api.port}`;
    const token = await benchToken('bench-owner');
    const natsPid = nats.pid;
    const role = (i: number) => (i === 0 ? 'api' : i <= opts.persisters ? `persister ${i}` : `gateway ${i - opts.persisters}`);
    return {
      name: 'chat-nats', label: peerLabel('chat-nats', opts),
      client: 'ws', format: opts.format,
      urls: gateways.map((g) => `ws://127.0.0.1:${g.port}/chat`),
      serverPids: () => procs.map((p) => p.pid),
      auxPids: () => ({ 'nats-server': [natsPid] }),
      createRooms: (roomIds) => createChatRooms(base, token, roomIds),
      rest: { base, token, metricsUrls: persisters.map((p) => `http://127.0.0.1:${p.port}/metrics`) },
      logs: () => procs.map((p, i) => `${role(i)}:\n${p.output.join('\n')}`).join('\n'),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Why a peer cannot run on this machine (a server binary it needs is missing), or undefined when it can. */
export function peerUnavailable(name: PeerName): string | undefined {
  if (name === 'chat-nats' && !natsServerAvailable()) return `no nats-server at ${NATS_SERVER_BIN} (set NATS_SERVER_BIN)`;
  if (name === 'socketio-redis' && !redisAvailable()) return `no redis-server at ${REDIS_SERVER_BIN} (set REDIS_SERVER)`;
  return undefined;
}
