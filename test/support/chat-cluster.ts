import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChatProcess, removeDir, type ChatProcess } from './chat-process.ts';

/**
 * The distributed deployment as real processes on loopback: `chat api`, N × `chat gateway`,
 * M × `chat persister`, joined by NATS, sharing one SQLite file (WAL, busy timeout) in a temp
 * data dir, which is how the distributed tests run without Cassandra. Every process listens on
 * its own free port and leases its node id (NODE_ID is left unset).
 */
export interface ChatCluster {
  api: ChatProcess;
  gateways: ChatProcess[];
  persisters: ChatProcess[];
  dataDir: string;
  env: Record<string, string>;
  all(): ChatProcess[];
  /** Starts one more process of the tier with the cluster's env and data dir. */
  add(command: 'gateway' | 'persister' | 'api'): Promise<ChatProcess>;
  /** SIGTERM to everything still running, SIGKILL after `graceMs`; removes the data dir. */
  stop(graceMs?: number): Promise<void>;
}

export interface ChatClusterOptions {
  natsUrl: string;
  gateways?: number;
  persisters?: number;
  env?: Record<string, string>;
}

/** Variables of the test runner's environment that would change what the tiers connect to. */
const NEUTRAL_ENV = { NODE_ID: '', REDIS_URL: '', CASSANDRA_CONTACT_POINTS: '', STORE: '', BUS: '', PRESENCE: '' };

export async function startChatCluster(opts: ChatClusterOptions): Promise<ChatCluster> {
  const dataDir = mkdtempSync(join(tmpdir(), 'chat-cluster-'));
  const env = { ...NEUTRAL_ENV, NATS_URL: opts.natsUrl, ...opts.env };
  const started: ChatProcess[] = [];
  const start = async (command: string) => {
    const p = await startChatProcess({ command, env, dataDir, timeoutMs: 60_000 });
    started.push(p);
    return p;
  };
  const cluster: ChatCluster = {
    api: undefined as unknown as ChatProcess,
    gateways: [],
    persisters: [],
    dataDir,
    env,
    all: () => [...started],
    async add(command) {
      const p = await start(command);
      if (command === 'gateway') cluster.gateways.push(p);
      else if (command === 'persister') cluster.persisters.push(p);
      return p;
    },
    async stop(graceMs = 10_000) {
      // CHAT_E2E_LOG_DIR=<dir> keeps every process's log lines, to read after a failed run
      const logDir = process.env['CHAT_E2E_LOG_DIR'];
      if (logDir) {
        mkdirSync(logDir, { recursive: true });
        for (const p of started) writeFileSync(join(logDir, `${p.child.pid}-${p.port}.log`), p.output.join('\n') + '\n');
      }
      await Promise.all(started.map(async (p) => {
        if (p.child.exitCode !== null || p.child.signalCode !== null) return;
        const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
        await p.stop();
        clearTimeout(timer);
      }));
      removeDir(dataDir);
    },
  };
  try {
    // the first process creates the SQLite schema, the stream and the node id bucket alone
    cluster.api = await start('api');
    // the rest together; allSettled so that none is left running if another fails
    const settled = await Promise.allSettled([
      ...Array.from({ length: opts.gateways ?? 3 }, () => start('gateway')),
      ...Array.from({ length: opts.persisters ?? 2 }, () => start('persister')),
    ]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const procs = settled.map((r) => (r as PromiseFulfilledResult<ChatProcess>).value);
    const g = opts.gateways ?? 3;
    cluster.gateways.push(...procs.slice(0, g));
    cluster.persisters.push(...procs.slice(g));
  } catch (err) {
    await cluster.stop(2000);
    throw err;
  }
  return cluster;
}

/** The node id a process logged when it claimed its lease. */
export function leasedNodeId(p: ChatProcess): number | undefined {
  for (const line of p.output) {
    if (!line.includes('node id lease: claimed')) continue;
    return (JSON.parse(line) as { nodeId: number }).nodeId;
  }
  return undefined;
}
