import type { Logger } from 'pino';
import { join } from 'node:path';
import type { BusConfig, MemoryJournalConfig } from '../config/config.ts';
import { SQLITE_FILE_NAME } from '../store/sqlite-store.ts';
import { ChatError } from '../protocol/errors.ts';
import type { Bus } from './bus.ts';
import { createMemoryBus } from './memory-bus.ts';
import { createNatsBus } from './nats-bus.ts';
import type { StreamJournal } from './journal.ts';
import { openSqliteJournal } from './sqlite-journal.ts';

export type {
  Bus, LiveHandler, LiveWatcher, SubscribeOptions, Subscription, DurableAck, DurableMessage, Delivery, ReplayResult, ConsumeOptions, BatchHandler, Consumer,
} from './bus.ts';
export { subjects, subjectToken } from './bus.ts';
export { createMemoryBus, type MemoryBus, type MemoryBusConfig, type MemoryBusOptions } from './memory-bus.ts';
export type { StreamJournal, JournalMarks, JournalState } from './journal.ts';
export { openSqliteJournal, type SqliteJournalConfig } from './sqlite-journal.ts';
export { createNatsBus, type NatsBusConfig, type NatsBusOptions } from './nats-bus.ts';

/** Builds the configured bus and waits until it is ready. */
export async function createBus(cfg: BusConfig, log: Logger): Promise<Bus> {
  let bus: Bus;
  switch (cfg.adapter) {
    case 'memory':
      bus = createMemoryBus(
        { recoveryWindowSec: cfg.recoveryWindowSec, maxMessages: cfg.maxMessages, ...(cfg.maxBytes !== undefined ? { maxBytes: cfg.maxBytes } : {}) },
        { onError: (err, where) => log.error({ err, where }, 'bus handler threw'), ...journalOption(cfg.journal) },
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

/** The in-process stream's journal: in the embedded store's file, its own tables. */
function journalOption(cfg: MemoryJournalConfig | undefined): { journal?: StreamJournal } {
  const adapter = cfg?.adapter ?? 'off';
  switch (adapter) {
    case 'off':
      return {};
    case 'sqlite': {
      const sqlite = cfg as Extract<MemoryJournalConfig, { adapter: 'sqlite' }>;
      return { journal: openSqliteJournal({ file: join(sqlite.dataDir, SQLITE_FILE_NAME), synchronous: sqlite.synchronous }) };
    }
    default: {
      const never: never = adapter;
      throw new ChatError('internal', `unknown stream journal ${JSON.stringify(never)}`);
    }
  }
}
