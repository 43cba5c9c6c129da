import cassandra from 'cassandra-driver';
import { ChatError } from '../protocol/errors.ts';
import { driverError } from './store-errors.ts';

const { errors, types } = cassandra;
const codes = types.responseErrorCodes;

/**
 * Server answers that mean "not now": the cluster cannot reach enough replicas, is overloaded or
 * starting, or did not answer in time. A write that timed out may or may not have landed; every
 * statement of the store is idempotent, so the caller retries the whole call.
 */
const TRANSIENT_RESPONSES: ReadonlySet<number> = new Set([
  codes.unavailableException, codes.overloaded, codes.isBootstrapping, codes.truncateError,
  codes.writeTimeout, codes.readTimeout, codes.readFailure, codes.writeFailure,
]);

/** True when the error says Cassandra (or enough of it) cannot be reached right now. */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof errors.NoHostAvailableError) return true;
  if (err instanceof errors.OperationTimedOutError) return true;
  if (err instanceof errors.BusyConnectionError) return true;
  if (err instanceof errors.ResponseError) return TRANSIENT_RESPONSES.has(err.code);
  // The driver rejects calls on a client that is shutting down with a plain DriverError.
  if (err instanceof errors.DriverError && /shut ?down/i.test(err.message)) return true;
  return false;
}

/**
 * Cassandra's side of store-errors.ts: `unavailable` when Cassandra cannot be reached or did not
 * answer in time (callers retry: the persister naks with backoff, the api answers 503), `internal`
 * for everything else. ChatErrors pass.
 */
export function cassandraError(err: unknown, op: string): ChatError {
  if (err instanceof ChatError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return driverError('cassandra', op, err, isUnavailable(err) ? 'unavailable' : 'internal', detail);
}
