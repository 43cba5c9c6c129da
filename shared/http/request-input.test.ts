import t from 'tap';
import { Type, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { parseQuery, validate } from './request-input.ts';

/**
 * The fast paths of request input against what they stand in for: a query split by hand reads as
 * URLSearchParams reads it, and flat schemas get Value.Default + Value.Convert's result.
 */

const schemas: Record<string, TSchema> = {
  cursor: Type.Object({
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
    before: Type.Optional(Type.String({ pattern: '^[0-9]{1,20}$' })),
    after: Type.Optional(Type.String({ pattern: '^[0-9]{1,20}$' })),
  }),
  scalars: Type.Object({
    n: Type.Optional(Type.Number()),
    b: Type.Boolean({ default: false }),
    s: Type.String({ default: 'x' }),
    i: Type.Optional(Type.Integer()),
  }, { additionalProperties: false }),
  // not flat: a union, an array, a nested object
  mixed: Type.Object({
    kind: Type.Optional(Type.Union([Type.Literal('a'), Type.Literal('b')])),
    tags: Type.Optional(Type.Array(Type.String())),
    inner: Type.Optional(Type.Object({ x: Type.Integer() })),
  }),
};

const values = ['', '0', '1', '-0', '12', '12.5', '1e3', ' 7', 'abc', 'true', 'TRUE', 'false', 'null', '0x10', 'Infinity', '٣'];

t.test('request input - a query without escapes is split as URLSearchParams splits it', async (t) => {
  const raws = ['limit=50', 'limit=50&before=123', 'a=1&a=2&a=3', 'flag', 'x=&y', '&&a=1&', 'a=b=c', '=v', 'limit=50&limit=60', 'tags=a&tags=b'];
  for (const raw of raws) {
    for (const schema of [undefined, schemas['mixed']]) {
      const slow: Record<string, unknown> = {};
      for (const [key, value] of new URLSearchParams(raw)) {
        const prev = slow[key];
        const isArray = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties?.[key]?.type === 'array';
        slow[key] = prev === undefined ? (isArray ? [value] : value) : Array.isArray(prev) ? [...prev, value] : [prev, value];
      }
      t.strictSame(parseQuery(raw, schema), slow, raw);
    }
  }
  t.strictSame(parseQuery('q=a%20b+c&r=%', undefined), { q: 'a b c', r: '%' }, 'escapes still go through URLSearchParams');
});

// Integer properties of the flat schemas: unlike Value.Convert, they take only plain whole numbers.
const integerKeys = new Set(['cursor.limit', 'scalars.i']);

t.test('request input - flat schemas get the defaults and conversions of Value.Default + Value.Convert', async (t) => {
  let compared = 0;
  for (const [name, schema] of Object.entries(schemas)) {
    const check = TypeCompiler.Compile(schema);
    const keys = Object.keys((schema as unknown as { properties: object }).properties);
    for (const key of keys) {
      for (const v of [...values, undefined]) {
        const input = () => (v === undefined ? {} : { [key]: v, extra: '1' });
        const generic = Value.Convert(schema, Value.Default(schema, input()));
        let fast: unknown;
        let fastError: unknown;
        try {
          fast = validate(check, input(), 'query', true);
        } catch (err) {
          fastError = err;
        }
        const looseInteger = typeof v === 'string' && integerKeys.has(`${name}.${key}`) && !/^[+-]?[0-9]{1,15}$/.test(v)
          && !['true', 'false', '1', '0', '-0'].includes(v.toLowerCase());
        if (check.Check(generic) && !looseInteger) t.strictSame(fast, generic, `${name}.${key} = ${JSON.stringify(v)}`);
        else t.match(fastError, { code: 'bad_request' }, `${name}.${key} = ${JSON.stringify(v)} is refused`);
        compared++;
      }
    }
  }
  t.ok(compared > 100);
  t.strictSame(validate(TypeCompiler.Compile(schemas['cursor']!), {}, 'query', true), { limit: 50 });
  t.throws(() => validate(TypeCompiler.Compile(schemas['cursor']!), { limit: '0' }, 'query', true), /invalid query: \/limit/);
});

t.test('request input - integers are whole numbers as written: no parseInt truncation, no exponent, no silent clamping', async (t) => {
  const check = TypeCompiler.Compile(schemas['cursor']!);
  for (const limit of ['1.5', '1e9', '1e1', '0x10', '10abc', ' 10', '99999999999999999999']) {
    t.throws(() => validate(check, { limit }, 'query', true), { code: 'bad_request', message: /invalid query: \/limit/ }, `limit=${limit} is refused`);
  }
  t.throws(() => validate(check, { limit: '1000' }, 'query', true), { code: 'bad_request' }, 'over the maximum is refused, not clamped');
  t.strictSame(validate(check, { limit: '10' }, 'query', true), { limit: 10 });
  t.strictSame(validate(check, { limit: '+7' }, 'query', true), { limit: 7 });
});
