import { MAX_NODE_ID } from './snowflake.ts';
import type { NodeIdLease } from './node-id-lease.ts';
import type { ChatError } from '../protocol/errors.ts';

/**
 * A node id set by configuration (`NODE_ID`, or 0 for a single embedded process). Nothing checks
 * that no other process uses it: that is the operator's promise.
 */
export function fixedNodeId(nodeId: number): NodeIdLease {
  if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > MAX_NODE_ID) {
    throw new RangeError(`node id must be an integer 0..${MAX_NODE_ID}, got ${nodeId}`);
  }
  return {
    kind: 'fixed',
    nodeId,
    valid: () => true,
    lost: new Promise<ChatError>(() => {}),
    release: async () => {},
  };
}
