import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';

export interface RedisServer {
  url: string;
  port: number;
  /** SIGTERM (SIGKILL after a grace period) and wait for the exit. Safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash: clients see their sockets drop. */
  kill(): Promise<void>;
  /** Starts a new, empty server on the same port (stopping the current one first if it runs). */
  restart(): Promise<void>;
  /** SIGSTOP: connections stay open but nothing is answered (a hung server). */
  pause(): void;
  /** SIGCONT after pause. */
  resume(): void;
}

export interface RedisServerOptions {
  /** Default `REDIS_SERVER` or `redis-server` on PATH. */
  binary?: string;
  startTimeoutMs?: number;
}

const STOP_GRACE_MS = 5000;
const live = new Set<ChildProcess>();
// a test process that ends without its teardown (a crash, tap's timeout) must not leave servers behind
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * Starts a private redis-server on an ephemeral loopback port, without persistence, and resolves
 * once it answers PING.
 */
export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const binary = opts.binary ?? process.env.REDIS_SERVER ?? 'redis-server';
  const timeoutMs = opts.startTimeoutMs ?? 20_000;
  let port = 0;
  let child: ChildProcess | undefined;
  // the free port is found by binding it and letting go, so another process may take it in between: try again
  for (let attempt = 1; child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await spawnServer(binary, port, timeoutMs);
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
  let current: ChildProcess | undefined = child;

  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const c = current;
    current = undefined;
    if (c === undefined) return;
    await terminate(c, signal);
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    async restart() {
      await end('SIGTERM');
      current = await spawnServer(binary, port, timeoutMs);
    },
    pause() {
      current?.kill('SIGSTOP');
    },
    resume() {
      current?.kill('SIGCONT');
    },
  };
}

async function spawnServer(binary: string, port: number, timeoutMs: number): Promise<ChildProcess> {
  const child = spawn(binary, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no',
    '--dir', tmpdir(), '--loglevel', 'warning',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const output: string[] = [];
  child.stdout!.on('data', (b: Buffer) => output.push(b.toString()));
  child.stderr!.on('data', (b: Buffer) => output.push(b.toString()));
  let ended: string | undefined;
  child.once('exit', (code, signal) => {
    live.delete(child);
    ended = `exited (${signal ?? code})`;
  });
  child.once('error', (err) => {
    live.delete(child);
    ended = `could not be started: ${err.message}`;
  });
  const deadline = Date.now() + timeoutMs;
  try {
    while (!(await ping(port))) {
      if (ended !== undefined) throw new Error(`redis-server on port ${port} ${ended}:\n${output.join('')}`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms:\n${output.join('')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await terminate(child, 'SIGKILL');
    throw err;
  }
  return child;
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  // a paused server only acts on the signal once continued
  child.kill('SIGCONT');
  const grace = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(grace);
}

/** True when a server on `port` answers PING with PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (b: Buffer) => {
      reply += b.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address !== null && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
