/**
 * What a store adapter logs through; a pino logger fits. Every adapter takes one, so it lives
 * beside the port rather than in any adapter.
 */
export interface StoreLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** For stores nobody watches: tests, benchmarks, one-shot CLI commands. */
export const SILENT_STORE_LOG: StoreLog = { info: () => undefined, warn: () => undefined, error: () => undefined };
