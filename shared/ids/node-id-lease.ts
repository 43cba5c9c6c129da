import { ChatError } from '../protocol/errors.ts';
import { Snowflake } from './snowflake.ts';

/**
 * A snowflake node id held by this process alone.
 *
 * Contract an adapter keeps:
 * - while `valid()` is true, no other live process holds `nodeId` (so the ids this process makes
 *   cannot collide with anyone's: the sequence covers one process, the node id the rest);
 * - `valid()` turns false at the latest when another process could claim the id (the lease
 *   lapsed or was taken), and never turns true again: a lease that was lost stays lost;
 * - `lost` is a promise that resolves once, with the reason, when `valid()` turned false
 *   (it never resolves for a lease that cannot be lost, nor after `release()`);
 * - `release()` gives the id back for the next claimer (best effort, bounded in time; a
 *   holder that died without releasing frees its id when its lease expires).
 */
export interface NodeIdLease {
  readonly kind: 'fixed' | 'nats-kv';
  readonly nodeId: number;
  valid(): boolean;
  readonly lost: Promise<ChatError>;
  release(): Promise<void>;
}

/**
 * Snowflakes that stop once their node id lease is gone: `next()` throws ChatError('unavailable')
 * instead of making an id another process may also make. The check is one clock read.
 */
export class LeasedSnowflake extends Snowflake {
  constructor(private readonly lease: NodeIdLease, now?: () => number) {
    super(lease.nodeId, now);
  }

  override next(): string {
    if (!this.lease.valid()) {
      throw new ChatError('unavailable', `node id ${this.lease.nodeId} is no longer leased to this process; it makes no more ids`);
    }
    return super.next();
  }
}
