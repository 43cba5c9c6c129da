import { Type } from '@sinclair/typebox';
import { TENANT_SERVICE_ROLE, type Principal } from '../../shared/auth/index.ts';
import { PLATFORMS, parseChannelRoomId, type Platform } from '../../shared/channels/index.ts';
import { ChatError } from '../../shared/protocol/index.ts';
import { SESSION_CONTEXT_MAX_BYTES, SYSTEM_CONTEXT_KEYS, type JsonValue, type SessionKey, type SessionStore } from '../../shared/sessions/index.ts';
import { CHAT_PREFIX, type ApiDeps } from '../deps.ts';
import { RoomIdParams } from '../schemas.ts';
import { TENANT_ADMIN_ROLES } from './tenants.ts';

/**
 * Who may read a channel user's session and set its context: the tenant's staff (its admins and
 * agents) and its server-to-server callers (a tenant API key: the bot engine keeps its state in
 * the context). Channel users themselves and ordinary members may not: the context is the staff's.
 */
export const SESSION_ROLES = [...TENANT_ADMIN_ROLES, 'agent', TENANT_SERVICE_ROLE] as const;
const SESSIONS_PATH = '/v1/channels/sessions';
const tags = ['channels'];

const SessionParams = Type.Object({
  platform: Type.Union(PLATFORMS.map((p) => Type.Literal(p))),
  externalUserId: Type.String({ minLength: 1, maxLength: 128 }),
});
const SessionSchema = Type.Object({
  sessionId: Type.String({ description: 'new each time the person writes after SESSION_TTL of silence; stored messages carry it in metadata.sessionId' }),
  platform: Type.String(),
  externalUserId: Type.String(),
  roomId: Type.String(),
  startedAt: Type.String({ description: 'ISO time' }),
  lastActivityAt: Type.String({ description: 'the last message from the person or reply sent to them (ISO time)' }),
  expiresAt: Type.String({ description: 'lastActivityAt + SESSION_TTL (ISO time)' }),
  inbound: Type.Integer({ minimum: 0, description: 'messages from the person in this session' }),
  outbound: Type.Integer({ minimum: 0, description: 'replies sent to the person in this session' }),
  context: Type.Record(Type.String(), Type.Unknown(), {
    description: `lastInboundMessageId and lastButton (set by the system), and the keys agents set; at most ${SESSION_CONTEXT_MAX_BYTES} bytes of keys and JSON values`,
  }),
}, { $id: 'ChannelSession' });
const ContextKey = Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,63}$' });
const ContextPatch = Type.Object({
  context: Type.Record(ContextKey, Type.Unknown(), {
    description: `each key given is set (any JSON value); null removes it; keys left out stay. ${SYSTEM_CONTEXT_KEYS.join(' and ')} are the system's`,
    maxProperties: 64,
  }),
}, { additionalProperties: false });

/**
 * Channel users' sessions for the tenant's staff (shared/sessions): by platform and external id, or
 * by the channel room. Always the caller's own tenant (from the token or X-Tenant-ID with an API
 * key), so another tenant's session with the same ids is never found: 404, as for none.
 */
export function channelSessionRoutes({ server, sessions }: ApiDeps): void {
  if (!sessions) return;
  const store: SessionStore = sessions;

  function admit(p: Principal): void {
    if (!SESSION_ROLES.some((r) => p.roles.includes(r))) {
      throw new ChatError('forbidden', `only tokens with one of the roles ${SESSION_ROLES.join(', ')} read channel sessions`);
    }
  }

  async function read(key: SessionKey) {
    const session = await store.get(key);
    if (session === undefined) throw new ChatError('not_found', 'no live session for this person');
    return session;
  }

  async function merge(key: SessionKey, patch: Record<string, unknown>) {
    const system = SYSTEM_CONTEXT_KEYS.filter((k) => k in patch);
    if (system.length > 0) throw new ChatError('bad_request', `${system.join(', ')}: set by the system only`);
    const session = await store.mergeContext(key, patch as Record<string, JsonValue | null>);
    if (session === undefined) throw new ChatError('not_found', 'no live session for this person');
    return session;
  }

  const byRoom = (p: Principal, roomId: string): SessionKey => {
    const target = parseChannelRoomId(roomId);
    if (target === undefined) throw new ChatError('not_found', 'not a channel room: no session');
    return { tenant: p.tenant, ...target };
  };
  const byPerson = (p: Principal, params: { platform: Platform; externalUserId: string }): SessionKey =>
    ({ tenant: p.tenant, platform: params.platform, externalUserId: params.externalUserId });

  const path = `${SESSIONS_PATH}/:platform/:externalUserId`;
  server.route({
    method: 'get', path, operationId: 'getChannelSession', tags,
    summary: "A channel user's live session: room, activity, counts and context (tenant staff)",
    params: SessionParams, response: SessionSchema,
    handler: async ({ principal, params }) => {
      admit(principal);
      return read(byPerson(principal, params));
    },
  });
  server.route({
    method: 'patch', path, operationId: 'patchChannelSession', tags,
    summary: "Set or remove keys of a channel user's session context (tenant staff)",
    description: 'Does not refresh the session: only the person\'s messages and the replies sent to them do. 413 when the context would pass the limit.',
    params: SessionParams, body: ContextPatch, response: SessionSchema,
    handler: async ({ principal, params, body }) => {
      admit(principal);
      return merge(byPerson(principal, params), body.context);
    },
  });
  server.route({
    method: 'get', path: `${CHAT_PREFIX}/rooms/:roomId/session`, operationId: 'getRoomSession', tags,
    summary: "The live session of a channel room's person (tenant staff); 404 for other rooms",
    params: RoomIdParams, response: SessionSchema,
    handler: async ({ principal, params }) => {
      admit(principal);
      return read(byRoom(principal, params.roomId));
    },
  });
  server.route({
    method: 'patch', path: `${CHAT_PREFIX}/rooms/:roomId/session`, operationId: 'patchRoomSession', tags,
    summary: "Set or remove keys of the session context of a channel room's person (tenant staff)",
    params: RoomIdParams, body: ContextPatch, response: SessionSchema,
    handler: async ({ principal, params, body }) => {
      admit(principal);
      return merge(byRoom(principal, params.roomId), body.context);
    },
  });
}
