import t, { type Test } from 'tap';
import { isDeepStrictEqual } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DurableEvent } from '../domain/events.ts';
import type { Message } from '../domain/models.ts';
import { EPOCH_MS } from '../ids/snowflake.ts';
import { createSqliteStore, type HistoryQuery, type Store } from '../store/index.ts';
import { random } from '../store/store.contract.ts';
import { RoomWindow, type ByteBudget } from './room-window.ts';

/**
 * The window against the store it stands in for: the same random events go through a SQLite store
 * that lags behind (the persister) and through a window (the live feed); every page the window
 * serves while the store lags must be the page the store returns once it caught up.
 */

const ROOM = 'r1';
const USERS = ['u1', 'u2', 'u3', 'u4'];
const EMOJIS = ['👍', '❤️', '🎉'];
const T0 = Date.UTC(2026, 0, 1);

/** The id of the `seq`th message made at `ms` (node 1). */
function idAt(ms: number, seq: number): string {
  return ((BigInt(ms - EPOCH_MS) << 22n) | (1n << 12n) | BigInt(seq)).toString();
}

let eventSeq = 0;
const nextEventId = (at: number) => idAt(Math.max(EPOCH_MS, Math.floor(at)), 2000 + (eventSeq++ % 2000));

function message(id: string, at: number, threadId: string | null, i: number): Message {
  return {
    messageId: id, roomId: ROOM, authorId: USERS[i % USERS.length]!, authorName: `User ${i}`, content: `message ${i}`, type: 'text',
    timestamp: new Date(at).toISOString(), reactions: {}, replyTo: i % 5 === 0 ? null : null, threadId, mentions: [], attachments: [],
    isEdited: false, isDeleted: false, isPinned: false, isAnonymous: false, ...(i % 7 === 0 ? { clientMsgId: `c${i}` } : {}),
  };
}

interface Plan {
  /** Every event in the order the feed delivers them. */
  events: DurableEvent[];
  /** Ids of every message (created or not yet). */
  ids: string[];
}

/**
 * `ordered`: event times follow delivery order (real clocks); otherwise delivery order is
 * shuffled, times collide often, and some events come twice.
 */
function plan(rnd: () => number, messages: number, touches: number, ordered: boolean): Plan {
  const events: DurableEvent[] = [];
  const ids: string[] = [];
  const main: string[] = [];
  let clock = T0;
  const at = () => (ordered ? (clock += 1 + Math.floor(rnd() * 3)) : T0 + Math.floor(rnd() * 40) * 10);
  const touch = (id: string) => {
    const when = at();
    const r = rnd();
    const user = USERS[Math.floor(rnd() * USERS.length)]!;
    const emoji = EMOJIS[Math.floor(rnd() * EMOJIS.length)]!;
    const base = { id: nextEventId(when), at: when, roomId: ROOM, messageId: id, userId: user };
    if (r < 0.25) events.push({ ...base, kind: 'message.edited', content: `edit ${events.length}` });
    else if (r < 0.32) events.push({ ...base, kind: 'message.deleted' });
    else if (r < 0.55) events.push({ ...base, kind: 'reaction.added', emoji });
    else if (r < 0.7) events.push({ ...base, kind: 'reaction.removed', emoji });
    else if (r < 0.82) events.push({ ...base, kind: 'message.pinned' });
    else if (r < 0.92) events.push({ ...base, kind: 'message.unpinned' });
    else events.push({ ...base, kind: 'read.marked' });
  };
  for (let i = 0; i < messages; i++) {
    const when = ordered ? (clock += 1 + Math.floor(rnd() * 3)) : T0 + i * 5;
    const id = idAt(when, i % 4000);
    ids.push(id);
    const threadId = main.length > 3 && rnd() < 0.15 ? main[Math.floor(rnd() * main.length)]! : null;
    if (threadId === null) main.push(id);
    // the command layer stamps a create with its id's time
    events.push({ kind: 'message.created', id, at: when, roomId: ROOM, message: message(id, when, threadId, i) });
    for (let k = 0; k < touches / messages; k++) {
      // mostly recent messages, often old ones (below the window's floor)
      const pick = rnd() < 0.5 ? ids.length - 1 - Math.floor(rnd() * Math.min(ids.length, 10)) : Math.floor(rnd() * ids.length);
      touch(ids[pick]!);
    }
  }
  if (ordered) return { events, ids };
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [events[i], events[j]] = [events[j]!, events[i]!];
  }
  const withRepeats: DurableEvent[] = [];
  for (const e of events) {
    withRepeats.push(e);
    if (rnd() < 0.08) withRepeats.push(e);
  }
  return { events: withRepeats, ids };
}

