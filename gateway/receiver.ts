import type { Principal } from '../shared/auth/index.ts';
import { CLOSE_CODES, type ServerFrame } from '../shared/protocol/index.ts';
import type { Socket } from './connection.ts';

/**
 * A connection of any of the gateway's transports, as the fan-out and the user feed see it.
 * WebSockets get a room's frames through uWS topics (one `app.publish` reaches all of them); an
 * SSE stream or a long-poll session is a StreamReceiver, delivered to one by one (they are few).
 */
export type Receiver = Socket | StreamReceiver;

export interface StreamReceiver {
  readonly principal: Principal;
  /** Rooms it receives; kept by the fan-out. */
  readonly rooms: Set<string>;
  readonly closed: boolean;
  /** `json` is the frame stringified, once per message for every receiver. */
  deliver(frame: ServerFrame, json: string): void;
  /** A gap in what it received could not be repaired: end the connection so that its client resumes. */
  reset(): void;
}

/** What every receiver has, whatever its transport. */
export type ReceiverState = Pick<StreamReceiver, 'principal' | 'rooms' | 'closed'>;

export function isSocket(r: Receiver): r is Socket {
  return 'getUserData' in r;
}

export function stateOf(r: Receiver): ReceiverState {
  return isSocket(r) ? r.getUserData() : r;
}

/** Ends the connection so that its client resumes from the last event it got (which replays what it missed). */
export function resync(r: Receiver): void {
  if (isSocket(r)) r.end(CLOSE_CODES.resync, 'missed events could not be replayed; reconnect and resume');
  else r.reset();
}
