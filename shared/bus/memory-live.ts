import { ChatError } from '../protocol/errors.ts';
import type { LiveHandler, Subscription } from './bus.ts';

/**
 * The memory bus's live plane: handlers run synchronously inside `publish`; a publish made from
 * inside a handler is queued and delivered after the current one, so every subscriber still sees
 * publish order. Payloads are shared, not copied.
 */
export class MemoryLivePlane {
  readonly #report: (err: unknown, where: string) => void;
  readonly #exact = new Map<string, Set<LiveSub>>();
  readonly #wildcards = new Set<LiveSub>();
  /** subject -> queue group -> its members, each message to the next in turn. */
  readonly #queues = new Map<string, Map<string, QueueGroup>>();
  #published = 0;
  #delivering = false;
  // publishes made by handlers while a delivery runs, delivered after it in order
  #queuedSubjects: string[] = [];
  #queuedPayloads: Uint8Array[] = [];
  #queuedNumbers: number[] = [];
  #queuedSeqs: Array<number | undefined> = [];

  /** `report` hears of a handler that threw. */
  constructor(report: (err: unknown, where: string) => void) {
    this.#report = report;
  }

  /** `seq`: the stream sequence of a republished event (see the port's republish). */
  publish(subject: string, payload: Uint8Array, seq: number | undefined): void {
    const n = ++this.#published;
    if (this.#delivering) {
      this.#queuedSubjects.push(subject);
      this.#queuedPayloads.push(payload);
      this.#queuedNumbers.push(n);
      this.#queuedSeqs.push(seq);
      return;
    }
    this.#delivering = true;
    try {
      this.#deliver(subject, payload, n, seq);
      for (let i = 0; i < this.#queuedSubjects.length; i++) {
        this.#deliver(this.#queuedSubjects[i]!, this.#queuedPayloads[i]!, this.#queuedNumbers[i]!, this.#queuedSeqs[i]);
      }
    } finally {
      this.#delivering = false;
      if (this.#queuedSubjects.length !== 0) {
        this.#queuedSubjects.length = 0;
        this.#queuedPayloads.length = 0;
        this.#queuedNumbers.length = 0;
        this.#queuedSeqs.length = 0;
      }
    }
  }

  #deliver(subject: string, payload: Uint8Array, n: number, seq: number | undefined): void {
    const set = this.#exact.get(subject);
    if (set !== undefined) {
      for (const sub of set) if (sub.from <= n) this.#call(sub, payload, subject, seq);
    }
    if (this.#wildcards.size !== 0) {
      for (const sub of this.#wildcards) {
        if (sub.from <= n && matchesPattern(sub.tokens!, subject)) this.#call(sub, payload, subject, seq);
      }
    }
    if (this.#queues.size !== 0) {
      const groups = this.#queues.get(subject);
      if (groups !== undefined) {
        for (const group of groups.values()) {
          const eligible = group.members.filter((m) => m.from <= n);
          if (eligible.length === 0) continue;
          this.#call(eligible[group.next++ % eligible.length]!, payload, subject, seq);
        }
      }
    }
  }

  #call(sub: LiveSub, payload: Uint8Array, subject: string, seq: number | undefined): void {
    try {
      sub.handler(payload, subject, seq);
    } catch (err) {
      this.#report(err, `live subscriber of ${subject}`);
    }
  }

  subscribe(subject: string, handler: LiveHandler, queue?: string): Subscription {
    const tokens = subject.split('.');
    let wildcard = false;
    for (let i = 0; i < tokens.length; i++) {
      const tok = tokens[i]!;
      if (tok === '' || (tok === '>' && i !== tokens.length - 1)) {
        throw new ChatError('bad_request', `invalid subject "${subject}": empty token or '>' before the last token`);
      }
      if (tok === '*' || tok === '>') wildcard = true;
    }
    const sub: LiveSub = { handler, tokens: wildcard ? tokens : undefined, from: this.#published + 1 };
    if (queue !== undefined) {
      if (wildcard) throw new ChatError('bad_request', `queue group ${queue}: subject "${subject}" must be exact`);
      return this.#joinQueue(subject, queue, sub);
    }
    if (wildcard) {
      this.#wildcards.add(sub);
      return { unsubscribe: () => { this.#wildcards.delete(sub); } };
    }
    let set = this.#exact.get(subject);
    if (set === undefined) this.#exact.set(subject, set = new Set());
    set.add(sub);
    return {
      unsubscribe: () => {
        const current = this.#exact.get(subject);
        if (current === undefined || !current.delete(sub)) return;
        if (current.size === 0) this.#exact.delete(subject);
      },
    };
  }

  clear(): void {
    this.#exact.clear();
    this.#wildcards.clear();
    this.#queues.clear();
  }

  #joinQueue(subject: string, queue: string, sub: LiveSub): Subscription {
    let groups = this.#queues.get(subject);
    if (groups === undefined) this.#queues.set(subject, groups = new Map());
    let group = groups.get(queue);
    if (group === undefined) groups.set(queue, group = { members: [], next: 0 });
    group.members.push(sub);
    return {
      unsubscribe: () => {
        const i = group.members.indexOf(sub);
        if (i < 0) return;
        group.members.splice(i, 1);
        if (group.members.length !== 0) return;
        groups.delete(queue);
        if (groups.size === 0) this.#queues.delete(subject);
      },
    };
  }
}

interface QueueGroup {
  readonly members: LiveSub[];
  next: number;
}

interface LiveSub {
  readonly handler: LiveHandler;
  /** Pattern tokens for wildcard subscriptions; undefined for exact subjects. */
  readonly tokens: readonly string[] | undefined;
  /** Number of the first publish this subscription may see: no message published before it subscribed. */
  readonly from: number;
}

/** Matches a subject against pattern tokens without splitting it (no allocation). */
function matchesPattern(tokens: readonly string[], subject: string): boolean {
  let pos = 0;
  for (let i = 0; i < tokens.length; i++) {
    if (pos > subject.length) return false;
    const tok = tokens[i]!;
    if (tok === '>') return pos < subject.length;
    let end = subject.indexOf('.', pos);
    if (end === -1) end = subject.length;
    if (tok === '*') {
      if (end === pos) return false;
    } else if (end - pos !== tok.length || !subject.startsWith(tok, pos)) {
      return false;
    }
    pos = end + 1;
  }
  return pos === subject.length + 1;
}
