import { ChatError } from '../protocol/errors.ts';

/** Room ids become one subject token (`chat.durable.<roomId>`), so they obey the token rules. */
const ROOM_TOKEN = /^[^\s.*>]+$/;

/** Throws ChatError('bad_request') unless `roomId` can be one subject token. */
export function checkRoomId(roomId: string): void {
  if (!ROOM_TOKEN.test(roomId)) throw new ChatError('bad_request', `invalid room id for a subject token: "${roomId}"`);
}

/** The argument checks of `publishDurable`, the same for every adapter. */
export function checkDurableArguments(roomId: string, dedupeId: string): void {
  checkRoomId(roomId);
  if (dedupeId === '') throw new ChatError('bad_request', 'dedupeId must not be empty');
}
