import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import t from 'tap';
import type { DurableEvent } from '../domain/events.ts';
import { roomKey } from '../domain/room-key.ts';
import { ChatError } from '../protocol/errors.ts';
import { createStore } from './index.ts';
import { ftsQuery } from './sqlite-search.ts';
import { SCHEMA_VERSION, SQLITE_FILE_NAME, createSqliteStore } from './sqlite-store.ts';
import type { StoreLog } from './store-log.ts';
import { ev, idAt, makeMember, makeMessage, makeRoom, runStoreContract } from './store.contract.ts';
import type { Store } from './store.ts';

const T = Date.UTC(2025, 0, 1);
const base = mkdtempSync(join(tmpdir(), 'chat-sqlite-store-'));
t.teardown(() => rmSync(base, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(base, `store-${++dirs}`);

runStoreContract(t, { name: 'sqlite :memory:', open: async () => createSqliteStore({ file: ':memory:' }) });
runStoreContract(t, { name: 'sqlite file', open: async () => createSqliteStore({ dataDir: freshDir() }) });

/** Undoes what migrations after 4 added, so a test can roll a current file back to an older version. */
function undoAfterVersion4(raw: Database.Database): void {
  raw.exec(`DROP TABLE archives;
    DROP INDEX rooms_by_match;
    ALTER TABLE rooms DROP COLUMN match_id;`);
}

/** A logger that remembers what it was told, typed as pino's to prove a pino logger fits. */
function recordingLog() {
  const lines: Array<{ level: string; obj: object; msg: string | undefined }> = [];
  const log: StoreLog = {
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
  return { log, lines };
}

async function everything(store: Store, roomId: string, messageIds: string[]) {
  return {
    room: await store.getRoom(roomId),
    members: await store.listMembers(roomId, { limit: 100, offset: 0 }),
    rooms: await store.roomsOfUser('default', 'u2'),
    history: await store.history(roomId, { limit: 100 }),
    messages: await Promise.all(messageIds.map((id) => store.getMessage(roomId, id))),
    pinned: await store.pinned(roomId),
    search: await store.search({ roomIds: [roomId], text: 'persisted', limit: 10 }),
    read: await store.getReadState(roomId, 'u2'),
    status: await store.messageStatus(roomId, messageIds[0]!),
    unread: await store.countUnread(roomId, 'u2', undefined, 100),
  };
}

t.test('sqlite - data survives close and reopen of the file store', async (t) => {
  const dataDir = join(freshDir(), 'nested', 'dir');
  t.notOk(existsSync(dataDir));
  const log = pino({ level: 'silent' });
  let store = createSqliteStore({ dataDir }, log);
  t.ok(existsSync(join(dataDir, SQLITE_FILE_NAME)), 'the data dir is created with chat.db in it');

  const [m1, m2, m3] = [idAt(T + 1), idAt(T + 2), idAt(T + 3)];
  await store.createRoom(makeRoom('r1', { type: 'direct' }), [makeMember('r1', 'u1', { role: 'owner' }), makeMember('r1', 'u2')]);
  await store.applyEvents([
    ev.created(makeMessage('r1', m1, { content: 'persisted words' }), T + 1),
    ev.created(makeMessage('r1', m2, { content: 'persisted and edited' }), T + 2),
    ev.created(makeMessage('r1', m3, { content: 'gone' }), T + 3),
    ev.edited('r1', m2, 'persisted after edit', T + 100),
    ev.deleted('r1', m3, T + 200),
    ev.reactionAdded('r1', m1, 'u2', '👍', T + 300),
    ev.pinned('r1', m1, T + 400),
    ev.delivered('r1', m1, 'u2', T + 500),
    ev.readMarked('r1', 'u2', m2, T + 600),
  ]);
  const before = await everything(store, 'r1', [m1, m2, m3]);
  t.equal(before.search.length, 2, 'two messages match before the restart');
  t.equal(before.messages[1]?.content, 'persisted after edit');
  await store.close();
  await store.close();

  const raw = new Database(join(dataDir, SQLITE_FILE_NAME), { readonly: true });
  t.equal(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION, 'schema version is recorded');
  t.equal(SCHEMA_VERSION, 7);
  t.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  const indexed = (word: string) => (raw.prepare('SELECT rowid FROM message_fts WHERE message_fts MATCH ?').safeIntegers(true)
    .all(word) as Array<{ rowid: bigint }>).map((r) => r.rowid.toString());
  t.strictSame(indexed('gone'), [], 'a deleted message leaves the search index');
  t.strictSame(indexed('edit'), [m2], 'an edit replaces the indexed text');
  t.strictSame(indexed('and'), [], 'the text before the edit is gone from the index');
  raw.close();

  store = createSqliteStore({ dataDir }, log);
  t.teardown(() => store.close());
  t.strictSame(await everything(store, 'r1', [m1, m2, m3]), before, 'every read answers the same after reopening');
  t.equal((await store.findDirectRoom('default', 'u2', 'u1'))?.roomId, 'r1');
});

t.test('sqlite - a database written by a newer build is refused', async (t) => {
  const file = join(freshDir() + '.db');
  const raw = new Database(file);
  raw.pragma('user_version = 99');
  raw.close();
  t.throws(() => createSqliteStore({ file }), { name: 'ChatError', code: 'internal', message: /schema version 99/ });
});

t.test('sqlite - calls after close reject with unavailable', async (t) => {
  const store = createSqliteStore({ file: ':memory:' });
  await store.close();
  await t.rejects(store.ping(), { name: 'ChatError', code: 'unavailable' });
  await t.rejects(store.getRoom('r1'), { name: 'ChatError', code: 'unavailable' });
  await t.rejects(store.applyEvents([ev.created(makeMessage('r1', idAt(T)), T)]), { name: 'ChatError', code: 'unavailable' });
});

t.test('sqlite - a database locked by another connection answers unavailable, then recovers', async (t) => {
  const dataDir = freshDir();
  const { log, lines } = recordingLog();
  const store = createSqliteStore({ dataDir, busyTimeoutMs: 0 }, log);
  t.teardown(() => store.close());
  await store.createRoom(makeRoom('r1'), []);

  const other = new Database(join(dataDir, SQLITE_FILE_NAME));
  t.teardown(() => other.close());
  other.exec('BEGIN IMMEDIATE');
  await t.rejects(store.putMember('r1', makeMember('r1', 'u1')), { name: 'ChatError', code: 'unavailable' });
  await t.rejects(store.applyEvents([ev.created(makeMessage('r1', idAt(T)), T)]), { name: 'ChatError', code: 'unavailable' });
  t.equal((await store.getRoom('r1'))?.roomId, 'r1', 'reads go on while another connection writes (WAL)');
  t.ok(lines.some((l) => l.level === 'warn' && (l.obj as { code?: string }).code === 'SQLITE_BUSY'), 'the busy error is logged');
  other.exec('ROLLBACK');

  await store.putMember('r1', makeMember('r1', 'u1'));
  t.equal((await store.getRoom('r1'))?.memberCount, 1, 'the retried write lands');
});

t.test('sqlite - applyEvents rejects a malformed event before writing any of the call', async (t) => {
  const store = createSqliteStore({ file: ':memory:' });
  t.teardown(() => store.close());
  const good = makeMessage('r1', idAt(T));
  const bad: DurableEvent[] = [
    { ...ev.edited('r1', 'not-an-id', 'x', T), id: idAt(T + 5) },
    ev.created(makeMessage('r1', '99999999999999999999'), T),
    { kind: 'message.created', id: idAt(T + 1), at: T, roomId: 'r1', message: makeMessage('r2', idAt(T + 1)) },
    { ...ev.reactionAdded('r1', good.messageId, 'u1', '👍', T), at: Number.NaN },
    { kind: 'message.exploded', id: idAt(T + 9), at: T, roomId: 'r1' } as unknown as DurableEvent,
  ];
  for (const [i, e] of bad.entries()) {
    const err = await store.applyEvents([ev.created(good, T), e]).then(() => undefined, (err: unknown) => err);
    t.ok(err instanceof ChatError, `bad event ${i} is refused`);
    t.equal((err as ChatError).code, 'bad_request');
    t.equal((err as ChatError).details?.index, 1, 'details say which event');
  }
  t.equal(await store.getMessage('r1', good.messageId), undefined, 'nothing of a refused call was written');
  await store.applyEvents([ev.created(good, T)]);
  t.equal((await store.getMessage('r1', good.messageId))?.content, good.content);
});

t.test('sqlite - applyEvents takes 5000 events in one call quickly', async (t) => {
  const store = createSqliteStore({ dataDir: freshDir() });
  t.teardown(() => store.close());
  const rooms = Array.from({ length: 10 }, (_, i) => `room-${i}`);
  for (const r of rooms) await store.createRoom(makeRoom(r), []);
  const events: DurableEvent[] = [];
  for (let i = 0; i < 4000; i++) {
    const id = idAt(T + Math.floor(i / 4), i % 4);
    events.push(ev.created(makeMessage(rooms[i % 10]!, id, { authorId: `u${i % 7}`, content: `bulk message number ${i} with some words` }), T + i));
  }
  for (let i = 0; i < 1000; i++) {
    const target = events[i * 4] as Extract<DurableEvent, { kind: 'message.created' }>;
    events.push(i % 2 === 0
      ? ev.reactionAdded(target.roomId, target.message.messageId, 'u1', '👍', T + 10_000 + i)
      : ev.edited(target.roomId, target.message.messageId, `edited bulk ${i}`, T + 10_000 + i));
  }
  const started = performance.now();
  await store.applyEvents(events);
  const ms = performance.now() - started;
  t.comment(`5000 events in ${ms.toFixed(0)} ms (${Math.round(5000 / (ms / 1000))} events/s)`);
  t.ok(ms < 2000, `5000 events applied in ${ms.toFixed(0)} ms`);
  let total = 0;
  for (const r of rooms) total += await store.countUnread(r, 'nobody', undefined, 10_000);
  t.equal(total, 4000, 'every message is stored');
  t.equal((await store.search({ roomIds: rooms, text: 'edited bulk', limit: 1000 })).length, 500, 'edits are indexed');
  t.equal(Date.parse((await store.getRoom('room-9'))!.lastActivity), T + 3999, 'rooms touched with their newest message');
});

t.test('sqlite - malformed ids and unknown rooms', async (t) => {
  const store = createSqliteStore({ file: ':memory:' });
  t.teardown(() => store.close());
  await t.rejects(store.history('r1', { limit: 10, before: 'abc' }), { name: 'ChatError', code: 'bad_request' });
  await t.rejects(store.history('r1', { limit: 10, threadId: '-1' }), { name: 'ChatError', code: 'bad_request' });
  await t.rejects(store.countUnread('r1', 'u1', '1e9', 10), { name: 'ChatError', code: 'bad_request' });
  t.equal(await store.getMessage('r1', 'abc'), undefined, 'an id that names no message finds nothing');
  t.strictSame(await store.messageStatus('r1', 'abc'), []);
  await t.rejects(store.putMember('nope', makeMember('nope', 'u1')), { name: 'ChatError', code: 'not_found' });
  await t.rejects(store.updateRoom(makeRoom('nope')), { name: 'ChatError', code: 'not_found' });
  await t.rejects(store.touchRoom('nope', 'yesterday'), { name: 'ChatError', code: 'bad_request' });
  await t.rejects(store.createRoom(makeRoom('r1'), [makeMember('r2', 'u1')]), { name: 'ChatError', code: 'bad_request' });
  t.equal(await store.getRoom('r1'), undefined, 'a refused createRoom leaves no room behind');
});

t.test('sqlite - ftsQuery turns any text into quoted words', async (t) => {
  t.equal(ftsQuery('hello'), '"hello"');
  t.equal(ftsQuery('foo "bar'), '"foo" "bar"');
  t.equal(ftsQuery('AND OR ('), '"and" "or"');
  t.equal(ftsQuery('NEAR(a b)'), '"near" "a" "b"');
  t.equal(ftsQuery('café-crème'), '"cafe" "creme"');
  t.equal(ftsQuery('(( * "'), undefined);
  t.equal(ftsQuery(''), undefined);
  t.equal(ftsQuery(Array.from({ length: 40 }, (_, i) => `w${i}`).join(' '))?.split(' ').length, 16, 'long queries are cut');
});

t.test('sqlite - createStore picks the adapter from config', async (t) => {
  const log = pino({ level: 'silent' });
  const store = createStore({ adapter: 'sqlite', dataDir: freshDir() }, log);
  t.teardown(() => store.close());
  t.equal(store.kind, 'sqlite');
  t.equal(await store.ping(), undefined);
  const cassandra = createStore({
    adapter: 'cassandra', contactPoints: ['127.0.0.1:1'], keyspace: 'chat', localDataCenter: 'datacenter1',
    consistency: 'LOCAL_QUORUM', replicationFactor: 1,
  }, log);
  t.equal(cassandra.kind, 'cassandra', 'the cassandra adapter is built without connecting');
  await cassandra.close();
});

t.test('sqlite - version 2 re-indexes search words of a version 1 database', async (t) => {
  const dataDir = freshDir();
  const current = createSqliteStore({ dataDir });
  await current.applyEvents([ev.created(makeMessage('r1', idAt(T), { content: 'Crème Brûlée' }), T)]);
  await current.close();
  // Back to version 1 as it shipped: raw content in a unicode61 index.
  const raw = new Database(join(dataDir, SQLITE_FILE_NAME));
  undoAfterVersion4(raw);
  raw.exec(`DROP TABLE ai_contexts;
    DROP TABLE notification_prefs; DROP TABLE webhooks; DROP TABLE push_subscriptions; DROP TABLE notifications_sent;
    DROP TABLE message_fts;
    CREATE VIRTUAL TABLE message_fts USING fts5(content, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2');`);
  raw.prepare('INSERT INTO message_fts (rowid, content) VALUES (?, ?)').run(BigInt(idAt(T)), 'Crème Brûlée');
  raw.pragma('user_version = 1');
  raw.close();

  const store = createSqliteStore({ dataDir });
  t.teardown(() => store.close());
  t.strictSame((await store.search({ roomIds: ['r1'], text: 'creme BRULEE', limit: 5 })).map((m) => m.messageId), [idAt(T)]);
  t.strictSame(await store.search({ roomIds: ['r1'], text: 'crem', limit: 5 }), [], 'whole words only: the old index is gone');
});

t.test('sqlite - migration 4 moves the rooms of tenants other than the default one to their keys', async (t) => {
  const dataDir = freshDir();
  // A version-3 file: rooms were keyed by their bare id whatever their tenant (the schema is the same).
  let store = createSqliteStore({ dataDir });
  const m1 = makeMessage('r1', idAt(T + 1000), { content: 'persisted words' });
  const m2 = makeMessage('r2', idAt(T + 2000), { content: 'persisted too' });
  await store.createRoom(makeRoom('r1'), [makeMember('r1', 'u1', { role: 'owner' }), makeMember('r1', 'u2')]);
  await store.createRoom(makeRoom('r2'), [makeMember('r2', 'u2', { role: 'owner' })]);
  await store.applyEvents([
    ev.created(m1, T + 1000), ev.reactionAdded('r1', m1.messageId, 'u2', '👍', T + 1100), ev.pinned('r1', m1.messageId, T + 1200),
    ev.readMarked('r1', 'u2', m1.messageId, T + 1300), ev.delivered('r1', m1.messageId, 'u2', T + 1400), ev.created(m2, T + 2000),
  ]);
  const before = await everything(store, 'r1', [m1.messageId]);
  await store.close();
  const raw = new Database(join(dataDir, SQLITE_FILE_NAME));
  raw.prepare("UPDATE rooms SET tenant = 'acme.example' WHERE room_id = 'r1'").run();
  undoAfterVersion4(raw);
  raw.pragma('user_version = 3');
  raw.close();

  const { log, lines } = recordingLog();
  store = createSqliteStore({ dataDir }, log);
  t.teardown(() => store.close());
  t.match(lines, [{ level: 'info', obj: { from: 3, to: 4 } }, { level: 'info', obj: { from: 4 } }], 'migration 4 ran, then the later ones');
  const key = roomKey('acme.example', 'r1');
  t.equal(await store.getRoom('r1'), undefined, 'the bare id no longer names the other tenant\'s room');
  const after = await everything(store, key, [m1.messageId]);
  t.strictSame({ ...after, room: { ...after.room, tenant: 'default' }, rooms: before.rooms },
    before, 'room, members, messages, reactions, pins, search, read marks and deliveries moved with it');
  t.strictSame(await store.roomsOfUser('acme.example', 'u2'), [key]);
  t.strictSame(await store.roomsOfUser('default', 'u2'), ['r2'], 'the default tenant\'s rooms stay where they were');
  t.equal((await store.history('r2', { limit: 10 }))[0]?.content, 'persisted too');
  // the freed id is free in the default tenant, and the moved room takes new events under its key
  await store.createRoom(makeRoom('r1'), []);
  await store.applyEvents([ev.created(makeMessage('r1', idAt(T + 3000)), T + 3000, key)]);
  t.equal((await store.history(key, { limit: 10 })).length, 2);
});
