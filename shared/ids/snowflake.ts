/**
 * 64-bit time-ordered ids: 41 bits of milliseconds since EPOCH_MS, 10 bits of node id, 12 bits of
 * sequence. Carried as decimal strings, so they sort by time only when compared as BigInt or by
 * (length, string); `compareIds` does that.
 *
 * Uniqueness needs a node id no other live process holds (see node-id leases); within a process
 * the sequence covers 4096 ids per ms, and the clock is never allowed to go backwards.
 */
export const EPOCH_MS = Date.UTC(2024, 0, 1);
export const NODE_ID_BITS = 10;
export const SEQUENCE_BITS = 12;
export const MAX_NODE_ID = (1 << NODE_ID_BITS) - 1;
const MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1;
const SHIFT = BigInt(NODE_ID_BITS + SEQUENCE_BITS);

export class Snowflake {
  readonly nodeId: number;
  private lastMs = -1;
  private sequence = 0;

  constructor(nodeId: number, private readonly now: () => number = Date.now) {
    if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > MAX_NODE_ID) {
      throw new RangeError(`node id must be an integer 0..${MAX_NODE_ID}, got ${nodeId}`);
    }
    this.nodeId = nodeId;
  }

  next(): string {
    let ms = this.now() - EPOCH_MS;
    // A clock that steps back would reuse (ms, seq) pairs: keep counting from the last ms instead.
    if (ms < this.lastMs) ms = this.lastMs;
    if (ms === this.lastMs) {
      this.sequence = (this.sequence + 1) & MAX_SEQUENCE;
      if (this.sequence === 0) ms = ++this.lastMs; // sequence exhausted: borrow the next ms
    } else {
      this.sequence = 0;
      this.lastMs = ms;
    }
    return ((BigInt(ms) << SHIFT) | (BigInt(this.nodeId) << BigInt(SEQUENCE_BITS)) | BigInt(this.sequence)).toString();
  }
}

/** Milliseconds since the Unix epoch at which the id was made. */
export function idTime(id: string): number {
  return Number(BigInt(id) >> SHIFT) + EPOCH_MS;
}

/** `idTime` of an id already held as a BigInt (the stores keep ids as BigInt). */
export function bigintIdTime(id: bigint): number {
  return Number(id >> SHIFT) + EPOCH_MS;
}

/** The smallest id that could have been made at `ms`: a range bound for "messages since ms". */
export function idAtTime(ms: number): string {
  return (BigInt(Math.max(0, ms - EPOCH_MS)) << SHIFT).toString();
}

/** Numeric order of two decimal-string ids without BigInt allocation. */
export function compareIds(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isId(value: string): boolean {
  return /^[0-9]{1,20}$/.test(value) && BigInt(value) < 1n << 63n;
}
