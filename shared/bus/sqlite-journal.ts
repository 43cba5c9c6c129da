import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ChatError } from '../protocol/errors.ts';
import type { DurableMessage } from './bus.ts';
import type { JournalMarks, JournalState, StreamJournal } from './journal.ts';

export interface SqliteJournalConfig {
  /** The database file: in embedded mode the store's own `chat.db` (the journal has its own tables). */
  file: string;
  /**
   * `normal` (default): a commit is in the WAL file (the OS page cache) when `write` resolves, so a
   * crash of the process loses nothing acknowledged; a crash of the machine may lose the last
   * commits. `full`: the WAL is fsynced at every commit (one fsync per group, not per event), so
   * acknowledged events also survive power loss.
   */
  synchronous: 'normal' | 'full';
}

/**
 * The journal's tables live beside the store's in the same file but are not part of its schema
 * (they are created here, `IF NOT EXISTS`, and carry no store migration): the store never reads
 * them, and the journal works whichever store version the file holds. Events are rows keyed by
 * their sequence (appends go to the end of the b-tree); the marks are one row each.
 */
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS stream_journal (
    seq INTEGER PRIMARY KEY,
    room_id TEXT NOT NULL,
    dedupe_id TEXT NOT NULL,
    stored_at INTEGER NOT NULL,
    headers TEXT,
    data BLOB NOT NULL
  );
  CREATE TABLE IF NOT EXISTS stream_journal_marks (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) WITHOUT ROWID;
`;

/** Opens (creating if needed) the journal in `cfg.file`, on its own connection. */
export function openSqliteJournal(cfg: SqliteJournalConfig): StreamJournal {
  let db: Database.Database;
  try {
    mkdirSync(dirname(cfg.file), { recursive: true });
    db = new Database(cfg.file);
    db.pragma('busy_timeout = 2000');
    // WAL: a commit appends to the log instead of rewriting pages, and readers (the store's
    // connection) never block it. synchronous is per connection: the store's stays NORMAL.
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${cfg.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    db.exec(SCHEMA);
  } catch (err) {
    throw new ChatError('unavailable', `cannot open the stream journal in ${cfg.file}`, { cause: err });
  }

  const insert = db.prepare('INSERT INTO stream_journal (seq, room_id, dedupe_id, stored_at, headers, data) VALUES (?, ?, ?, ?, ?, ?)');
  const forget = db.prepare('DELETE FROM stream_journal WHERE seq < ?');
  const setMark = db.prepare('INSERT INTO stream_journal_marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value');
  const readMarks = db.prepare<[], { name: string; value: number }>('SELECT name, value FROM stream_journal_marks');
  const readEvents = db.prepare<[], { seq: number; room_id: string; dedupe_id: string; stored_at: number; headers: string | null; data: Buffer }>(
    'SELECT seq, room_id, dedupe_id, stored_at, headers, data FROM stream_journal ORDER BY seq',
  );
  let written: JournalMarks = { nextSeq: 1, ackedBelow: 1, forgetBelow: 1 };

  const writeAll = db.transaction((events: readonly DurableMessage[], marks: JournalMarks) => {
    for (const e of events) {
      insert.run(e.seq, e.roomId, e.dedupeId, e.storedAt, e.headers === undefined ? null : JSON.stringify(e.headers), e.data);
    }
    if (marks.nextSeq !== written.nextSeq) setMark.run('next_seq', marks.nextSeq);
    if (marks.ackedBelow !== written.ackedBelow) setMark.run('acked_below', marks.ackedBelow);
    if (marks.forgetBelow > written.forgetBelow) forget.run(marks.forgetBelow);
  });

  return {
    kind: 'sqlite',

    recover(): JournalState {
      try {
        const marks = new Map(readMarks.all().map((r) => [r.name, r.value]));
        const events: DurableMessage[] = readEvents.all().map((r) => ({
          seq: r.seq, roomId: r.room_id, dedupeId: r.dedupe_id, storedAt: r.stored_at,
          headers: r.headers === null ? undefined : JSON.parse(r.headers) as Record<string, string>,
          data: new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength),
        }));
        const last = events.at(-1)?.seq ?? 0;
        const nextSeq = Math.max(marks.get('next_seq') ?? 1, last + 1);
        const ackedBelow = marks.get('acked_below') ?? 1;
        written = { nextSeq, ackedBelow, forgetBelow: events[0]?.seq ?? nextSeq };
        return { events, nextSeq, ackedBelow };
      } catch (err) {
        throw new ChatError('unavailable', `cannot read the stream journal in ${cfg.file}`, { cause: err });
      }
    },

    async write(events, marks) {
      try {
        writeAll(events, marks);
      } catch (err) {
        throw new ChatError('unavailable', `cannot write the stream journal in ${cfg.file}`, { cause: err });
      }
      written = { nextSeq: marks.nextSeq, ackedBelow: marks.ackedBelow, forgetBelow: Math.max(written.forgetBelow, marks.forgetBelow) };
    },

    async close() {
      if (db.open) db.close();
    },
  } satisfies StreamJournal;
}
