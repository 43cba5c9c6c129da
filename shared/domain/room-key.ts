/**
 * A room's key: its tenant and its id as one string, what chat-svc uses inside to name a room
 * (store rows, bus subjects, gateway topics and caches, history windows). Clients only ever see
 * the room id; the key is made at the edges (a frame, a REST path) from the caller's tenant and
 * the id they named, so two tenants may use the same id for two rooms and neither can reach, or
 * learn of, the other's.
 *
 * Layout: `<tenant token>:<room id>`, and for the tenant `default` the bare room id. The bare form
 * is what every key was before rooms were keyed by tenant, so the default tenant's stored rows,
 * stream subjects and events read the same as before (the stores' migrations move the rooms of
 * other tenants to their keys).
 * - Room ids are `[A-Za-z0-9_-]{1,64}` (frames.ts ROOM_ID_PATTERN), so they hold no ':'.
 * - The tenant token is the tenant itself when it is `[A-Za-z0-9_-]+`, else `~` + its UTF-8
 *   bytes in base64url: no ':', no '.', '*', '>' or white space.
 * So a key is one NATS subject token, a valid Redis key part and CQL text, and it parses back
 * unambiguously: the room id is what follows the only ':'.
 */
export type RoomKey = string;

/** The tenant whose keys are bare room ids (the default of DEFAULT_TENANT). */
export const BARE_KEY_TENANT = 'default';

const SEPARATOR = ':';
const PLAIN_TOKEN = /^[A-Za-z0-9_-]+$/;

/** Tenant -> `<token>:`, so a key costs one concatenation; tenants are few (they come from signed tokens). */
const prefixes = new Map<string, string>();
const MAX_PREFIXES = 10_000;

/** The key of the tenant's room `roomId`. */
export function roomKey(tenant: string, roomId: string): RoomKey {
  if (tenant === BARE_KEY_TENANT) return roomId as RoomKey;
  let prefix = prefixes.get(tenant);
  if (prefix === undefined) {
    if (prefixes.size >= MAX_PREFIXES) prefixes.clear();
    prefix = tenantToken(tenant) + SEPARATOR;
    prefixes.set(tenant, prefix);
  }
  return (prefix + roomId) as RoomKey;
}

/** The key of a room record. */
export function keyOfRoom(room: { tenant: string; roomId: string }): RoomKey {
  return roomKey(room.tenant, room.roomId);
}

/** The room id clients know the room by. */
export function roomIdOf(key: RoomKey): string {
  const at = key.indexOf(SEPARATOR);
  return at < 0 ? key : key.slice(at + 1);
}

/** The tenant the room belongs to. */
export function tenantOf(key: RoomKey): string {
  const at = key.indexOf(SEPARATOR);
  if (at < 0) return BARE_KEY_TENANT;
  const token = key.slice(0, at);
  return token.startsWith('~') ? Buffer.from(token.slice(1), 'base64url').toString('utf8') : token;
}

/** The tenant as it appears in keys (and, the same way, in user subjects). */
export function tenantToken(tenant: string): string {
  return PLAIN_TOKEN.test(tenant) ? tenant : `~${Buffer.from(tenant, 'utf8').toString('base64url')}`;
}
