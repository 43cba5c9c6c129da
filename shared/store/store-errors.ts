import { ChatError } from '../protocol/errors.ts';
import type { Store } from './store.ts';

/**
 * A driver failure as every store adapter reports it (the port's promise): `unavailable` when the
 * backend cannot serve now and the caller should retry, `internal` otherwise, always with the
 * driver error as cause and a message naming the store and the operation. Each adapter decides
 * which code its driver's errors get (sqlite-errors.ts, cassandra-errors.ts); ChatErrors thrown
 * inside an adapter are ours already and pass through there untouched.
 */
export function driverError(
  store: Store['kind'], op: string, err: unknown, code: 'unavailable' | 'internal', detail?: string,
): ChatError {
  const message = detail === undefined ? `${store} store: ${op} failed` : `${store} store: ${op}: ${detail}`;
  return new ChatError(code, message, { cause: err });
}
