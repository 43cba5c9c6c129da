import type { Logger } from 'pino';
import { DiscardPolicy, RetentionPolicy, StorageType, nanos, type StreamConfig } from 'nats';
import { DEFAULTS } from '../config/index.ts';
import { ChatError } from '../protocol/errors.ts';
import { DEFAULT_DEDUPE_WINDOW_SEC } from './bus-defaults.ts';
import type { NatsBusConnection } from './nats-connection.ts';
import { JS_STREAM_NAME_IN_USE, JS_STREAM_NOT_FOUND, describe, jsErrCode, unavailable } from './nats-errors.ts';
import { DURABLE_FILTER, REPUBLISH } from './nats-messages.ts';

/** Failing publishes ask for a stream check too: at most one of theirs per this interval. */
const BACKGROUND_ENSURE_INTERVAL_MS = 5000;
/** JetStream names (stream, consumer) may not hold these. */
const BAD_NAME = /[\s.*>/\\]/;

/** What the stream is made of; omitted settings take the config's defaults. */
export interface StreamSettings {
  recoveryWindowSec: number;
  /** Default NATS_STREAM's. */
  streamName?: string;
  /** Default NATS_STREAM_REPLICAS's. */
  replicas?: number;
  /** Default NATS_DUPLICATE_WINDOW's, capped at recoveryWindowSec. */
  duplicateWindowSec?: number;
}

export type WantedStream = Partial<StreamConfig> & { name: string };

export function isJetStreamName(name: string): boolean {
  return name !== '' && !BAD_NAME.test(name);
}

/** The stream config we want; throws ChatError('bad_request') for settings NATS would refuse. */
export function wantedStream(s: StreamSettings): WantedStream {
  const name = s.streamName ?? DEFAULTS.natsStream;
  if (!isJetStreamName(name)) throw new ChatError('bad_request', `nats bus: invalid stream name "${name}"`);
  const replicas = s.replicas ?? DEFAULTS.natsStreamReplicas;
  if (!(Number.isInteger(replicas) && replicas >= 1 && replicas <= 5)) throw new ChatError('bad_request', `nats bus: replicas must be 1..5, got ${replicas}`);
  const dupSec = Math.min(s.duplicateWindowSec ?? DEFAULT_DEDUPE_WINDOW_SEC, s.recoveryWindowSec);
  if (!(dupSec > 0)) throw new ChatError('bad_request', `nats bus: duplicateWindowSec must be > 0, got ${dupSec}`);
  return {
    name,
    subjects: [DURABLE_FILTER],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(s.recoveryWindowSec * 1000),
    duplicate_window: nanos(dupSec * 1000),
    num_replicas: replicas,
    republish: { ...REPUBLISH },
  };
}

/**
 * Creates the JetStream stream behind the durable plane, or brings what we own of an existing
 * one's config in line (a server that lost its storage comes back without it, so this runs again
 * on every reconnect).
 *
 * The stream's RePublish rule is the live feed of every gateway: a stream without it stores
 * messages nobody sees live. nats-server 2.9 cannot add it to an existing stream ("can not change
 * republish"), so a stream made by an older version fails `ensure` with what to do about it
 * rather than run without live delivery.
 */
export class NatsStreamSetup {
  readonly name: string;
  readonly #want: WantedStream;
  readonly #connection: Pick<NatsBusConnection, 'require'>;
  readonly #log: Logger;
  #ensuring: Promise<void> | undefined;
  #lastBackgroundEnsure = 0;

  constructor(want: WantedStream, connection: Pick<NatsBusConnection, 'require'>, log: Logger) {
    this.name = want.name;
    this.#want = want;
    this.#connection = connection;
    this.#log = log;
  }

  /** Concurrent callers share one run. */
  ensure(): Promise<void> {
    this.#ensuring ??= this.#ensureNow().finally(() => { this.#ensuring = undefined; });
    return this.#ensuring;
  }

  /** `throttled`: at most one such call per interval does the check. */
  ensureInBackground(throttled = false): void {
    const now = Date.now();
    if (throttled && now - this.#lastBackgroundEnsure < BACKGROUND_ENSURE_INTERVAL_MS) return;
    this.#lastBackgroundEnsure = now;
    this.ensure().catch((err: unknown) => {
      this.#log.warn({ err, stream: this.name }, 'nats bus: could not check the stream (will retry on ready())');
    });
  }

  async #ensureNow(): Promise<void> {
    const { jsm } = this.#connection.require();
    const want = this.#want;
    const stream = this.name;
    let info;
    try {
      info = await jsm.streams.info(stream);
    } catch (err) {
      if (jsErrCode(err) !== JS_STREAM_NOT_FOUND) throw unavailable(err, `stream ${stream}: info`);
      try {
        await jsm.streams.add(want);
        this.#log.info({ stream, subjects: want.subjects, replicas: want.num_replicas }, 'nats bus: created the stream');
        return;
      } catch (addErr) {
        // another process created it first: check its config like any existing stream
        if (jsErrCode(addErr) !== JS_STREAM_NAME_IN_USE) throw unavailable(addErr, `stream ${stream}: create`);
        info = await jsm.streams.info(stream).catch((e: unknown) => { throw unavailable(e, `stream ${stream}: info`); });
      }
    }
    const have = info.config;
    if (have.storage !== want.storage) {
      this.#log.warn({ stream, storage: have.storage }, 'nats bus: the stream is not file-backed; storage cannot be changed in place');
    }
    const changed: string[] = [];
    if (!have.subjects.includes(DURABLE_FILTER)) changed.push('subjects');
    if (have.max_age !== want.max_age) changed.push('max_age');
    if (have.duplicate_window !== want.duplicate_window) changed.push('duplicate_window');
    if (have.num_replicas !== want.num_replicas) changed.push('num_replicas');
    if (have.discard !== want.discard) changed.push('discard');
    const republishes = have.republish?.src === REPUBLISH.src && have.republish.dest === REPUBLISH.dest && !have.republish.headers_only;
    if (!republishes) changed.push('republish');
    if (changed.length === 0) return;
    try {
      await jsm.streams.update(stream, {
        subjects: have.subjects.includes(DURABLE_FILTER) ? have.subjects : [...have.subjects, DURABLE_FILTER],
        max_age: want.max_age!,
        duplicate_window: want.duplicate_window!,
        num_replicas: want.num_replicas!,
        discard: want.discard!,
        republish: want.republish!,
      });
      this.#log.info({ stream, changed }, 'nats bus: updated the stream config');
    } catch (err) {
      if (!republishes) {
        throw new ChatError('unavailable', `stream ${stream} does not republish ${REPUBLISH.src} to ${REPUBLISH.dest}, which live delivery `
          + `needs, and NATS refused to add it (${describe(err)}). Once every persister has drained it, delete the stream `
          + `(nats stream rm ${stream}) so that it is created again, or set NATS_STREAM to a new name.`, { cause: err });
      }
      throw unavailable(err, `stream ${stream}: update ${changed.join(', ')}`);
    }
  }
}
