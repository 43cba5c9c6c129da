import type { ByteRange } from '../shared/objects/index.ts';

/**
 * The `Range` header of a download (RFC 9110 §14.2), for an object of `size` bytes:
 * - undefined: no range, or one this server answers with the whole object (several ranges, another
 *   unit, a malformed header: RFC 9110 lets a server ignore Range);
 * - 'unsatisfiable': a well-formed range that starts past the end (416);
 * - else the inclusive range, clipped to the object.
 */
export function parseByteRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header.trim());
  if (!m) return undefined;
  const [, first, last] = m as unknown as [string, string, string];
  if (first === '' && last === '') return undefined;
  if (first === '') {
    // a suffix: the last N bytes
    const n = Number(last);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
