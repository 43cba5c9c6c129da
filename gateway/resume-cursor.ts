import { ChatError, ROOM_ID_PATTERN, plainDataProblem } from '../shared/protocol/index.ts';
import { isId } from '../shared/ids/index.ts';

/**
 * Where a fallback (SSE, long-poll) client resumes: the last message id it saw per room, and
 * optionally `*`, the id that applies to every subscribed room not listed.
 *
 * Text forms, all accepted by `parseResumeCursor` (from `?resume=` or `Last-Event-ID`):
 *   `room_1:7311,room_2:7320`      per-room positions
 *   `*:7320`                       every room from there (what SSE event ids carry)
 *   `{"room_1":"7311"}`            JSON object
 *   `[{"roomId":"room_1","lastMessageId":"7311"}]`  JSON, the WebSocket `resume` frame's shape
 */
export type ResumeCursor = Map<string, string>;

export const ANY_ROOM = '*';
/** As many rooms as the WebSocket `resume` frame takes. */
const MAX_ENTRIES = 500;
const ROOM_ID = new RegExp(ROOM_ID_PATTERN);

export function parseResumeCursor(text: string): ResumeCursor {
  const trimmed = text.trim();
  const cursor: ResumeCursor = new Map();
  if (trimmed === '') return cursor;
  const entries: Array<[unknown, unknown]> = [];
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (err) {
      throw new ChatError('bad_request', 'resume is not valid JSON', { cause: err });
    }
    // the rule of frames and bodies: a hostile depth would overflow String() of a room id below
    const problem = plainDataProblem(value);
    if (problem) throw new ChatError('bad_request', `resume is not plain data: ${problem}`);
    if (Array.isArray(value)) {
      for (const item of value) {
        const { roomId, lastMessageId } = (item ?? {}) as { roomId?: unknown; lastMessageId?: unknown };
        entries.push([roomId, lastMessageId]);
      }
    } else {
      entries.push(...Object.entries(value as Record<string, unknown>));
    }
  } else {
    for (const part of trimmed.split(',')) {
      if (part === '') continue;
      const colon = part.lastIndexOf(':');
      entries.push(colon < 0 ? [part, undefined] : [part.slice(0, colon), part.slice(colon + 1)]);
    }
  }
  if (entries.length > MAX_ENTRIES) throw new ChatError('bad_request', `resume names more than ${MAX_ENTRIES} rooms`);
  for (const [roomId, lastId] of entries) {
    if (typeof roomId !== 'string' || (roomId !== ANY_ROOM && !ROOM_ID.test(roomId))) {
      throw new ChatError('bad_request', `resume: ${String(roomId).slice(0, 70)} is not a room id`);
    }
    // A room without a position is subscribed but not replayed, as in the WebSocket resume frame.
    if (lastId === undefined || lastId === null || lastId === '') continue;
    if (typeof lastId !== 'string' || !isId(lastId)) throw new ChatError('bad_request', `resume: ${String(lastId).slice(0, 24)} is not a message id`);
    cursor.set(roomId, lastId);
  }
  return cursor;
}

export function formatResumeCursor(cursor: ResumeCursor): string {
  return [...cursor].map(([roomId, id]) => `${roomId}:${id}`).join(',');
}

/** The position to replay `roomId` from: its own entry, else the `*` entry. */
export function positionOf(cursor: ResumeCursor, roomId: string): string | undefined {
  return cursor.get(roomId) ?? cursor.get(ANY_ROOM);
}
