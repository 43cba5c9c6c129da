import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DurableEvent } from '../domain/events.ts';
import type { Message } from '../domain/models.ts';
import { Snowflake, idTime } from '../ids/index.ts';
import { createSqliteStore, type Store } from '../store/index.ts';
import { HistoryWindows, type HistoryWindowsOptions } from './history-windows.ts';
import type { FeedSubscription, RoomEventFeed } from './room-event-feed.ts';

/** A stream and its live feed in memory: events are "stored" by `publish`, persisted only by `persist`. */
class FakeFeed implements RoomEventFeed {
  readonly stored: Array<{ event: DurableEvent; seq: number; at: number }> = [];
  readonly watchers = new Map<string, Set<(e: DurableEvent, seq: number) => void>>();
  private continuity: { interrupted(): void; restored(): void } | undefined;
  private persisted = 0;
  replayFails = false;
  replays = 0;

  constructor(private readonly store: Store, private readonly now: () => number) {}

  publish(event: DurableEvent): void {
    const seq = this.stored.length + 1;
    this.stored.push({ event, seq, at: this.now() });
    for (const w of this.watchers.get(event.roomId) ?? []) w(event, seq);
  }

  /** The persister catches up. */
  async persist(): Promise<void> {
    await this.store.applyEvents(this.stored.slice(this.persisted).map((s) => s.event));
    this.persisted = this.stored.length;
  }

  watch(roomId: string, onEvent: (e: DurableEvent, seq: number) => void): FeedSubscription {
    let set = this.watchers.get(roomId);
    if (!set) this.watchers.set(roomId, (set = new Set()));
    set.add(onEvent);
    return { unsubscribe: () => { set.delete(onEvent); } };
  }

  async replay(roomId: string, sinceMs: number, onEvent: (e: DurableEvent, seq: number) => void): Promise<void> {
    this.replays++;
    if (this.replayFails) throw new Error('stream unreachable');
    for (const s of this.stored) if (s.event.roomId === roomId && s.at >= sinceMs) onEvent(s.event, s.seq);
  }

  watchContinuity(listener: { interrupted(): void; restored(): void }): FeedSubscription {
    this.continuity = listener;
    return { unsubscribe: () => { this.continuity = undefined; } };
  }

  interrupt(): void { this.continuity?.interrupted(); }
  restore(): void { this.continuity?.restored(); }
  watching(roomId: string): number { return this.watchers.get(roomId)?.size ?? 0; }
}

const ids = new Snowflake(3);

function send(roomId: string, content: string, threadId: string | null = null): DurableEvent {
  const id = ids.next();
  const at = idTime(id);
  const message: Message = {
    messageId: id, roomId, authorId: 'alice', authorName: 'Alice', content, type: 'text', timestamp: new Date(at).toISOString(),
    reactions: {}, replyTo: null, threadId, mentions: [], attachments: [], isEdited: false, isDeleted: false, isPinned: false, isAnonymous: false,
  };
  return { kind: 'message.created', id, at, roomId, message };
}

function setup(t: Test, over: Partial<HistoryWindowsOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'history-windows-'));
  const store = createSqliteStore({ dataDir: dir });
  let clock = Date.now();
  const now = () => clock;
  const feed = new FakeFeed(store, now);
  const windows = new HistoryWindows({ store, feed, maxMessages: 50, maxRooms: 100, maxBytes: 64 * 1024 * 1024, idleMs: 60_000, now, ...over });
  t.teardown(async () => {
    windows.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, feed, windows, advance: (ms: number) => { clock += ms; } };
}

const contents = (items: Array<{ json: string }>) => items.map((i) => (JSON.parse(i.json) as Message).content);

t.test('history windows - a message is in history once stored, before the persister wrote it', async (t) => {
  const { feed, windows, store } = setup(t);
  feed.publish(send('r1', 'before the first read'));
  t.strictSame(contents(await windows.history('r1', { limit: 10 })), ['before the first read'], 'stored before the watch began: replayed');
  feed.publish(send('r1', 'while watched'));
  const e = send('r1', 'edited later');
  feed.publish(e);
  feed.publish({ kind: 'message.edited', id: ids.next(), at: e.at + 5, roomId: 'r1', messageId: e.id, userId: 'alice', content: 'edited' });
  t.strictSame(contents(await windows.history('r1', { limit: 10 })), ['edited', 'while watched', 'before the first read']);
  t.strictSame(await store.history('r1', { limit: 10 }), [], 'nothing was persisted');
  t.equal((await windows.message('r1', e.id))?.content, 'edited', 'one message reads its writes too');
  t.equal(await windows.message('r1', '123'), undefined);
  await feed.persist();
  t.strictSame((await windows.history('r1', { limit: 10 })).map((i) => i.json), (await store.history('r1', { limit: 10 })).map((m) => JSON.stringify(m)),
    'the same JSON as the store once persisted');
  t.equal(feed.replays, 1, 'a room is replayed once, when its watch starts');
});

