import type { Logger } from 'pino';
import type { BusConfig } from '../config/config.ts';
import { ChatError } from '../protocol/errors.ts';
import type { Bus } from './bus.ts';
import { createMemoryBus } from './memory-bus.ts';
import { createNatsBus } from './nats-bus.ts';

export type {
  Bus, LiveHandler, LiveWatcher, SubscribeOptions, Subscription, DurableAck, DurableMessage, Delivery, ConsumeOptions, BatchHandler, Consumer,
} from './bus.ts';
export { subjects, subjectToken } from './bus.ts';
export { createMemoryBus, type MemoryBusConfig, type MemoryBusOptions } from './memory-bus.ts';
export { createNatsBus, type NatsBusConfig, type NatsBusOptions } from './nats-bus.ts';

/** Builds the configured bus and waits until it is ready. */
export async function createBus(cfg: BusConfig, log: Logger): Promise<Bus> {
  let bus: Bus;
  switch (cfg.adapter) {
    case 'memory':
      bus = createMemoryBus(
        { recoveryWindowSec: cfg.recoveryWindowSec, maxMessages: cfg.maxMessages },
        { onError: (err, where) => log.error({ err, where }, 'bus handler threw') },
      );
      break;
    case 'nats':
      bus = createNatsBus(cfg, log);
      break;
    default: {
      const never: never = cfg;
      throw new ChatError('internal', `unknown bus adapter ${JSON.stringify((never as { adapter?: unknown }).adapter)}`);
    }
  }
  try {
    await bus.ready();
  } catch (err) {
    // a bus that never became ready must not keep reconnecting in the background
    await bus.close();
    throw err;
  }
  return bus;
}
