import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = resolve(import.meta.dirname, '../..');

export interface ChatProcess {
  port: number;
  http: string;
  ws: string;
  dataDir: string;
  child: ChildProcess;
  /** Lines the process printed (JSON logs on stdout, banner on stderr). */
  output: string[];
  exited: Promise<number | null>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  kill(): Promise<void>;
}

/**
 * Starts `chat <command>` as a real process (PORT=0) and resolves once it logged where it
 * listens. The data dir is a fresh temp dir unless given; `cleanup` removes it.
 */
export async function startChatProcess(opts: { command?: string; env?: Record<string, string>; dataDir?: string; timeoutMs?: number; execArgv?: string[] } = {}): Promise<ChatProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'chat-e2e-'));
  const child = spawn(process.execPath, [...(opts.execArgv ?? []), '--import', 'tsx', join(ROOT, 'bin/chat.ts'), opts.command ?? 'all'], {
    cwd: ROOT,
    // a short drain grace: tests that stop a process with raw sockets open (which ignore the
    // `reconnect` frame) wait for it; the drain tests set their own
    env: { ...process.env, NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info', DRAIN_GRACE_MS: '1000', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  createInterface({ input: child.stderr! }).on('line', (l) => output.push(l));
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => {
      // a process that never said where it listens would otherwise outlive the test
      child.kill('SIGKILL');
      reject(new Error(`chat ${opts.command ?? 'all'} did not start:\n${output.join('\n')}`));
    }, opts.timeoutMs ?? 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      try {
        const rec = JSON.parse(line) as { msg?: string; port?: number };
        if (rec.port && /listening/.test(rec.msg ?? '')) {
          clearTimeout(timer);
          resolvePort(rec.port);
        }
      } catch {
        // not a JSON log line (banner); kept in output for diagnostics
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`chat exited with ${code} before listening:\n${output.join('\n')}`));
    });
  });
  return {
    port, dataDir, child, output, exited,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
