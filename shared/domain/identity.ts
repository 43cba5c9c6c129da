import { ChatError } from '../protocol/errors.ts';

/**
 * Text that names someone or something: user ids, tenants, display names, room names. Two
 * spellings that look alike must not be two identities, and a name must not hide itself or
 * reorder the text around it:
 * - ids are NFKC-normalised (`ａｄｍｉｎ` is `admin`) and may hold no invisible character at all
 *   (`adm\u200bin`, `admin\u202e` are refused), so an id is what it shows;
 * - names are NFC-normalised, may not carry bidirectional controls (which reorder what follows
 *   them on screen), and must show at least one visible character.
 */

/** Embeddings, overrides, isolates and the directional marks. */
const BIDI_CONTROL = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;
/**
 * What renders as nothing or as blank: format characters (zero-width space and joiners, BOM, the
 * bidi controls), controls, separators and other white space, and the fillers and blanks that
 * fonts draw empty.
 */
const INVISIBLE = /[\p{Cf}\p{Cc}\p{Z}\s\u115F\u1160\u2800\u3164\uFFA0]/u;
const INVISIBLE_ALL = new RegExp(INVISIBLE.source, 'gu');

export const MAX_ID_LENGTH = 128;

/** The canonical form of a user id or tenant; ChatError('bad_request') naming `what` when it has none. */
export function canonicalId(raw: string, what: string): string {
  const id = raw.normalize('NFKC');
  if (id.length === 0 || id.length > MAX_ID_LENGTH) throw new ChatError('bad_request', `${what} must be 1-${MAX_ID_LENGTH} characters`);
  if (INVISIBLE.test(id)) throw new ChatError('bad_request', `${what} may not contain spaces, controls or invisible characters`);
  return id;
}

/** The canonical form of a display or room name (trimmed); ChatError('bad_request') naming `what` when it is not acceptable. */
export function canonicalName(raw: string, what: string): string {
  const name = raw.normalize('NFC').trim();
  if (BIDI_CONTROL.test(name)) throw new ChatError('bad_request', `${what} may not contain bidirectional control characters`);
  if (name.replace(INVISIBLE_ALL, '').length === 0) throw new ChatError('bad_request', `${what} must contain a visible character`);
  return name;
}
