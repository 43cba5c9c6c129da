/**
 * What a client may send us, in a WebSocket frame (JSON or msgpack) or a REST body: plain data,
 * as JSON has it. Checked once at the edge, before any schema, so everything past it (the stream,
 * the stores, JSON.stringify of a reply) only ever meets values it can handle:
 * - nesting is bounded: a metadata object 5,000 levels deep would overflow the recursive encoders
 *   downstream (msgpack, JSON.stringify) and fail as `internal`;
 * - no bigint (msgpack's 64-bit integers beyond ±2^53), which JSON.stringify throws on;
 * - numbers are finite, and whole numbers are exact (within ±(2^53 - 1)): a larger one, in JSON or
 *   msgpack, would not come back as it was sent;
 * - only strings, booleans, null, arrays and plain objects: no binary or the other types msgpack
 *   extensions decode to. Two that JS msgpack encoders write for ordinary values are taken as
 *   JSON.stringify takes them, so a frame means the same in msgpack as in JSON: `undefined` (a
 *   property set to undefined) is dropped, or null in an array; a Date (a msgpack timestamp) is its
 *   ISO string.
 */

/** Levels of objects and arrays a frame or body may hold, the frame or body itself being the first. */
export const MAX_NESTING_DEPTH = 32;

/**
 * Why `value` is not plain data, or undefined when it is (after the replacements above, made in
 * place). Walks with an explicit stack, so a hostile depth cannot overflow the call stack here.
 */
export function plainDataProblem(value: unknown, maxDepth = MAX_NESTING_DEPTH): string | undefined {
  const values: unknown[] = [value];
  const depths: number[] = [1];
  while (values.length > 0) {
    const v = values.pop();
    const depth = depths.pop()!;
    switch (typeof v) {
      case 'string':
      case 'boolean':
        continue;
      case 'number':
        if (!Number.isFinite(v)) return 'numbers must be finite';
        if (Number.isInteger(v) && !Number.isSafeInteger(v)) return 'whole numbers must be within ±9007199254740991 (send larger ones as strings)';
        continue;
      case 'bigint':
        return '64-bit integers must be within ±9007199254740991 (send larger ones as strings)';
      case 'object': {
        if (v === null) continue;
        if (depth > maxDepth) return `objects and arrays may nest at most ${maxDepth} levels`;
        if (Array.isArray(v)) {
          for (let i = 0; i < v.length; i++) {
            const item: unknown = v[i];
            if (item === undefined) v[i] = null;
            else if (item instanceof Date) v[i] = item.toJSON();
            else { values.push(item); depths.push(depth + 1); }
          }
          continue;
        }
        const proto = Object.getPrototypeOf(v) as unknown;
        if (proto !== Object.prototype && proto !== null) return 'only strings, numbers, booleans, null, arrays and maps are accepted';
        for (const key in v) {
          const child = (v as Record<string, unknown>)[key];
          if (child === undefined) delete (v as Record<string, unknown>)[key];
          else if (child instanceof Date) (v as Record<string, unknown>)[key] = child.toJSON();
          else { values.push(child); depths.push(depth + 1); }
        }
        continue;
      }
      default:
        return 'only strings, numbers, booleans, null, arrays and maps are accepted';
    }
  }
  return undefined;
}
