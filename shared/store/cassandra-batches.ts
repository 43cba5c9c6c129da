/**
 * How the Cassandra store sends writes: statements are grouped by the partition they write (the
 * key is the caller's name for it), and each group goes as UNLOGGED BATCHes of that partition
 * alone, so a batch never spans partitions and costs the coordinator nothing extra.
 */
export interface Statement { query: string; params: unknown[] }

/** Statements by partition key. */
export type StatementGroups = Map<string, Statement[]>;

/** Statements per UNLOGGED BATCH, and their rough size: Cassandra refuses batches over 50 KiB. */
const BATCH_MAX_STATEMENTS = 32;
const BATCH_MAX_BYTES = 24 * 1024;

export function addStatement(groups: StatementGroups, key: string, s: Statement): void {
  const list = groups.get(key);
  if (list) list.push(s);
  else groups.set(key, [s]);
}

/** The groups cut into batches under both limits; a batch of one is sent as a plain statement. */
export function batchesOf(groups: StatementGroups): Statement[][] {
  const units: Statement[][] = [];
  for (const statements of groups.values()) {
    let chunk: Statement[] = [];
    let bytes = 0;
    for (const s of statements) {
      const size = estimateSize(s);
      if (chunk.length > 0 && (chunk.length >= BATCH_MAX_STATEMENTS || bytes + size > BATCH_MAX_BYTES)) {
        units.push(chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(s);
      bytes += size;
    }
    if (chunk.length > 0) units.push(chunk);
  }
  return units;
}

function estimateSize(s: Statement): number {
  let n = 64;
  for (const p of s.params) {
    if (typeof p === 'string') n += p.length * 3;
    else if (Array.isArray(p)) for (const v of p) n += typeof v === 'string' ? v.length * 3 + 4 : 8;
    else n += 8;
  }
  return n;
}