function queries(rnd: () => number, ids: string[]): HistoryQuery[] {
  const anyId = () => (rnd() < 0.8 ? ids[Math.floor(rnd() * ids.length)]! : idAt(T0 + Math.floor(rnd() * 4000), 3999));
  const qs: HistoryQuery[] = [1, 5, 19, 20, 21, 50, 300].map((limit) => ({ limit }));
  for (let i = 0; i < 6; i++) {
    const limit = 1 + Math.floor(rnd() * 30);
    qs.push({ limit, before: anyId() });
    qs.push({ limit, after: anyId() });
    const [a, b] = [anyId(), anyId()];
    qs.push({ limit, after: a < b ? a : b, before: a < b ? b : a });
  }
  return qs;
}

function openStore(t: Test): Store {
  const dir = mkdtempSync(join(tmpdir(), 'history-window-'));
  const store = createSqliteStore({ dataDir: dir });
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

const parse = (items: Array<{ json: string }>) => items.map((i) => JSON.parse(i.json) as Message);

/**
 * Delivers `events` to the window (from `from` on) and to a store that lags behind by up to
 * `maxLag` events; at checkpoints every query is read from the window, the store catches up, and
 * the store's pages must equal the window's. Now and then the window joins in the lagging store's
 * newest page (its resync), which must change nothing it shows.
 */
async function compare(t: Test, o: {
  store: Store; window: RoomWindow; events: DurableEvent[]; ids: string[]; rnd: () => number; maxLag: number; from?: number; persisted?: number;
  /** Byte-equal JSON (else equal values: the key order of a message's reactions may differ, see message-state.ts). */
  exactJson: boolean;
}): Promise<number> {
  const { store, window, events, rnd } = o;
  let persisted = o.persisted ?? 0;
  let checked = 0;
  for (let i = o.from ?? 0; i < events.length; i++) {
    window.apply(events[i]!);
    const lagTarget = i + 1 - Math.floor(rnd() * (o.maxLag + 1));
    if (lagTarget > persisted) {
      await store.applyEvents(events.slice(persisted, lagTarget));
      persisted = lagTarget;
    }
    // now and then the windows join in the (lagging) store's newest page, as their resync does
    if (rnd() < 0.03) window.refresh(await store.history(ROOM, { limit: 30 }));
    if (i % 37 !== 36 && i !== events.length - 1) continue;
    const qs = queries(rnd, o.ids);
    const served = [];
    for (const q of qs) served.push(parse(await window.read(q, (sq) => store.history(ROOM, sq))));
    await store.applyEvents(events.slice(persisted, i + 1));
    persisted = i + 1;
    for (let k = 0; k < qs.length; k++) {
      const expected = await store.history(ROOM, qs[k]!);
      const same = o.exactJson ? JSON.stringify(served[k]) === JSON.stringify(expected) : isDeepStrictEqual(served[k], expected);
      if (!same) {
        t.strictSame(served[k], expected, `after event ${i}: ${JSON.stringify(qs[k])}`);
        t.equal(JSON.stringify(served[k]), JSON.stringify(expected), `after event ${i}: ${JSON.stringify(qs[k])}, as JSON`);
        return checked;
      }
      checked++;
    }
  }
  return checked;
}

t.test('history window - random order, equal times and repeats: every page equals the caught-up store', async (t) => {
  for (const seed of [1, 2, 3, 4]) {
    const rnd = random(seed);
    const store = openStore(t);
    const { events, ids } = plan(rnd, 150, 450, false);
    const budget: ByteBudget = { used: 0 };
    // a small timeline, so most pages reach below its floor; others hold every message touched
    const window = new RoomWindow(ROOM, 20, budget, 1000);
    window.seed(await store.history(ROOM, { limit: 20 }), true);
    const checked = await compare(t, { store, window, events, ids, rnd, maxLag: 12, exactJson: true });
    t.ok(checked >= 400, `seed ${seed}: ${checked} pages compared`);
    t.ok(budget.used > 0 && budget.used === window.bytes, 'the budget holds what the window holds');
    window.clear();
    t.equal(budget.used, 0, 'a cleared window gives its bytes back');
  }
});

t.test('history window - time-ordered events with the default bounds: pages equal the caught-up store', async (t) => {
  for (const seed of [11, 12, 13]) {
    const rnd = random(seed);
    const store = openStore(t);
    const { events, ids } = plan(rnd, 250, 600, true);
    const window = new RoomWindow(ROOM, 20, { used: 0 });
    window.seed([], true);
    // the persister at most 8 events behind: fewer than half the others bound
    const checked = await compare(t, { store, window, events, ids, rnd, maxLag: 8, exactJson: false });
    t.ok(checked > 500, `seed ${seed}: ${checked} pages compared`);
  }
});

t.test('history window - a window that starts on a store already holding the room reads the same pages', async (t) => {
  for (const seed of [21, 22, 23]) {
    const rnd = random(seed);
    const store = openStore(t);
    const { events, ids } = plan(rnd, 250, 600, true);
    const start = Math.floor(events.length / 2);
    // the persister wrote all but the last few events stored before the window started
    const persisted = start - Math.floor(rnd() * 6);
    await store.applyEvents(events.slice(0, persisted));
    const window = new RoomWindow(ROOM, 30, { used: 0 });
    // the feed is watched first; then the store's newest page, then the replay of recent events
    const early = events.slice(start, start + 3);
    for (const e of early) window.apply(e);
    const rows = await store.history(ROOM, { limit: 30 });
    window.seed(rows, rows.length < 30);
    for (const e of events.slice(persisted - 10, start + 3)) window.apply(e);
    const checked = await compare(t, { store, window, events, ids, rnd, maxLag: 8, from: start + 3, persisted, exactJson: false });
    t.ok(checked > 200, `seed ${seed}: ${checked} pages compared`);
  }
});

t.test('history window - the newest page of a covered room needs no store read', async (t) => {
  const window = new RoomWindow(ROOM, 5, { used: 0 });
  window.seed([], true);
  const ids = [0, 1, 2, 3, 4, 5, 6].map((i) => idAt(T0 + i, 0));
  ids.forEach((id, i) => window.apply({ kind: 'message.created', id, at: T0 + i, roomId: ROOM, message: message(id, T0 + i, null, i) }));
  const noStore = async (): Promise<Message[]> => { throw new Error('the store was read'); };
  t.strictSame((await window.read({ limit: 3 }, noStore)).map((i) => i.messageId), [ids[6], ids[5], ids[4]]);
  t.strictSame((await window.read({ limit: 5 }, noStore)).map((i) => i.messageId), ids.slice(2).reverse());
  t.strictSame((await window.read({ limit: 2, after: ids[3]! }, noStore)).map((i) => i.messageId), [ids[5], ids[4]]);
  t.strictSame((await window.read({ limit: 2, before: ids[6]!.padStart(20, '0') }, noStore)).map((i) => i.messageId), [ids[5], ids[4]],
    'a padded cursor bounds the page as the plain one does');
  await t.rejects(window.read({ limit: 2, before: '99999999999999999999' }, noStore), { code: 'bad_request' }, 'as the store refuses it');
  let asked: HistoryQuery | undefined;
  const store = async (q: HistoryQuery): Promise<Message[]> => {
    asked = q;
    return [];
  };
  t.strictSame((await window.read({ limit: 6 }, store)).map((i) => i.messageId), ids.slice(1).reverse(), 'past the floor: merged with the store and what the window pushed out');
  t.strictSame(asked, { limit: 6 });
  const first = await window.read({ limit: 1 }, noStore);
  t.equal((await window.read({ limit: 1 }, noStore))[0]!.json, first[0]!.json, 'the JSON is made once');
  t.equal(first[0]!.json, JSON.stringify(window.messageOf(ids[6]!)));
});

t.test('history window - events of other rooms, read marks and malformed events change nothing', async (t) => {
  const window = new RoomWindow(ROOM, 5, { used: 0 });
  window.seed([], true);
  const id = idAt(T0, 0);
  window.apply({ kind: 'message.created', id, at: T0, roomId: 'r2', message: { ...message(id, T0, null, 0), roomId: 'r2' } });
  window.apply({ kind: 'message.created', id, at: T0, roomId: ROOM, message: { ...message(id, T0, null, 0), roomId: 'r2' } });
  window.apply({ kind: 'message.created', id: 'x', at: T0, roomId: ROOM, message: message(id, T0, null, 0) });
  window.apply({ kind: 'message.created', id, at: Number.NaN, roomId: ROOM, message: message(id, T0, null, 0) });
  window.apply({ kind: 'read.marked', id: idAt(T0, 1), at: T0, roomId: ROOM, userId: 'u1', messageId: id });
  t.strictSame(await window.read({ limit: 10 }, async () => []), []);
  t.equal(window.bytes, 0);
});
