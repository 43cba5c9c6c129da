import { CHAT_PREFIX, type ApiDeps } from '../deps.ts';
import { SearchQuery, SearchResult } from '../schemas.ts';
import type { RoomKey } from '../../shared/domain/index.ts';

export function searchRoutes({ server, store, guard }: ApiDeps): void {
  server.route({
    method: 'get', path: `${CHAT_PREFIX}/search`, operationId: 'searchMessages', tags: ['search'],
    summary: 'Full-text search over the rooms you are in, or over one room you may read',
    query: SearchQuery,
    response: SearchResult,
    handler: async ({ principal, query }) => {
      let roomIds: RoomKey[];
      if (query.roomId) {
        roomIds = [(await guard.reader(principal, query.roomId)).key];
      } else {
        roomIds = await store.roomsOfUser(principal.tenant, principal.userId);
      }
      return { query: query.q, messages: await store.search({ roomIds, text: query.q, limit: query.limit }) };
    },
  });
}
