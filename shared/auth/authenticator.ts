import { SignJWT, jwtVerify, createRemoteJWKSet, importSPKI, errors as joseErrors, type JWTPayload, type JWTVerifyGetKey, type CryptoKey } from 'jose';
import { ChatError } from '../protocol/errors.ts';
import type { AuthConfig } from '../config/config.ts';
import type { Principal } from './principal.ts';
import { canonicalId, canonicalName } from '../domain/identity.ts';
import { cachingAuthenticator } from './token-cache.ts';

/**
 * Verifies bearer tokens: HS256 with a shared secret, or RS256 with a PEM public key or a JWKS URL.
 * Only the configured algorithm is accepted, so `alg: none` and algorithm-confusion tokens fail.
 */
export interface Authenticator {
  verify(token: string): Promise<Principal>;
  /** Mints a token; only with an HS256 secret (dev mode and tests). */
  sign(claims: { sub: string; name?: string; tenant?: string; roles?: string[] }, ttlSec?: number): Promise<string>;
}

/** A claim that names someone, in its canonical form; a claim that has none makes the token unusable. */
function claim(canonical: () => string): string {
  try {
    return canonical();
  } catch (err) {
    throw new ChatError('unauthorized', `token refused: ${(err as Error).message}`, { cause: err });
  }
}

/** The configured verifier, behind a short-lived cache of verified tokens when `cfg.cacheTokens` > 0. */
export async function createAuthenticator(cfg: AuthConfig): Promise<Authenticator> {
  const verifier = await createVerifier(cfg);
  return cachingAuthenticator(verifier, { maxTokens: cfg.cacheTokens ?? 0, maxAgeMs: cfg.cacheTtlMs ?? 0 });
}

async function createVerifier(cfg: AuthConfig): Promise<Authenticator> {
  let key: Uint8Array | CryptoKey | JWTVerifyGetKey;
  let algorithms: string[];
  if (cfg.secret) {
    key = new TextEncoder().encode(cfg.secret);
    algorithms = ['HS256'];
  } else if (cfg.publicKeyPem) {
    key = await importSPKI(cfg.publicKeyPem, 'RS256');
    algorithms = ['RS256'];
  } else if (cfg.jwksUrl) {
    key = createRemoteJWKSet(new URL(cfg.jwksUrl));
    algorithms = ['RS256'];
  } else {
    throw new ChatError('internal', 'no JWT verification key configured');
  }

  const verifyOptions = {
    algorithms,
    // A token without exp would stay valid forever once leaked: refused unless the operator opts in.
    ...(cfg.allowNoExp ? {} : { requiredClaims: ['exp'] }),
    ...(cfg.issuer ? { issuer: cfg.issuer } : {}),
    ...(cfg.audience ? { audience: cfg.audience } : {}),
  };

  return {
    async verify(token) {
      if (!token) throw new ChatError('unauthorized', 'missing token');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, key as Uint8Array, verifyOptions));
      } catch (err) {
        throw new ChatError('unauthorized', describeJoseError(err), { cause: err });
      }
      if (typeof payload.sub !== 'string') throw new ChatError('unauthorized', 'token has no valid sub claim');
      const userId = claim(() => canonicalId(payload.sub!, 'the sub claim'));
      const tenant = typeof payload['tenant'] === 'string' && payload['tenant'] ? claim(() => canonicalId(payload['tenant'] as string, 'the tenant claim')) : cfg.defaultTenant;
      const name = typeof payload['name'] === 'string' && payload['name'] ? claim(() => canonicalName(payload['name'] as string, 'the name claim')) : userId;
      const rolesClaim = payload['roles'];
      const roles = Array.isArray(rolesClaim) ? rolesClaim.filter((r): r is string => typeof r === 'string') : [];
      return { userId, name: name.slice(0, 128), tenant, roles, expiresAt: payload.exp ? payload.exp * 1000 : undefined };
    },
    async sign(claims, ttlSec = 24 * 3600) {
      if (!cfg.secret) throw new ChatError('forbidden', 'tokens can only be minted with an HS256 secret');
      let jwt = new SignJWT({ name: claims.name ?? claims.sub, tenant: claims.tenant ?? cfg.defaultTenant, roles: claims.roles ?? [] })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(claims.sub)
        .setIssuedAt()
        .setExpirationTime(`${ttlSec}s`);
      if (cfg.issuer) jwt = jwt.setIssuer(cfg.issuer);
      if (cfg.audience) jwt = jwt.setAudience(cfg.audience);
      return jwt.sign(new TextEncoder().encode(cfg.secret));
    },
  };
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'token expired';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature invalid';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return err.claim === 'exp' && err.reason === 'missing' ? 'token has no exp claim (tokens that never expire are refused)' : `token claim invalid: ${err.claim}`;
  }
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return 'token malformed';
  return 'token rejected';
}

/** The bearer token of a request: `Authorization: Bearer x`, else `?token=x`. */
export function extractToken(authorization: string | undefined, query: string | undefined): string | undefined {
  if (authorization) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (m) return m[1];
  }
  if (query) {
    const token = new URLSearchParams(query).get('token');
    if (token) return token;
  }
  return undefined;
}
