import type { BusConfig } from '../config/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import { fixedNodeId } from './fixed-node-id.ts';
import { claimNatsNodeId } from './nats-node-id-lease.ts';
import type { NodeIdLease } from './node-id-lease.ts';

export { Snowflake, idTime, idAtTime, compareIds, isId, MAX_NODE_ID } from './snowflake.ts';
export { bigintIdTime } from './snowflake.ts';
export { LeasedSnowflake, type NodeIdLease } from './node-id-lease.ts';
export { fixedNodeId } from './fixed-node-id.ts';
export { claimNatsNodeId, DEFAULT_NODE_ID_BUCKET, DEFAULT_LEASE_TTL_MS, type NatsNodeIdLeaseConfig, type NatsNodeIdLeaseOptions } from './nats-node-id-lease.ts';

/** The config sections a node id comes from: NODE_ID, and the bus that may hold the leases. */
export interface NodeIdConfig {
  nodeId: number | undefined;
  bus: BusConfig;
}

/**
 * The node id of this process: `NODE_ID` when set (the operator vouches for it), a lease in NATS KV
 * when the bus is NATS (processes of one deployment share the bucket), else 0 (one embedded
 * process has nobody to collide with).
 */
export async function claimNodeId(config: NodeIdConfig, log: Logger, holder?: Record<string, string>): Promise<NodeIdLease> {
  if (config.nodeId !== undefined) return fixedNodeId(config.nodeId);
  switch (config.bus.adapter) {
    case 'nats':
      return claimNatsNodeId({ servers: config.bus.servers, replicas: config.bus.replicas ?? 1, ...(holder ? { holder } : {}) }, log);
    case 'memory':
      return fixedNodeId(0);
    default: {
      const never: never = config.bus;
      throw new Error(`unknown bus adapter ${String((never as { adapter?: unknown }).adapter)}`);
    }
  }
}
