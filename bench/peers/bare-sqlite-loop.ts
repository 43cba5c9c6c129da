import Database from 'better-sqlite3';
import { createSqliteStore } from '../../shared/store/index.ts';
import type { DurableEvent } from '../../shared/domain/index.ts';
import { storedFields } from '../lib/store-fixtures.ts';
import { timed, type Timed } from '../lib/timed.ts';

/**
 * The limit for the SQLite store: a bare better-sqlite3 loop writing the rows the store writes for
 * `message.created` events (the `messages` row and its `message_fts` row) into a file with the
 * store's schema and pragmas (WAL, synchronous=NORMAL), one transaction per event batch, prepared
 * statements, rows built before the clock starts, nothing else (no room activity).
 */
export interface BareSqliteLoop {
  /** Writes the events' rows, `batchSize` events per transaction; the rows are built before the clock starts. */
  write(events: DurableEvent[], batchSize: number): Promise<Timed>;
  close(): void;
}

type Row = [roomId: string, messageId: bigint, authorId: string, body: string, content: string, at: number, eventId: bigint, terms: string];

export async function openBareSqliteLoop(file: string): Promise<BareSqliteLoop> {
  // the store creates the schema; the loop then writes to the file on its own connection
  await createSqliteStore({ file }).close();
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const insertMessage = db.prepare(`INSERT INTO messages (room_id, message_id, created, author_id, thread_id, body, content, content_at, content_id)
    VALUES (?, ?, 1, ?, NULL, ?, ?, ?, ?)`);
  const insertFts = db.prepare('INSERT INTO message_fts (rowid, content) VALUES (?, ?)');
  const writeBatch = db.transaction((rows: Row[]) => {
    for (const r of rows) {
      insertMessage.run(r[0], r[1], r[2], r[3], r[4], r[5], r[6]);
      insertFts.run(r[1], r[7]);
    }
  });
  return {
    write(events, batchSize) {
      const batches: Row[][] = [];
      for (let from = 0; from < events.length; from += batchSize) batches.push(events.slice(from, from + batchSize).flatMap(toRow));
      return timed(() => {
        for (const rows of batches) writeBatch(rows);
      });
    },
    close: () => db.close(),
  };
}

function toRow(e: DurableEvent): Row[] {
  if (e.kind !== 'message.created') return [];
  const m = e.message;
  const { body, terms } = storedFields(m);
  return [[e.roomId, BigInt(m.messageId), m.authorId, body, m.content, e.at, BigInt(e.id), terms.join(' ')]];
}
