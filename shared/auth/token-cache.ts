import type { Authenticator } from './authenticator.ts';
import type { Principal } from './principal.ts';

export interface TokenCacheOptions {
  /** Tokens remembered at most; past it the oldest entry is dropped. */
  maxTokens: number;
  /** How long a verification is reused at most, whatever the token's exp. */
  maxAgeMs: number;
  now?: () => number;
}

interface Entry {
  principal: Principal;
  /** Reused while now < until: min(exp, verified + maxAge). */
  until: number;
}

/**
 * An authenticator that remembers verified tokens for a short while, so a client that sends the
 * same bearer token on every request is not verified again each time (a signature check and a
 * JSON parse: most of an in-memory REST read). Keyed by the whole token, so any change to it is a
 * new verification; an entry is never used at or past the token's `exp` (the instant jose starts
 * refusing it) nor longer than `maxAgeMs`, which bounds how long a key rotation or a JWKS change
 * takes to reach tokens already seen. Failures are not remembered. The principal is shared by
 * every request with the token: it is frozen.
 */
export function cachingAuthenticator(inner: Authenticator, opts: TokenCacheOptions): Authenticator {
  if (opts.maxTokens <= 0) return inner;
  const now = opts.now ?? Date.now;
  const entries = new Map<string, Entry>();
  const cached = (token: string): Principal | undefined => {
    const hit = entries.get(token);
    if (hit === undefined) return undefined;
    if (now() < hit.until) return hit.principal;
    entries.delete(token);
    return undefined;
  };
  const remember = (token: string, verified: Principal): Principal => {
    const principal = Object.freeze({ ...verified });
    Object.freeze(principal.roles);
    const verifiedAt = now();
    const until = Math.min(principal.expiresAt ?? Infinity, verifiedAt + opts.maxAgeMs);
    if (verifiedAt < until) {
      // oldest first: Map keeps insertion order
      while (entries.size >= opts.maxTokens) entries.delete(entries.keys().next().value!);
      entries.set(token, { principal, until });
    }
    return principal;
  };
  return {
    async verify(token) {
      return cached(token) ?? remember(token, await inner.verify(token));
    },
    verifyNow(token) {
      const hit = cached(token);
      if (hit !== undefined) return hit;
      const verified = inner.verifyNow(token);
      return verified === undefined ? undefined : remember(token, verified);
    },
    sign: (claims, ttlSec) => inner.sign(claims, ttlSec),
  };
}
