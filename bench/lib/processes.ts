import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';
import { waitForHttp } from './net.ts';

/**
 * Every process the bench starts (servers under test, nats-server, load workers) is registered
 * here, so an error, Ctrl-C or a plain exit of the bench never leaves one behind.
 */
const live = new Set<ChildProcess>();
let hooked = false;

export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!hooked) {
    hooked = true;
    process.once('exit', killAll);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        killAll();
        process.exit(130);
      });
    }
  }
  return child;
}

/** SIGKILL for every tracked child still running; used on the way out only. */
export function killAll(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

export interface Started {
  child: ChildProcess;
  pid: number;
  /** The JSON log line that announced the port. */
  port: number;
  output: string[];
  exited: Promise<number | null>;
  /** SIGTERM, SIGKILL after `graceMs`; resolves when it is gone. */
  stop(graceMs?: number): Promise<void>;
}

const OUTPUT_LINES = 200;

/**
 * Starts a server process. With `readyUrl` it was given its port and is ready once that URL
 * answers 2xx (chat-svc at LOG_LEVEL=warn prints no listening line); otherwise it must print a
 * JSON line with `port` and a message containing "listening" (the peers do).
 */
export async function startServer(command: string, args: string[], opts: SpawnOptions & { name: string; timeoutMs?: number; port?: number; readyUrl?: string }): Promise<Started> {
  if (opts.readyUrl === undefined || opts.port === undefined) return startListening(command, args, opts);
  const child = track(spawn(command, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] }));
  const output: string[] = [];
  const keep = (line: string) => {
    output.push(line);
    if (output.length > OUTPUT_LINES) output.shift();
  };
  createInterface({ input: child.stdout! }).on('line', keep);
  createInterface({ input: child.stderr! }).on('line', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await waitForHttp(opts.readyUrl, opts.timeoutMs ?? 30_000, () => child.exitCode === null && child.signalCode === null);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${opts.name} did not start: ${(err as Error).message}\n${output.join('\n')}`);
  }
  return { child, pid: child.pid!, port: opts.port, output, exited, stop: (graceMs = 5000) => stopChild(child, exited, graceMs) };
}

function startListening(command: string, args: string[], opts: SpawnOptions & { name: string; timeoutMs?: number }): Promise<Started> {
  const child = track(spawn(command, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] }));
  const output: string[] = [];
  const keep = (line: string) => {
    output.push(line);
    if (output.length > OUTPUT_LINES) output.shift();
  };
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  createInterface({ input: child.stderr! }).on('line', keep);
  return new Promise<Started>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${opts.name} did not start in time:\n${output.join('\n')}`));
    }, opts.timeoutMs ?? 30_000);
    let announced = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      keep(line);
      if (announced || !line.startsWith('{')) return;
      let rec: { msg?: unknown; port?: unknown };
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        return; // a line that only looks like JSON: kept in output for diagnostics
      }
      if (typeof rec.port === 'number' && typeof rec.msg === 'string' && rec.msg.includes('listening')) {
        announced = true;
        clearTimeout(timer);
        resolve({
          child, pid: child.pid!, port: rec.port, output, exited,
          stop: (graceMs = 5000) => stopChild(child, exited, graceMs),
        });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      if (!announced) reject(new Error(`${opts.name} exited with ${code} before listening:\n${output.join('\n')}`));
    });
  });
}

export async function stopChild(child: ChildProcess, exited: Promise<unknown>, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
