import type { HistoryQuery } from '../shared/store/index.ts';

export interface CursorRequest {
  limit: number;
  before?: string;
  after?: string;
}

/**
 * One page of a timeline, newest first, from a store read that follows Store.history's cursor
 * rules. One extra row is read to learn whether more exist in the direction of travel: older
 * messages normally, newer ones when only `after` is given (then the extra row is the newest).
 */
export async function cursorPage<T extends { messageId: string }>(read: (q: HistoryQuery) => Promise<T[]>, q: CursorRequest) {
  const rows = await read({
    limit: q.limit + 1,
    ...(q.before !== undefined ? { before: q.before } : {}),
    ...(q.after !== undefined ? { after: q.after } : {}),
  });
  const hasMore = rows.length > q.limit;
  const forward = q.after !== undefined && q.before === undefined;
  const messages = !hasMore ? rows : forward ? rows.slice(rows.length - q.limit) : rows.slice(0, q.limit);
  return {
    messages,
    pagination: {
      hasMore,
      before: messages.at(-1)?.messageId ?? null,
      after: messages[0]?.messageId ?? null,
      limit: q.limit,
    },
  };
}
