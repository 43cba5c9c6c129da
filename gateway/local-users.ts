import { subjects, type Bus, type Subscription } from '../shared/bus/index.ts';
import { roomKey, type RoomKey } from '../shared/domain/index.ts';
import { decodeMsgpack, type ServerFrame } from '../shared/protocol/index.ts';
import type { Logger } from '../shared/telemetry/index.ts';
import { sendFrame } from './connection.ts';
import type { RoomFanout } from './room-fanout.ts';
import { isSocket, stateOf, type Receiver } from './receiver.ts';

interface UserEntry {
  readonly tenant: string;
  readonly receivers: Set<Receiver>;
  readonly sub: Subscription;
}

/**
 * This gateway's users: the connections of each (every transport), and one bus subscription per
 * user for the frames addressed to them (invited, removed, role changed), which must reach their
 * connections also when these are not in the room.
 */
export class LocalUsers {
  private readonly users = new Map<string, UserEntry>();

  constructor(
    private readonly bus: Bus,
    private readonly fanout: RoomFanout,
    /** The gateway's control handling, which also sees the frames of user subjects. */
    private readonly onControl: (key: RoomKey, frame: ServerFrame) => void,
    private readonly log: Logger,
  ) {}

  /** Follows the connection's user until `detach`. */
  attach(r: Receiver): void {
    const { principal } = stateOf(r);
    const key = userKey(principal.tenant, principal.userId);
    let entry = this.users.get(key);
    if (!entry) {
      const sub = this.bus.subscribe(subjects.userEvents(principal.tenant, principal.userId), (payload) => this.onUserFrame(key, payload));
      entry = { tenant: principal.tenant, receivers: new Set(), sub };
      this.users.set(key, entry);
    }
    entry.receivers.add(r);
  }

  /** Takes the connection out of its rooms, and stops following its user after their last connection here. */
  detach(r: Receiver): void {
    this.fanout.removeAll(r);
    const { principal } = stateOf(r);
    const key = userKey(principal.tenant, principal.userId);
    const entry = this.users.get(key);
    if (!entry?.receivers.delete(r) || entry.receivers.size > 0) return;
    entry.sub.unsubscribe();
    this.users.delete(key);
  }

  /** The user's connections here (a copy: callers may move or close them). */
  connectionsOf(tenant: string, userId: string): Receiver[] {
    return [...(this.users.get(userKey(tenant, userId))?.receivers ?? [])];
  }

  /** Every connection here in one of the rooms (by key). */
  inRooms(keys: Iterable<RoomKey>): Receiver[] {
    const rooms = new Set(keys);
    const found: Receiver[] = [];
    for (const entry of this.users.values()) {
      for (const r of entry.receivers) if (inAny(entry.tenant, stateOf(r).rooms, rooms)) found.push(r);
    }
    return found;
  }

  private onUserFrame(key: string, payload: Uint8Array): void {
    const entry = this.users.get(key);
    if (!entry) return;
    let frame: ServerFrame;
    try {
      frame = decodeMsgpack(payload) as ServerFrame;
    } catch (err) {
      this.log.error({ err }, 'undecodable user frame dropped');
      return;
    }
    const roomId = (frame as { roomId?: unknown }).roomId;
    if (typeof roomId !== 'string') return;
    // Takes the user's connections out of the room when they left; they learn of it below.
    this.onControl(roomKey(entry.tenant, roomId), frame);
    let json: string | undefined;
    for (const r of [...entry.receivers]) {
      // Connections in the room get the frame on the room's control subject.
      if (stateOf(r).rooms.has(roomId)) continue;
      if (isSocket(r)) sendFrame(r, frame);
      else r.deliver(frame, json ??= JSON.stringify(frame));
      if (frame.type === 'user_joined') this.fanout.add(r, roomId);
    }
  }
}

function inAny(tenant: string, mine: Set<string>, rooms: Set<RoomKey>): boolean {
  for (const roomId of mine) if (rooms.has(roomKey(tenant, roomId))) return true;
  return false;
}

function userKey(tenant: string, userId: string): string {
  return `${tenant}\0${userId}`;
}
