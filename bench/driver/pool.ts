import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { track } from '../lib/processes.ts';
import type { Command, Reply } from './messages.ts';

type CommandBody = Command extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never;

/**
 * The load workers, seen from the bench: separate Node processes (each may hold up to 20,000 open
 * files), started once per run and reused across peers and steps.
 */
export class WorkerPool {
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  private constructor(readonly workers: ChildProcess[]) {
    for (const w of workers) {
      w.on('message', (reply: Reply) => {
        const p = this.waiting.get(reply.id);
        if (!p) return;
        this.waiting.delete(reply.id);
        if ('error' in reply && reply.error) p.reject(new Error(`load worker: ${reply.error}`));
        else p.resolve(reply);
      });
      w.once('exit', (code) => {
        for (const p of this.waiting.values()) p.reject(new Error(`a load worker exited (${code})`));
        this.waiting.clear();
      });
    }
  }

  static start(count: number): WorkerPool {
    const script = join(import.meta.dirname, 'worker.ts');
    const workers = Array.from({ length: count }, () => track(fork(script, [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })));
    return new WorkerPool(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  pids(): number[] {
    return this.workers.map((w) => w.pid!);
  }

  /** Sends the command to worker `i` and resolves with its reply. */
  ask<R extends Reply>(i: number, body: CommandBody): Promise<R> {
    const id = ++this.nextId;
    return new Promise<R>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (r: Reply) => void, reject });
      this.workers[i]!.send({ ...body, id } as Command);
    });
  }

  /** The same command to every worker (or one built per worker). */
  all<R extends Reply>(body: CommandBody | ((i: number) => CommandBody)): Promise<R[]> {
    return Promise.all(this.workers.map((_, i) => this.ask<R>(i, typeof body === 'function' ? body(i) : body)));
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map(async (w, i) => {
      if (w.exitCode !== null) return;
      const exited = new Promise<void>((r) => w.once('exit', () => r()));
      this.ask(i, { cmd: 'exit' }).catch(() => undefined); // the worker may exit before it replies
      const timer = setTimeout(() => w.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }));
  }
}
