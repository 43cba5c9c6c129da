import { CHAT_PREFIX, type ApiDeps } from '../deps.ts';
import { MeResult } from '../schemas.ts';
import { roomIdOf } from '../../shared/domain/index.ts';

export function meRoutes({ server, store }: ApiDeps): void {
  server.route({
    method: 'get', path: `${CHAT_PREFIX}/me`, operationId: 'me', tags: ['me'],
    summary: 'Who the token says you are, and the rooms you are in',
    response: MeResult,
    handler: async ({ principal }) => ({
      userId: principal.userId, name: principal.name, tenant: principal.tenant, roles: principal.roles,
      rooms: (await store.roomsOfUser(principal.tenant, principal.userId)).map(roomIdOf),
    }),
  });
}
