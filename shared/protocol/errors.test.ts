import t from 'tap';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ERROR_CODES, errorMapping, ChatError, toChatError } from './errors.ts';

t.test('errors - every code maps to an HTTP status and an application close code', async (t) => {
  for (const code of ERROR_CODES) {
    const m = errorMapping(code);
    t.ok(m.http >= 400 && m.http < 600, `${code} -> ${m.http}`);
    t.ok(m.close >= 4000 && m.close < 5000, `${code} closes with ${m.close}`);
  }
  t.equal(errorMapping('rate_limited').http, 429);
  t.equal(errorMapping('too_large').http, 413);
  t.equal(errorMapping('unavailable').http, 503);
});

t.test('errors - the README documents every code with its status', async (t) => {
  const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8');
  for (const code of ERROR_CODES) {
    t.match(readme, new RegExp('`' + code + '`\\s*\\|\\s*' + errorMapping(code).http), `${code} is in the README's error table`);
  }
});

t.test('errors - unknown failures become internal and keep their cause', async (t) => {
  const cause = new Error('driver exploded');
  const e = toChatError(cause);
  t.equal(e.code, 'internal');
  t.equal(e.cause, cause);
  const same = new ChatError('conflict', 'x');
  t.equal(toChatError(same), same);
  t.equal(same.status, 409);
});
