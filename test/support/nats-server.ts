import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Real nats-server processes for tests, on loopback ports, each with its own JetStream store dir.
 *
 * `start` resolves only once the client port accepts connections AND the monitoring endpoint
 * `/healthz` answers 200, which on a JetStream server means JetStream is up (in a cluster: the
 * node has a meta leader and its streams are current). A process left behind by a crashed test
 * run is killed when the test process exits.
 */
export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? (existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server');

export interface NatsServerOptions {
  /** Client port; default: a free one. */
  port?: number;
  /** JetStream store dir; default: a fresh temp dir, removed by `destroy()`. */
  storeDir?: string;
  /** Enable JetStream (default true). */
  jetstream?: boolean;
  serverName?: string;
  /** Joins a cluster: its name, this node's route port, and the route URLs of the other nodes. */
  clusterName?: string;
  clusterPort?: number;
  routes?: string[];
  /** Extra command-line arguments. */
  args?: string[];
  /** How long start/restart may take before failing (default 20 s). */
  timeoutMs?: number;
}

export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly monitorPort: number;
  readonly clusterPort: number | undefined;
  readonly storeDir: string;
  readonly serverName: string;
  /** The last lines the server logged (for failure messages). */
  logs(): string;
  running(): boolean;
  /** Graceful stop (SIGTERM, SIGKILL after 5 s); keeps the store dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. Keeps the store dir. Idempotent. */
  kill(): Promise<void>;
  /** SIGSTOP: the server hangs (connections stay open, nothing is answered) until `resume`. */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
  /** Starts again on the same ports with the same store dir (stops it first if running). */
  restart(): Promise<void>;
  /** Stops it and removes the store dir if this helper created it. */
  destroy(): Promise<void>;
}

const LOG_LINES = 200;
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const ownsStore = opts.storeDir === undefined;
  const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), 'chat-nats-'));
  const fixedPorts = opts.port !== undefined;
  // a free port can be taken by someone else between probing and binding: retry with new ones
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? await freePort();
    const monitorPort = await freePort();
    const server = new ManagedNatsServer({ ...opts, storeDir }, port, monitorPort, ownsStore);
    try {
      await server.start();
      return server;
    } catch (err) {
      await server.kill();
      if (fixedPorts || attempt >= 3 || !/address already in use/i.test(server.logs())) {
        if (ownsStore) rmSync(storeDir, { recursive: true, force: true });
        throw err;
      }
    }
  }
}

/**
 * A JetStream cluster of `size` nodes (default 3) on loopback, each routed to all others. Resolves
 * once every node reports healthy.
 */
export async function startNatsCluster(opts: { size?: number; clusterName?: string; timeoutMs?: number } = {}): Promise<NatsServer[]> {
  const size = opts.size ?? 3;
  const clusterName = opts.clusterName ?? `chat-test-${process.pid}`;
  const clusterPorts: number[] = [];
  for (let i = 0; i < size; i++) clusterPorts.push(await freePort());
  const routes = clusterPorts.map((p) => `nats://127.0.0.1:${p}`);
  // nodes start concurrently: a JetStream cluster needs a quorum before any node is healthy
  const started = await Promise.allSettled(clusterPorts.map((clusterPort, i) => startNatsServer({
    serverName: `${clusterName}-n${i + 1}`,
    clusterName,
    clusterPort,
    routes: routes.filter((_, j) => j !== i),
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
  })));
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(servers.map((s) => s.destroy()));
    throw failed.reason;
  }
  return servers;
}

class ManagedNatsServer implements NatsServer {
  readonly url: string;
  readonly storeDir: string;
  readonly serverName: string;
  readonly clusterPort: number | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  readonly #lines: string[] = [];

  constructor(
    private readonly opts: NatsServerOptions & { storeDir: string },
    readonly port: number,
    readonly monitorPort: number,
    private readonly ownsStore: boolean,
  ) {
    this.url = `nats://127.0.0.1:${port}`;
    this.storeDir = opts.storeDir;
    this.serverName = opts.serverName ?? `chat-test-${port}`;
    this.clusterPort = opts.clusterPort;
  }

  logs(): string {
    return this.#lines.join('\n');
  }

  running(): boolean {
    return this.#child !== undefined;
  }

  async start(): Promise<void> {
    if (this.#child !== undefined) throw new Error(`nats-server ${this.serverName} is already running`);
    const args = ['-a', '127.0.0.1', '-p', String(this.port), '-m', String(this.monitorPort), '--server_name', this.serverName];
    if (this.opts.jetstream !== false) args.push('-js', '-sd', this.storeDir);
    if (this.opts.clusterName !== undefined) {
      if (this.opts.clusterPort === undefined) throw new Error('a cluster node needs clusterPort');
      args.push('--cluster_name', this.opts.clusterName, '--cluster', `nats://127.0.0.1:${this.opts.clusterPort}`);
      if (this.opts.routes?.length) args.push('--routes', this.opts.routes.join(','));
    }
    args.push(...(this.opts.args ?? []));

    const child = spawn(NATS_SERVER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    live.add(child);
    installExitHook();
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        this.#lines.push(line);
        if (this.#lines.length > LOG_LINES) this.#lines.shift();
      }
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let exitCode: number | string | null | undefined;
    this.#exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitCode = code ?? signal;
        live.delete(child);
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
      child.once('error', (err) => {
        this.#lines.push(`spawn error: ${err.message}`);
        exitCode = err.message;
        live.delete(child);
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
    });

    const deadline = Date.now() + (this.opts.timeoutMs ?? 20_000);
    const exited = () => exitCode !== undefined;
    while (!(await portAccepts(this.port))) {
      if (exited()) throw new Error(`nats-server ${this.serverName} exited (${String(exitCode)}) before listening:\n${this.logs()}`);
      if (Date.now() > deadline) throw new Error(`nats-server ${this.serverName} did not listen on ${this.port} in time:\n${this.logs()}`);
      await sleep(25);
    }
    while (!(await healthy(this.monitorPort))) {
      if (exited()) throw new Error(`nats-server ${this.serverName} exited (${String(exitCode)}) before it was healthy:\n${this.logs()}`);
      if (Date.now() > deadline) throw new Error(`nats-server ${this.serverName} was not healthy in time:\n${this.logs()}`);
      await sleep(50);
    }
  }

  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    // a paused server would take SIGTERM only once continued
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }

  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    child.kill('SIGKILL');
    await this.#exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    try {
      await this.start();
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  async destroy(): Promise<void> {
    await this.stop();
    if (this.ownsStore) rmSync(this.storeDir, { recursive: true, force: true });
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('could not get a free port'))));
    });
  });
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function healthy(monitorPort: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    // not listening yet, or the request timed out: the caller polls again
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
