import type { DurableEvent } from '../domain/events.ts';
import { roomIdOf } from '../domain/room-key.ts';
import { messageBody } from './message-record.ts';
import { contentTerms } from './search-terms.ts';
import type { SqliteContext } from './sqlite-context.ts';
import { badEvent, eventId, unknownKind } from './store-input.ts';
import type { Store } from './store.ts';

/**
 * The message plane's write path: applyEvents checks and binds every event of the call before
 * its transaction starts (a malformed event rejects the call with nothing written), then applies
 * them in one IMMEDIATE transaction with the rooms' lastActivity. How each event lands on its row
 * (last writer wins, placeholders, tombstones) is in the statements (sqlite-statements.ts).
 */
export function sqliteEvents({ db, s, run }: SqliteContext): Pick<Store, 'applyEvents'> {
  /** Keeps the search index in step with a message row an upsert returned. */
  function syncSearch(messageId: bigint, row: UpsertedMessage): void {
    if (row.created === 1 && row.live === 1) s.ftsReplace.run(messageId, contentTerms(row.content).join(' '));
  }

  // FTS is written here rather than by triggers: FTS5 flushes its pending terms at every
  // statement savepoint a trigger opens, which made ingest three times slower.
  const applyTx = db.transaction((ops: BoundEvent[], touches: Map<string, number>) => {
    for (const op of ops) {
      const p = op.params;
      switch (op.kind) {
        case 'message.created':
          // Fast path: a new message. A placeholder or a redelivery takes the LWW upsert.
          if (s.insertMessage.run(p).changes === 1) s.ftsInsert.run(op.messageId, contentTerms(op.content).join(' '));
          else syncSearch(op.messageId, s.createMessage.get(p) as UpsertedMessage);
          break;
        case 'message.edited':
          syncSearch(op.messageId, s.editMessage.get(p) as UpsertedMessage);
          break;
        case 'message.deleted':
          if ((s.deleteMessage.get(p) as { created: number }).created === 1) s.ftsDelete.run(op.messageId);
          break;
        case 'reaction.added': s.addReaction.run(p); break;
        case 'reaction.removed': s.removeReaction.run(p); break;
        case 'message.pinned': s.pinMessage.run(p); break;
        case 'message.unpinned': s.unpinMessage.run(p); break;
        case 'read.marked': s.markRead.run(p); break;
        case 'message.delivered': s.markDelivered.run(p); break;
      }
    }
    for (const [roomId, ms] of touches) s.touchRoom.run({ roomId, ms, iso: new Date(ms).toISOString() });
  });

  return {
    applyEvents: (events) => run('applyEvents', () => {
      if (events.length === 0) return;
      const ops = new Array<BoundEvent>(events.length);
      const touches = new Map<string, number>();
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        ops[i] = bindEvent(e, i);
        if (e.kind === 'message.created') {
          const prev = touches.get(e.roomId);
          if (prev === undefined || e.at > prev) touches.set(e.roomId, e.at);
        }
      }
      applyTx.immediate(ops, touches);
    }),
  };
}

/** An event checked and converted to statement parameters, before the transaction starts. */
interface BoundEvent {
  kind: DurableEvent['kind'];
  messageId: bigint;
  content: string;
  /** Positional, in the order its statement lists (sqlite-statements.ts). */
  params: unknown[];
}

/** What a message upsert returns: whether the row is now searchable, and with which text. */
interface UpsertedMessage {
  created: number;
  live: number;
  content: string;
}

function bindEvent(e: DurableEvent, index: number): BoundEvent {
  const at = e.at;
  if (typeof at !== 'number' || !Number.isFinite(at)) throw badEvent(index, e, 'at must be a finite number');
  switch (e.kind) {
    case 'message.created': {
      const m = e.message;
      if (m.roomId !== roomIdOf(e.roomId)) throw badEvent(index, e, `message.roomId ${m.roomId} differs from the event's room`);
      const messageId = eventId(m.messageId, index, e);
      // a create's event id is its message id: parsed once
      const id = e.id === m.messageId ? messageId : eventId(e.id, index, e);
      const threadId = m.threadId == null ? null : eventId(m.threadId, index, e);
      return { kind: e.kind, messageId, content: m.content, params: [e.roomId, messageId, m.authorId, threadId, messageBody(m), m.content, at, id] };
    }
    case 'message.edited': {
      const messageId = eventId(e.messageId, index, e);
      return { kind: e.kind, messageId, content: e.content, params: [e.roomId, messageId, e.content, at, eventId(e.id, index, e), at] };
    }
    case 'message.deleted':
    case 'message.pinned':
    case 'message.unpinned': {
      const messageId = eventId(e.messageId, index, e);
      return { kind: e.kind, messageId, content: '', params: [e.roomId, messageId, at] };
    }
    case 'reaction.added':
    case 'reaction.removed': {
      const messageId = eventId(e.messageId, index, e);
      return { kind: e.kind, messageId, content: '', params: [e.roomId, messageId, e.emoji, e.userId, at] };
    }
    case 'read.marked': {
      const messageId = eventId(e.messageId, index, e);
      return { kind: e.kind, messageId, content: '', params: [e.roomId, e.userId, messageId, at] };
    }
    case 'message.delivered': {
      const messageId = eventId(e.messageId, index, e);
      return { kind: e.kind, messageId, content: '', params: [e.roomId, messageId, e.userId, at] };
    }
    default:
      throw unknownKind(index, e);
  }
}
