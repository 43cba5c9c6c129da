import { Type } from '@sinclair/typebox';
import { ChatError, encodeMsgpack, type ServerFrame } from '../../shared/protocol/index.ts';
import { subjects } from '../../shared/bus/index.ts';
import { enforceRate } from '../../shared/rate-limit/index.ts';
import { canonicalId } from '../../shared/domain/index.ts';
import { CHAT_PREFIX, type ApiDeps } from '../deps.ts';
import { PRESENCE_QUERY_MAX, PresenceQuery, PresenceSchema, SetPresenceBody } from '../schemas.ts';

const tags = ['presence'];
const path = `${CHAT_PREFIX}/presence`;

export function presenceRoutes({ server, store, bus, presence, presenceRate }: ApiDeps): void {
  server.route({
    method: 'get', path, operationId: 'getPresence', tags,
    summary: 'Status of some users of your tenant',
    query: PresenceQuery,
    response: Type.Object({ presence: Type.Array(PresenceSchema) }),
    handler: async ({ principal, query }) => {
      // ids as tokens have them: `ａｄｍｉｎ` asks for admin (domain/identity.ts)
      const userIds = [...new Set(query.userIds.split(',').map((s) => s.trim()).filter(Boolean).map((s) => canonicalId(s, 'a user id in userIds')))];
      if (userIds.length === 0) throw new ChatError('bad_request', 'userIds names no user');
      if (userIds.length > PRESENCE_QUERY_MAX) throw new ChatError('bad_request', `at most ${PRESENCE_QUERY_MAX} userIds per request`);
      return { presence: await presence.get(principal.tenant, userIds) };
    },
  });

  server.route({
    method: 'put', path, operationId: 'setPresence', tags,
    summary: 'Set your status; the rooms you are in are told',
    description: 'A user with no live connection stays offline whatever status is set; the status applies once they '
      + 'connect. The rooms you are in get a presence_update frame when you are connected.',
    body: SetPresenceBody,
    response: PresenceSchema,
    handler: async ({ principal, body }) => {
      if (presenceRate) await enforceRate(presenceRate.limiter, `presence:${principal.tenant}:${principal.userId}`, presenceRate.rule, 'presence changes');
      const info = await presence.setStatus(principal.tenant, principal.userId, body);
      // Offline stays offline: nothing changed for anyone watching.
      if (info.connections === 0) return info;
      const frame: ServerFrame = {
        type: 'presence_update', userId: info.userId, status: info.status,
        ...(info.customStatus ? { customStatus: info.customStatus } : {}),
        ...(info.device ? { device: info.device } : {}),
        lastSeen: info.lastSeen,
      };
      const payload = encodeMsgpack(frame);
      for (const roomId of await store.roomsOfUser(principal.tenant, principal.userId)) bus.publish(subjects.roomEvents(roomId), payload);
      return info;
    },
  });
}
