import t from 'tap';
import { ChatError } from '../protocol/errors.ts';
import { loadConfig } from '../config/config.ts';
import { createAuthenticator } from './authenticator.ts';
import type { Authenticator } from './authenticator.ts';
import { cachingAuthenticator } from './token-cache.ts';

/** An authenticator whose tokens are `user:expMs`, counting verifications; `bad` tokens fail. */
function counting(): Authenticator & { calls: string[] } {
  const calls: string[] = [];
  const check = (token: string) => {
    calls.push(token);
    const [user, exp] = token.split(':');
    if (user === 'bad') throw new ChatError('unauthorized', 'token signature invalid');
    return { userId: user!, name: user!, tenant: 'default', roles: ['r'], expiresAt: exp ? Number(exp) : undefined };
  };
  return {
    calls,
    async verify(token) {
      return check(token);
    },
    // `jwks:` tokens stand for keys only the asynchronous path can fetch
    verifyNow(token) {
      return token.startsWith('jwks') ? undefined : check(token);
    },
    async sign() {
      return 'signed';
    },
  };
}

t.test('auth cache - a repeated token is verified once, and shares one frozen principal', async (t) => {
  const inner = counting();
  const auth = cachingAuthenticator(inner, { maxTokens: 10, maxAgeMs: 30_000, now: () => 1000 });
  const a = await auth.verify('alice:100000');
  const b = await auth.verify('alice:100000');
  t.equal(a, b);
  t.strictSame(inner.calls, ['alice:100000']);
  t.ok(Object.isFrozen(a) && Object.isFrozen(a.roles), 'callers cannot change what others get');
  await auth.verify('alice:100001');
  t.equal(inner.calls.length, 2, 'a different token is a different entry');
  t.equal(await auth.sign({ sub: 'x' }), 'signed');
});

t.test('auth cache - never used at or past exp, nor past the max age', async (t) => {
  const inner = counting();
  let now = 0;
  const auth = cachingAuthenticator(inner, { maxTokens: 10, maxAgeMs: 30_000, now: () => now });
  await auth.verify('alice:5000');
  now = 4999;
  await auth.verify('alice:5000');
  t.equal(inner.calls.length, 1, 'reused until the last ms before exp');
  now = 5000;
  await auth.verify('alice:5000');
  t.equal(inner.calls.length, 2, 'at exp the token is verified again (and the verifier refuses it)');

  now = 0;
  await auth.verify('bob:1000000');
  now = 29_999;
  await auth.verify('bob:1000000');
  t.equal(inner.calls.length, 3);
  now = 30_000;
  await auth.verify('bob:1000000');
  t.equal(inner.calls.length, 4, 'past the max age it is verified again');
  await auth.verify('carol');
  await auth.verify('carol');
  t.equal(inner.calls.length, 5, 'a token without exp is kept for the max age');

  const expired = cachingAuthenticator(inner, { maxTokens: 10, maxAgeMs: 30_000, now: () => 9000 });
  await expired.verify('dave:9000');
  await expired.verify('dave:9000');
  t.equal(inner.calls.length, 7, 'a token that expires as it is verified is not kept');
});

t.test('auth cache - bounded, oldest dropped first; failures are not remembered', async (t) => {
  const inner = counting();
  const auth = cachingAuthenticator(inner, { maxTokens: 2, maxAgeMs: 30_000, now: () => 0 });
  for (const tok of ['a:9', 'b:9', 'c:9']) await auth.verify(tok);
  await auth.verify('c:9');
  await auth.verify('b:9');
  t.equal(inner.calls.length, 3, 'the two newest are kept');
  await auth.verify('a:9');
  t.equal(inner.calls.length, 4, 'the oldest was dropped');
  await t.rejects(auth.verify('bad'), { code: 'unauthorized' });
  await t.rejects(auth.verify('bad'), { code: 'unauthorized' });
  t.equal(inner.calls.filter((c) => c === 'bad').length, 2);
});

t.test('auth cache - off with 0 tokens; on by default through the config', async (t) => {
  const inner = counting();
  t.equal(cachingAuthenticator(inner, { maxTokens: 0, maxAgeMs: 30_000 }), inner);

  const cfg = loadConfig({});
  t.equal(cfg.auth.cacheTokens, 10_000);
  t.equal(cfg.auth.cacheTtlMs, 30_000);
  const auth = await createAuthenticator(cfg.auth);
  const token = await auth.sign({ sub: 'alice' });
  t.equal(await auth.verify(token), await auth.verify(token), 'the configured authenticator caches');
  await t.rejects(auth.verify(token.slice(0, -2) + 'xx'), { code: 'unauthorized' }, 'a changed token is verified again');
  const plain = await createAuthenticator(loadConfig({ AUTH_CACHE_TOKENS: '0' }).auth);
  t.not(await plain.verify(token), await plain.verify(token), 'AUTH_CACHE_TOKENS=0 verifies every time');
});

t.test('auth cache - verifyNow answers from the cache, remembers what it verifies, and leaves undecidable tokens to verify', async (t) => {
  const inner = counting();
  const auth = cachingAuthenticator(inner, { maxTokens: 10, maxAgeMs: 30_000, now: () => 1000 });
  const a = auth.verifyNow('alice:100000');
  t.match(a, { userId: 'alice' });
  t.equal(await auth.verify('alice:100000'), a, 'verify reuses what verifyNow verified');
  t.equal(auth.verifyNow('alice:100000'), a);
  t.same(inner.calls, ['alice:100000'], 'one verification for all three');
  t.throws(() => auth.verifyNow('bad:1'), { code: 'unauthorized' });
  t.equal(auth.verifyNow('jwks-user:100000'), undefined, 'a token only verify can decide');
  const later = await auth.verify('jwks-user:100000');
  t.equal(auth.verifyNow('jwks-user:100000'), later, 'once verified, it is answered synchronously');
});
