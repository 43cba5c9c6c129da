/**
 * A room's live message as the fan-out gets it: a stored event (`payload` is the event as the
 * stream holds it, `seq` its stream sequence) or an ephemeral frame (a ready msgpack frame, no seq).
 */
export interface LiveItem {
  payload: Uint8Array;
  seq: number | undefined;
}

/**
 * What a room sends once its gap is repaired: the events replayed from the stream and the live
 * messages it held back, merged in stream order, each seq once; ephemeral frames (typing,
 * presence) after them, in the order they came.
 */
export function mergeInStreamOrder(replayed: LiveItem[], held: LiveItem[]): LiveItem[] {
  const bySeq = new Map<number, LiveItem>();
  for (const r of replayed) if (r.seq !== undefined) bySeq.set(r.seq, r);
  const unsequenced: LiveItem[] = [];
  for (const item of held) {
    if (item.seq === undefined) unsequenced.push(item);
    else if (!bySeq.has(item.seq)) bySeq.set(item.seq, item);
  }
  return [...[...bySeq.keys()].sort((a, b) => a - b).map((seq) => bySeq.get(seq)!), ...unsequenced];
}
