import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { track, stopChild } from './processes.ts';
import { freePort, waitForHttp } from './net.ts';

/** NATS_SERVER_BIN, or nats-server where Debian's package or a manual install puts it. */
export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN
  ?? ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find((p) => existsSync(p))
  ?? '/usr/sbin/nats-server';

export function natsServerAvailable(): boolean {
  return existsSync(NATS_SERVER_BIN);
}

export interface BenchNats {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** A private JetStream nats-server on a free loopback port with its own store dir, removed on stop. */
export async function startNats(): Promise<BenchNats> {
  if (!existsSync(NATS_SERVER_BIN)) throw new Error(`nats-server not found at ${NATS_SERVER_BIN} (set NATS_SERVER_BIN)`);
  const port = await freePort();
  const monitorPort = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'bench-nats-'));
  const child = track(spawn(NATS_SERVER_BIN, ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '-js', '-sd', storeDir], { stdio: ['ignore', 'ignore', 'pipe'] }));
  const logs: string[] = [];
  child.stderr!.on('data', (b: Buffer) => logs.push(b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    // /healthz answers 200 only once JetStream is up
    await waitForHttp(`http://127.0.0.1:${monitorPort}/healthz`, 20_000, () => child.exitCode === null);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(storeDir, { recursive: true, force: true });
    throw new Error(`nats-server did not start: ${(err as Error).message}\n${logs.join('').slice(-2000)}`);
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      await stopChild(child, exited);
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
