import { tenantToken, type RoomKey } from '../domain/room-key.ts';

/**
 * The bus: how tiers talk. Two planes with different guarantees.
 *
 * Rooms are named by their key (shared/domain/room-key.ts: tenant and id, one subject token), so
 * two tenants' rooms of the same id never share a subject.
 *
 * Live plane (core pub/sub): `publish` / `subscribe` on subjects such as `chat.live.<room key>`.
 * At most once, no persistence, per-publisher order preserved for one subject. A subscriber that
 * is not connected at publish time never sees the message. Processes publish ephemeral frames
 * there (typing, presence); durable events reach it from the stream (below), never from them.
 *
 * Durable plane (the stream): `publishDurable` appends an event to the room's durable subject
 * `chat.durable.<room key>` and resolves only once the stream has stored it. A second publish with
 * the same `dedupeId` within the dedupe window is not stored again: it resolves with the first
 * one's sequence and `duplicate: true`. Sequences grow monotonically over the whole stream.
 * The stream keeps events for the recovery window (or a size cap), for `replay` and consumers.
 * Publishes are handed to the stream in call order: of two calls made one after the other by
 * one process, the second is not stored before the first (unless the first fails), whether or
 * not the caller waited for the first to resolve. A failed publish (`unavailable`) may still
 * have been stored: retrying with the same `dedupeId` is always safe.
 *
 * Republish: the stream itself announces every event it stores, once, on the room's live subject
 * (`subjects.roomEvents(roomId)`), with the event's payload as published and its sequence as the
 * handler's `seq` argument; a deduplicated publish is not announced again. So whatever was stored
 * is announced even when its publisher dies right after the stream stored it, and a live message
 * with a `seq` is a stored event while one without is an ephemeral frame.
 *
 * Consumers (`consume`): a named durable consumer shared by any number of processes; each event is
 * delivered to one of them, at least once, until acked. `nak` redelivers after a delay; `term`
 * gives up on the event. Delivery order within a batch follows stream order, but redeliveries
 * can arrive after later events: handlers must be idempotent and order-independent.
 * An event stays with the process it was handed to as long as that process shows signs of life:
 * from the moment the event reaches the process until its batch handler returns, the consumer
 * marks it in progress every `ackWaitMs / 2` (one timer per batch). So `ackWaitMs` is how long a
 * dead (or frozen) process keeps its events from the others, not how long a write may take.
 *
 * Errors: methods reject with ChatError('unavailable') when the backing server cannot be reached
 * (sends fail fast; nothing is silently dropped). `publish` on the live plane never throws.
 */
export interface Bus {
  readonly kind: 'memory' | 'nats';

  publish(subject: string, payload: Uint8Array): void;
  /**
   * With `queue`, the subscription joins that queue group: each message on the subject goes to one
   * member of the group (across every process on the bus), not to all; subscribers outside the
   * group still get it. Queue groups take exact subjects only. Still at most once: a message
   * published while the group has no member is lost.
   */
  subscribe(subject: string, handler: LiveHandler, options?: SubscribeOptions): Subscription;
  /**
   * Watches the live plane's continuity. `interrupted()` is called when live delivery stopped
   * (the connection to the server was lost, or a server of the cluster, through which others'
   * messages may have been on their way, left it): live messages published from then on may never
   * arrive. `restored(sinceMs)` is called once live delivery works again (the subscriptions are
   * back at the server), with the time the interruption began: what was published in between
   * can only be recovered from the stream (`replay`). Calls alternate, starting with
   * `interrupted`; an in-process bus is never interrupted.
   */
  watchLive(watcher: LiveWatcher): Subscription;

  publishDurable(room: RoomKey, dedupeId: string, payload: Uint8Array, headers?: Record<string, string>): Promise<DurableAck>;
  /** The stored event at `seq`, or undefined when it has aged out of the stream. */
  getDurable(seq: number): Promise<DurableMessage | undefined>;
  /**
   * Calls `onEvent` for each event of the room stored at or after `sinceMs` (stream time), in
   * stream order, then resolves with whether the stream still covered `sinceMs` (false: older
   * events were already dropped and the caller must fall back to the store). With `limit`, at
   * most that many events are passed on and `more` says whether the room had more to replay
   * (what a resume caps per request: the rest is the store's, paged over REST).
   */
  replay(room: RoomKey, sinceMs: number, onEvent: (msg: DurableMessage) => void, limit?: number): Promise<ReplayResult>;
  consume(options: ConsumeOptions, handler: BatchHandler): Consumer;

  /** Resolves when the bus is connected and the stream exists; rejects with why not. */
  ready(): Promise<void>;
  /** Stops consumers, flushes pending publishes and disconnects. */
  close(): Promise<void>;
}

