/**
 * A small declarative reader for environment variables: each variable has a kind, a default and
 * bounds; `readEnv` collects every problem and reports them together with the variable's name and
 * what was expected, so an operator fixes a bad deployment in one pass.
 */
export type VarSpec =
  | { kind: 'int'; default?: number; min?: number; max?: number; doc: string }
  | { kind: 'string'; default?: string; doc: string; pattern?: RegExp }
  | { kind: 'bool'; default?: boolean; doc: string }
  | { kind: 'enum'; values: readonly string[]; default?: string; doc: string }
  | { kind: 'list'; default?: string[]; doc: string }
  /** A token bucket: `N/Ts` is N at once and N per T seconds (`N/s`: per second). */
  | { kind: 'rate'; default?: Rate; doc: string };

/** A rate rule as read from the environment: `burst` at once, refilled at `perSecond`. */
export interface Rate { perSecond: number; burst: number }

const RATE = /^(\d+)\/(\d*)s$/;

/** Reads `N/Ts` (N per T seconds, N at once) or `N/s`; undefined when malformed. */
export function parseRate(text: string): Rate | undefined {
  const m = RATE.exec(text.trim());
  if (!m) return undefined;
  const count = Number(m[1]);
  const seconds = m[2] === '' ? 1 : Number(m[2]);
  if (!(count >= 1 && seconds >= 1 && Number.isSafeInteger(count) && Number.isSafeInteger(seconds))) return undefined;
  return { perSecond: count / seconds, burst: count };
}

/** The text form of a rate, for docs and messages. */
export function formatRate(rate: Rate): string {
  const seconds = rate.burst / rate.perSecond;
  return seconds === 1 ? `${rate.burst}/s` : `${rate.burst}/${seconds}s`;
}

export type ValueOf<S extends VarSpec> =
  S extends { kind: 'int' } ? number :
  S extends { kind: 'bool' } ? boolean :
  S extends { kind: 'list' } ? string[] :
  S extends { kind: 'rate' } ? Rate :
  S extends { kind: 'enum'; values: readonly (infer V)[] } ? V :
  string;

export type EnvValues<T extends Record<string, VarSpec>> = {
  [K in keyof T]: T[K] extends { default: unknown } ? ValueOf<T[K]> : ValueOf<T[K]> | undefined;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export function readEnv<T extends Record<string, VarSpec>>(schema: T, env: Record<string, string | undefined>): EnvValues<T> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(schema)) {
    const raw = env[name];
    if (raw === undefined || raw === '') {
      out[name] = spec.default;
      continue;
    }
    switch (spec.kind) {
      case 'int': {
        const n = Number(raw);
        if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n)) problems.push(`${name}: expected an integer, got "${raw}"`);
        else if (spec.min !== undefined && n < spec.min) problems.push(`${name}: must be >= ${spec.min}, got ${n}`);
        else if (spec.max !== undefined && n > spec.max) problems.push(`${name}: must be <= ${spec.max}, got ${n}`);
        else out[name] = n;
        break;
      }
      case 'bool': {
        const v = raw.trim().toLowerCase();
        if (['1', 'true', 'yes', 'on'].includes(v)) out[name] = true;
        else if (['0', 'false', 'no', 'off'].includes(v)) out[name] = false;
        else problems.push(`${name}: expected true or false, got "${raw}"`);
        break;
      }
      case 'enum':
        if (spec.values.includes(raw.trim())) out[name] = raw.trim();
        else problems.push(`${name}: expected one of ${spec.values.join(', ')}, got "${raw}"`);
        break;
      case 'list':
        out[name] = raw.split(',').map((s) => s.trim()).filter(Boolean);
        break;
      case 'rate': {
        const rate = parseRate(raw);
        if (rate === undefined) problems.push(`${name}: expected N/Ts (N at once, N per T seconds, e.g. 10/60s) or N/s, got "${raw}"`);
        else out[name] = rate;
        break;
      }
      case 'string':
        if (spec.pattern && !spec.pattern.test(raw)) problems.push(`${name}: "${raw}" does not match ${spec.pattern}`);
        else out[name] = raw;
        break;
      default: {
        const never: never = spec;
        throw new Error(`unknown var kind ${JSON.stringify(never)}`);
      }
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return out as EnvValues<T>;
}
