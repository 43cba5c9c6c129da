import t from 'tap';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CLOSE_CODES, ERROR_CODES, errorMapping, ChatError, toChatError } from './errors.ts';

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

t.test('errors - docs/protocol.md documents every code with its status, close code and retry, and every close code', async (t) => {
  const doc = readFileSync(resolve(import.meta.dirname, '../../docs/protocol.md'), 'utf8');
  for (const code of ERROR_CODES) {
    const m = errorMapping(code);
    t.match(doc, new RegExp('`' + code + '`\\s*\\|\\s*' + m.http), `${code} is in the error table`);
    t.match(doc, new RegExp('`' + code + '`\\s*\\|\\s*' + m.http + '\\s*\\|\\s*' + m.close + '\\s*\\|\\s*' + (m.retryable ? 'yes' : 'no') + '\\s*\\|'),
      `${code}: HTTP ${m.http}, close ${m.close}, retry ${m.retryable ? 'yes' : 'no'}`);
  }
  for (const [name, value] of Object.entries(CLOSE_CODES)) {
    t.match(doc, new RegExp('\\|\\s*' + value + '\\s*\\|\\s*`' + name + '`\\s*\\|'), `close code ${value} (${name}) is in the close-code table`);
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
