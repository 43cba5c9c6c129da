import { ChatError } from '../protocol/errors.ts';
import type { ConsumeOptions } from './bus.ts';
import { DEFAULT_ACK_WAIT_MS } from './bus-defaults.ts';

/** `ConsumeOptions` checked, with the default ack wait filled in. */
export interface ConsumerSettings {
  durable: string;
  maxBatch: number;
  maxWaitMs: number;
  ackWaitMs: number;
}

/** Checks the options of `consume` the same way for every adapter; throws ChatError('bad_request'). */
export function consumerSettings(options: ConsumeOptions): ConsumerSettings {
  const { durable, maxBatch, maxWaitMs } = options;
  const ackWaitMs = options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
  if (durable === '') throw new ChatError('bad_request', 'consume: durable name must not be empty');
  if (!(Number.isInteger(maxBatch) && maxBatch > 0)) throw new ChatError('bad_request', `consume: maxBatch must be a positive integer, got ${maxBatch}`);
  if (!(maxWaitMs >= 0)) throw new ChatError('bad_request', `consume: maxWaitMs must be >= 0, got ${maxWaitMs}`);
  if (!(ackWaitMs > 0)) throw new ChatError('bad_request', `consume: ackWaitMs must be > 0, got ${ackWaitMs}`);
  return { durable, maxBatch, maxWaitMs, ackWaitMs };
}
