import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import Database from 'better-sqlite3';
import { runJournalContract } from './journal.contract.ts';
import { openSqliteJournal } from './index.ts';
import { createSqliteStore } from '../store/index.ts';

runJournalContract(t, {
  name: 'sqlite',
  open: (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'chat-journal-contract-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'chat.db');
    return { journal: openSqliteJournal({ file, synchronous: 'normal' }), reopen: () => openSqliteJournal({ file, synchronous: 'normal' }) };
  },
});

t.test('journal - sqlite: its tables live beside the store\'s in chat.db, in WAL mode', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'chat-journal-file-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = createSqliteStore({ dataDir: dir });
  const journal = openSqliteJournal({ file: join(dir, 'chat.db'), synchronous: 'full' });
  journal.recover();
  await journal.write([{ seq: 1, roomId: 'r', dedupeId: 'd', storedAt: 1, data: new Uint8Array([1]), headers: undefined }], { nextSeq: 2, ackedBelow: 1, forgetBelow: 1 });
  t.equal(await store.ping(), undefined, 'the store works beside it');
  const db = new Database(join(dir, 'chat.db'), { readonly: true });
  t.teardown(() => db.close());
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'stream_journal%' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
  t.same(tables, ['stream_journal', 'stream_journal_marks']);
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  await journal.close();
  await store.close();
});
