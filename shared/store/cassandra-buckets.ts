import { bigintIdTime } from '../ids/index.ts';

/**
 * Messages (and their reactions) are partitioned by room and a time window taken from the
 * message id, so no partition grows forever; `room_buckets` lists the windows a room has used.
 */
export const BUCKET_MS = 10 * 24 * 3600 * 1000;

export function bucketOf(id: bigint): number {
  return Math.floor(bigintIdTime(id < 0n ? 0n : id) / BUCKET_MS);
}

/** Ids grouped by bucket, each group in the order given. */
export function byBucket(ids: Iterable<bigint>): Map<number, bigint[]> {
  const groups = new Map<number, bigint[]>();
  for (const id of ids) {
    const b = bucketOf(id);
    const list = groups.get(b);
    if (list) list.push(id);
    else groups.set(b, [id]);
  }
  return groups;
}
