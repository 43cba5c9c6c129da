/**
 * Runs `fn` over `items` with at most `limit` calls in flight. After the first failure no new
 * call starts; the ones in flight finish, then that first error is thrown.
 */
export async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let error: { err: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && error === undefined) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        error ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (error !== undefined) throw error.err;
}