t.test('history windows - thread pages, and windows turned off, read the store', async (t) => {
  const { feed, windows, store } = setup(t);
  const root = send('r1', 'root');
  feed.publish(root);
  feed.publish(send('r1', 'reply', root.id));
  t.strictSame(await windows.history('r1', { limit: 10, threadId: root.id }), [], 'thread pages come from the store');
  t.strictSame(contents(await windows.history('r1', { limit: 10 })), ['root'], 'the main timeline leaves replies out');
  t.equal(windows.size, 1);

  const off = setup(t, { maxMessages: 0 });
  off.feed.publish(send('r2', 'not persisted'));
  t.strictSame(await off.windows.history('r2', { limit: 10 }), []);
  t.equal(off.windows.size, 0, 'nothing is watched');
  await off.feed.persist();
  t.strictSame(contents(await off.windows.history('r2', { limit: 10 })), ['not persisted']);
  await store.close().catch(() => undefined);
});

t.test('history windows - bounded: rooms by last read, bytes, and idle time', async (t) => {
  const { feed, windows, advance } = setup(t, { maxRooms: 2 });
  for (const r of ['a', 'b']) await windows.history(r, { limit: 5 });
  await windows.history('a', { limit: 5 });
  await windows.history('c', { limit: 5 });
  t.equal(windows.size, 2);
  t.equal(feed.watching('b'), 0, 'the least recently read room was dropped and unsubscribed');
  t.equal(feed.watching('a') + feed.watching('c'), 2);

  const small = setup(t, { maxBytes: 20_000 });
  for (let i = 0; i < 10; i++) small.feed.publish(send('big', `${i} `.padEnd(2000, 'x')));
  t.equal(contents(await small.windows.history('big', { limit: 20 })).length, 10, 'a room too big for the bound is read');
  t.equal(small.windows.size, 0, 'but its window is not kept');
  t.equal(small.windows.bytes, 0, 'and its bytes are given back');
  t.equal(small.feed.watching('big'), 0);
  await small.windows.history('other', { limit: 5 });
  t.equal(small.windows.size, 1, 'a small room is kept');
  t.ok(small.windows.bytes < 20_000);

  advance(61_000);
  const idle = setup(t, { idleMs: 50 });
  await idle.windows.history('r', { limit: 5 });
  t.equal(idle.windows.size, 1);
  idle.advance(100);
  // the sweep runs every second; a loaded machine may run it late
  for (let waited = 0; idle.windows.size > 0 && waited < 10_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
  t.equal(idle.windows.size, 0, 'a room not read for idleMs is dropped');
  t.equal(idle.feed.watching('r'), 0);
});

t.test('history windows - when the feed may have lost events, reads go to the store until it is whole again', async (t) => {
  const { feed, windows } = setup(t);
  await windows.history('r1', { limit: 5 });
  feed.interrupt();
  t.equal(windows.size, 0, 'every window dropped');
  feed.publish(send('r1', 'during the cut'));
  t.strictSame(await windows.history('r1', { limit: 5 }), [], 'the store, not a window that may miss events');
  t.equal(windows.size, 0);
  feed.restore();
  t.strictSame(contents(await windows.history('r1', { limit: 5 })), ['during the cut'], 'watched again, with the replay');
  t.equal(windows.size, 1);
});

t.test('history windows - a watch that cannot start falls back to the store and says why', async (t) => {
  const errors: unknown[] = [];
  const { feed, windows } = setup(t, { onError: (err) => errors.push(err) });
  feed.publish(send('r1', 'stored'));
  await feed.persist();
  feed.replayFails = true;
  t.strictSame(contents(await windows.history('r1', { limit: 5 })), ['stored']);
  t.equal(windows.size, 0);
  t.match(errors, [{ message: 'stream unreachable' }]);
});

t.test('history windows - onWatch runs while a room is watched', async (t) => {
  const watched = new Set<string>();
  const { feed, windows } = setup(t, {
    maxRooms: 1,
    onWatch: (roomId) => {
      watched.add(roomId);
      return { unsubscribe: () => { watched.delete(roomId); } };
    },
  });
  await windows.history('a', { limit: 1 });
  await windows.history('a', { limit: 1 });
  t.strictSame([...watched], ['a']);
  await windows.history('b', { limit: 1 });
  t.strictSame([...watched], ['b']);
  windows.close();
  t.strictSame([...watched], []);
  t.equal(feed.watching('b'), 0);
});

t.test('history windows - what the replay could not reach comes in from the store while the room is read', async (t) => {
  const { feed, windows, advance } = setup(t, { replayMs: 1000, resyncMs: 30_000 });
  feed.publish(send('r1', 'stored long before, not yet written'));
  advance(5000);
  t.strictSame(await windows.history('r1', { limit: 5 }), [], 'older than the replay and not persisted: not seen yet');
  await feed.persist();
  advance(10_000);
  t.strictSame(await windows.history('r1', { limit: 5 }), [], 'the window does not read the store for a covered page');
  advance(21_000);
  await windows.history('r1', { limit: 5 });
  await new Promise((r) => setImmediate(r));
  t.strictSame(contents(await windows.history('r1', { limit: 5 })), ['stored long before, not yet written'], 'joined in by the resync');
});
