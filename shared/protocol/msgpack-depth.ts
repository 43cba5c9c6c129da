/**
 * How deep the maps and arrays of a msgpack document nest, read from its bytes without decoding
 * it. msgpackr decodes recursively: a frame a few thousand levels deep overflows its stack (and
 * costs a thrown RangeError per frame), so binary frames are measured first and refused cheaply.
 * Malformed or truncated input is not judged here: the decoder reports it.
 */

/** Stack of items still to read per open container; reused (one frame is scanned at a time). */
let pending = new Float64Array(64);

/** Whether containers nest deeper than `maxDepth` (the document's outermost container is level 1). */
export function msgpackNestsDeeper(b: Uint8Array, maxDepth: number): boolean {
  if (pending.length < maxDepth + 2) pending = new Float64Array(maxDepth + 2);
  let depth = 0;
  pending[0] = 1;
  let pos = 0;
  const n = b.length;
  while (pos < n) {
    const t = b[pos]!;
    let items = -1; // a container's items, or -1 for a scalar
    let skip = 0;
    if (t <= 0x7f || t >= 0xe0) skip = 1;
    else if (t <= 0x8f) { items = (t & 0x0f) * 2; skip = 1; }
    else if (t <= 0x9f) { items = t & 0x0f; skip = 1; }
    else if (t <= 0xbf) skip = 1 + (t & 0x1f);
    else {
      if (pos + 5 > n && t >= 0xc4) return false;
      switch (t) {
        case 0xc0: case 0xc2: case 0xc3: skip = 1; break;
        case 0xc4: case 0xd9: skip = 2 + b[pos + 1]!; break;
        case 0xc5: case 0xda: skip = 3 + u16(b, pos + 1); break;
        case 0xc6: case 0xdb: skip = 5 + u32(b, pos + 1); break;
        case 0xc7: skip = 3 + b[pos + 1]!; break;
        case 0xc8: skip = 4 + u16(b, pos + 1); break;
        case 0xc9: skip = 6 + u32(b, pos + 1); break;
        case 0xca: case 0xce: case 0xd2: skip = 5; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 9; break;
        case 0xcc: case 0xd0: skip = 2; break;
        case 0xcd: case 0xd1: skip = 3; break;
        case 0xd4: skip = 3; break;
        case 0xd5: skip = 4; break;
        case 0xd6: skip = 6; break;
        case 0xd7: skip = 10; break;
        case 0xd8: skip = 18; break;
        case 0xdc: items = u16(b, pos + 1); skip = 3; break;
        case 0xdd: items = u32(b, pos + 1); skip = 5; break;
        case 0xde: items = u16(b, pos + 1) * 2; skip = 3; break;
        case 0xdf: items = u32(b, pos + 1) * 2; skip = 5; break;
        default: return false; // 0xc1, never used: the decoder refuses it
      }
    }
    pos += skip;
    pending[depth]!--;
    if (items > 0) {
      if (++depth > maxDepth) return true;
      pending[depth] = items;
    }
    while (depth > 0 && pending[depth] === 0) depth--;
    if (depth === 0 && pending[0] === 0) return false;
  }
  return false;
}

const u16 = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!;
const u32 = (b: Uint8Array, at: number) => b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
