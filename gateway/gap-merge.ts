import { decodeMsgpack } from '../shared/protocol/index.ts';

/** A frame replayed from the stream to fill a gap. */
export interface ReplayedFrame {
  seq: number;
  payload: Uint8Array;
}

/**
 * What a room sends once its gap is repaired: the replayed frames and the live ones it held back,
 * merged in stream order, each seq once; frames without a seq (typing, presence) after them.
 */
export function mergeInStreamOrder(replayed: ReplayedFrame[], held: Uint8Array[]): Uint8Array[] {
  const bySeq = new Map<number, Uint8Array>();
  for (const r of replayed) bySeq.set(r.seq, r.payload);
  const unsequenced: Uint8Array[] = [];
  for (const payload of held) {
    const seq = seqOf(payload);
    if (seq === undefined) unsequenced.push(payload);
    else if (!bySeq.has(seq)) bySeq.set(seq, payload);
  }
  return [...[...bySeq.keys()].sort((a, b) => a - b).map((seq) => bySeq.get(seq)!), ...unsequenced];
}

/** The stream sequence a live frame carries (durable events have one; typing and presence don't). */
function seqOf(payload: Uint8Array): number | undefined {
  try {
    const seq = (decodeMsgpack(payload) as { seq?: unknown }).seq;
    return typeof seq === 'number' ? seq : undefined;
  } catch {
    return undefined; // undecodable: the fan-out reports it when it forwards the frame
  }
}