/**
 * `seq` is set for an event the stream republished (its payload is what `publishDurable` stored)
 * and undefined for what a process published on the live plane itself. `traceparent` is the trace
 * context the event was published with, given only while tracing is on (reading it costs a header
 * decode per message); the in-process bus gives none: its republish runs inside the publisher's
 * span, which is then the active one.
 */
export type LiveHandler = (payload: Uint8Array, subject: string, seq: number | undefined, traceparent?: string) => void;

export interface SubscribeOptions {
  queue?: string;
}

export interface LiveWatcher {
  interrupted(): void;
  restored(sinceMs: number): void;
}

export interface Subscription {
  unsubscribe(): void;
}

/** What a replay passed on (see `Bus.replay`); `more` only with a limit. */
export interface ReplayResult { complete: boolean; lastSeq: number; more?: boolean }

export interface DurableAck {
  seq: number;
  duplicate: boolean;
}

export interface DurableMessage {
  seq: number;
  /** The room's key (its durable subject's last token). */
  roomId: RoomKey;
  dedupeId: string;
  /** Stream time the event was stored, ms since epoch. */
  storedAt: number;
  data: Uint8Array;
  headers: Record<string, string> | undefined;
}

/** One delivery of an event to a consumer. The first of `ack`, `nak` and `term` settles it; later calls are ignored. */
export interface Delivery extends DurableMessage {
  /** 1 on first delivery. */
  deliveryCount: number;
  ack(): void;
  /** Redeliver later (default: the redelivery backoff, `redeliveryDelayMs` of shared/retry). */
  nak(delayMs?: number): void;
  /** Never deliver again (the caller dead-lettered it). */
  term(): void;
  /**
   * `data` decoded as msgpack; throws what the decoder throws. The memory bus decodes a stored
   * event once for all its consumer groups, so the value may be another consumer's too: read it,
   * never change it.
   */
  decoded(): unknown;
  /**
   * Still being worked on: the ack wait starts again. Ignored once settled. The consumer does this
   * itself while the batch handler runs; a handler that keeps a delivery after returning may call it.
   */
  working(): void;
}

export interface ConsumeOptions {
  /** Durable name: processes using the same name share the work. */
  durable: string;
  /** Deliver at most this many events per batch. */
  maxBatch: number;
  /** Wait at most this long for a batch to fill before handing over what there is. */
  maxWaitMs: number;
  /**
   * How long a delivery stays with a consumer that neither settles it nor marks it in progress
   * before it is redelivered (default DEFAULT_ACK_WAIT_MS, bus-defaults.ts). The consumer marks
   * its batch in progress while the handler runs, so this is the takeover time after a process died.
   */
  ackWaitMs?: number;
}

/**
 * Receives each batch; every delivery must be acked, nak'd or term'd. While the returned promise
 * is pending the batch is kept in progress; what is still unsettled when it resolves is
 * redelivered after ackWait, and what is unsettled when it rejects comes back after the backoff.
 */
export type BatchHandler = (batch: Delivery[]) => Promise<void>;

export interface Consumer {
  /** Events stored but not yet acked by this consumer group. */
  pending(): Promise<number>;
  /**
   * Takes no more events; resolves once the batch being handled (if any) is done, and what was
   * received but not handed over went back to the group for its other members.
   */
  stop(): Promise<void>;
}

/**
 * `roomEvents` is where the stream republishes `durable` (a `>` prefix mapping: nats-server 2.9
 * accepts no other republish destination), so the two prefixes move together.
 */
export const subjects = {
  roomEvents: (room: RoomKey) => `chat.live.${room}`,
  roomControl: (room: RoomKey) => `chat.room.${room}.ctl`,
  durable: (room: RoomKey) => `chat.durable.${room}`,
  userEvents: (tenant: string, userId: string) => `chat.user.${subjectToken(tenant)}.${subjectToken(userId)}.ev`,
  deadLetter: 'chat.deadletter',
  /** AI requests, served by the api tier's AI workers in the queue group `aiWorkers`. */
  aiRequests: 'chat.ai.req',
  aiWorkers: 'chat-ai-workers',
  /** Where a worker streams the answer to one `/v1/chat/ai/ask` request. */
  aiReply: (requestId: string) => `chat.ai.reply.${subjectToken(requestId)}`,
} as const;

/**
 * User ids and tenants come from tokens and may hold characters a subject token cannot ('.', '*',
 * '>', spaces): such values are carried as '~' + base64url, which no plain value can start with
 * (the same token room keys use for tenants).
 */
export const subjectToken = tenantToken;
