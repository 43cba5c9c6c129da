import type { TSchema } from '@sinclair/typebox';
import type { TypeCheck } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { ChatError } from '../protocol/errors.ts';

/** Path parameters by name, percent-decoded. */
export function decodeParams(names: string[], values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  names.forEach((name, i) => {
    try {
      out[name] = decodeURIComponent(values[i] ?? '');
    } catch (err) {
      throw new ChatError('bad_request', `invalid path: ${name} is not valid percent-encoding`, { cause: err });
    }
  });
  return out;
}

/** Query strings as an object; a repeated key, or one whose schema is an array, becomes an array. */
export function parseQuery(raw: string, schema: TSchema | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!raw) return out;
  const props = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties ?? {};
  for (const [key, value] of new URLSearchParams(raw)) {
    const prev = out[key];
    if (prev === undefined) out[key] = props[key]?.type === 'array' ? [value] : value;
    else out[key] = Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

/**
 * Applies the schema's defaults (and, for path and query, converts from strings), then checks;
 * a mismatch is a 400 naming the first failing path.
 */
export function validate(check: TypeCheck<TSchema> | undefined, value: unknown, where: 'path' | 'query' | 'body', fromStrings: boolean): any {
  if (!check) return value;
  const schema = check.Schema();
  let candidate = Value.Default(schema, value);
  if (fromStrings) candidate = Value.Convert(schema, candidate);
  if (check.Check(candidate)) return candidate;
  const first = check.Errors(candidate).First();
  const path = first?.path || '/';
  throw new ChatError('bad_request', `invalid ${where}: ${path} ${first?.message ?? 'does not match the schema'}`, {
    details: { in: where, path },
  });
}
