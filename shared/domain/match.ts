import { ChatError } from '../protocol/errors.ts';

/**
 * A match id (seed 004: the match a direct conversation is opened for) as another service issues
 * it: a UUID, a number, a slug. One conversation exists per match id in a tenant, so the id is used
 * as given, with no case folding: it is a key, not a name.
 */
export const MATCH_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$';
const MATCH_ID = new RegExp(MATCH_ID_PATTERN);

export function checkMatchId(raw: string): string {
  if (!MATCH_ID.test(raw)) {
    throw new ChatError('bad_request', 'matchId must be 1 to 128 letters, digits, "_", ".", ":" or "-", starting with a letter or digit');
  }
  return raw;
}
