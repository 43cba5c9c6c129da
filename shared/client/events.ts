import type { ChatClientError } from './errors.ts';
import type { TransportKind } from './transport.ts';
import type { FrameOf, ServerFrame } from './types.ts';

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Everything a ChatClient emits, by event name. Durable events arrive once each, resumes included. */
export interface ChatEvents {
  /** A connection is ready (after `welcome`); `reconnected` after the first time. */
  connected: { transport: TransportKind; welcome: FrameOf<'welcome'>; reconnected: boolean };
  disconnected: { code: number; reason: string };
  reconnecting: { attempt: number; delayMs: number; transport: TransportKind };
  /** No WebSocket could be opened (or no event stream): the client uses the next transport. */
  fallback: { from: TransportKind; to: TransportKind };
  state: ConnectionState;
  message: FrameOf<'new_message'>;
  message_updated: FrameOf<'message_updated'>;
  message_deleted: FrameOf<'message_deleted'>;
  reaction: FrameOf<'reaction_updated'>;
  pin: FrameOf<'message_pinned'>;
  read_receipt: FrameOf<'read_receipt'>;
  message_status: FrameOf<'message_status'>;
  user_joined: FrameOf<'user_joined'>;
  user_left: FrameOf<'user_left'>;
  member_updated: FrameOf<'member_updated'>;
  room_updated: FrameOf<'room_updated'>;
  typing: FrameOf<'typing_indicator'>;
  presence: FrameOf<'presence_update'>;
  resumed: FrameOf<'resumed'>;
  ai_response: FrameOf<'ai_response'>;
  /**
   * The server could not replay a room's gap (older than its stream). The client has fetched the
   * missed messages over REST (they came as `message` events); other changes of the gap (edits,
   * reactions) are not known: reload what the room shows.
   */
  resync: { roomId: string };
  /** Unsolicited server errors, and connection failures that stop the client (a refused token). */
  error: ChatClientError;
  /** Every server frame that is delivered (after duplicates are dropped). */
  frame: ServerFrame;
}

export type ChatEventName = keyof ChatEvents;
export type Listener<K extends ChatEventName> = (payload: ChatEvents[K]) => void;

/** Which event a server frame is emitted as (besides `frame`). */
export const FRAME_EVENTS: Partial<Record<ServerFrame['type'], ChatEventName>> = {
  new_message: 'message',
  message_updated: 'message_updated',
  message_deleted: 'message_deleted',
  reaction_updated: 'reaction',
  message_pinned: 'pin',
  read_receipt: 'read_receipt',
  message_status: 'message_status',
  user_joined: 'user_joined',
  user_left: 'user_left',
  member_updated: 'member_updated',
  room_updated: 'room_updated',
  typing_indicator: 'typing',
  presence_update: 'presence',
  resumed: 'resumed',
  ai_response: 'ai_response',
};

export class Emitter {
  private readonly listeners = new Map<ChatEventName, Set<(payload: never) => void>>();

  /** Returns a function that removes the listener. */
  on<K extends ChatEventName>(event: K, fn: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as (payload: never) => void);
    return () => this.off(event, fn);
  }

  once<K extends ChatEventName>(event: K, fn: Listener<K>): () => void {
    const off = this.on(event, (payload) => {
      off();
      fn(payload);
    });
    return off;
  }

  off<K extends ChatEventName>(event: K, fn: Listener<K>): void {
    this.listeners.get(event)?.delete(fn as (payload: never) => void);
  }

  /** A listener that throws is reported on the console and does not stop the others. */
  emit<K extends ChatEventName>(event: K, payload: ChatEvents[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<K>)(payload);
      } catch (err) {
        console.error(`chat client: a "${event}" listener threw`, err);
      }
    }
  }
}
