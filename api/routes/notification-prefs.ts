import { Type } from '@sinclair/typebox';
import { DEFAULT_NOTIFICATION_PREFS, NOTIFY_LEVELS } from '../../shared/domain/index.ts';
import { RoomId } from '../../shared/protocol/index.ts';
import { CHAT_PREFIX, type ApiDeps } from '../deps.ts';

/** Rooms one user may mute at most. */
export const MUTED_ROOMS_MAX = 1000;

const NotificationPrefsSchema = Type.Object({
  level: Type.Union(NOTIFY_LEVELS.map((l) => Type.Literal(l)), {
    description: 'all: mentions, direct messages and replies; mentions: mentions and direct messages; none: nothing',
  }),
  mutedRooms: Type.Array(RoomId, { maxItems: MUTED_ROOMS_MAX, uniqueItems: true, description: 'room ids that never notify' }),
}, { $id: 'NotificationPrefs', additionalProperties: false });

export function notificationPrefsRoutes({ server, store }: ApiDeps): void {
  const path = `${CHAT_PREFIX}/me/notifications`;
  const tags = ['notifications'];
  server.route({
    method: 'get', path, operationId: 'getNotificationPrefs', tags,
    summary: 'What you are told about while you have no live connection',
    response: NotificationPrefsSchema,
    handler: async ({ principal }) => await store.getNotificationPrefs(principal.tenant, principal.userId) ?? { ...DEFAULT_NOTIFICATION_PREFS, mutedRooms: [] },
  });
  server.route({
    method: 'put', path, operationId: 'setNotificationPrefs', tags,
    summary: 'Set what you are told about while offline: a level, and rooms muted',
    body: Type.Object({
      level: NotificationPrefsSchema.properties.level,
      mutedRooms: Type.Optional(NotificationPrefsSchema.properties.mutedRooms),
    }, { additionalProperties: false }),
    response: NotificationPrefsSchema,
    handler: async ({ principal, body }) => {
      const prefs = { level: body.level, mutedRooms: body.mutedRooms ?? [] };
      await store.putNotificationPrefs(principal.tenant, principal.userId, prefs);
      return prefs;
    },
  });
}
