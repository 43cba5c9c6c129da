import { DEFAULTS } from '../config/index.ts';

/**
 * What an adapter uses for a setting its caller left out. Settings the config carries take its
 * DEFAULTS, so a bus built in code (tests, benches) behaves like one built from the environment.
 */

/**
 * How long an unacked delivery stays with one consumer when its group does not say (the
 * persister's PERSIST_ACK_WAIT_MS default; the notifier sets its own, NOTIFY_ACK_WAIT_MS).
 */
export const DEFAULT_ACK_WAIT_MS = DEFAULTS.persistAckWaitMs;

/** How long a dedupeId is remembered (NATS_DUPLICATE_WINDOW; the memory bus has no variable for it). */
export const DEFAULT_DEDUPE_WINDOW_SEC = DEFAULTS.natsDuplicateWindowSec;

/** Bytes of events the in-process stream holds at most (MEMORY_STREAM_MAX_MB). */
export const DEFAULT_MEMORY_STREAM_MAX_BYTES = DEFAULTS.memoryStreamMaxMb * 1024 * 1024;
