import { createPublicKey } from 'node:crypto';
import { SignJWT, jwtVerify, createRemoteJWKSet, errors as joseErrors, type JWTPayload } from 'jose';
import { createVerifier as createFastVerifier, TokenError } from 'fast-jwt';
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
  /**
   * The same verification, synchronously, where the key is at hand (HS256, a PEM key, a token
   * verified a moment ago): the principal, or undefined when only `verify` can tell (a JWKS key
   * may have to be fetched). Throws what `verify` rejects with. The WebSocket upgrade needs it:
   * uWebSockets.js can drop a socket upgraded after an await (see gateway/upgrade.ts).
   */
  verifyNow(token: string): Principal | undefined;
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
  const verifier = createVerifier(cfg);
  return cachingAuthenticator(verifier, { maxTokens: cfg.cacheTokens ?? 0, maxAgeMs: cfg.cacheTtlMs ?? 0 });
}

type Verify = (token: string) => JWTPayload;

/**
 * A key known at start (secret or PEM) is checked synchronously by fast-jwt; a JWKS URL goes
 * through jose's remote key set, which fetches and caches keys, so it is asynchronous.
 */
function createVerifier(cfg: AuthConfig): Authenticator {
  // A token without exp would stay valid forever once leaked: refused unless the operator opts in.
  const requiredClaims = cfg.allowNoExp ? [] : ['exp'];
  let verifyNow: Verify | undefined;
  let verifyLater: ((token: string) => Promise<JWTPayload>) | undefined;
  if (cfg.secret || cfg.publicKeyPem) {
    // fast-jwt reads the key on first use: a bad PEM must stop the process at start instead
    if (!cfg.secret) assertRsaPublicKey(cfg.publicKeyPem!);
    const verifyToken = createFastVerifier({
      key: cfg.secret ?? cfg.publicKeyPem!,
      algorithms: cfg.secret ? ['HS256'] : ['RS256'],
      requiredClaims,
      ...(cfg.issuer ? { allowedIss: cfg.issuer } : {}),
      ...(cfg.audience ? { allowedAud: cfg.audience } : {}),
    });
    verifyNow = (token) => {
      try {
        return verifyToken(token) as JWTPayload;
      } catch (err) {
        throw new ChatError('unauthorized', describeFastJwtError(err), { cause: err });
      }
    };
  } else if (cfg.jwksUrl) {
    const keys = createRemoteJWKSet(new URL(cfg.jwksUrl));
    const options = {
      algorithms: ['RS256'],
      requiredClaims,
      ...(cfg.issuer ? { issuer: cfg.issuer } : {}),
      ...(cfg.audience ? { audience: cfg.audience } : {}),
    };
    verifyLater = async (token) => {
      try {
        return (await jwtVerify(token, keys, options)).payload;
      } catch (err) {
        throw new ChatError('unauthorized', describeJoseError(err), { cause: err });
      }
    };
  } else {
    throw new ChatError('internal', 'no JWT verification key configured');
  }

  const principalOf = (payload: JWTPayload): Principal => {
    if (typeof payload.sub !== 'string') throw new ChatError('unauthorized', 'token has no valid sub claim');
    const userId = claim(() => canonicalId(payload.sub!, 'the sub claim'));
    const tenant = typeof payload['tenant'] === 'string' && payload['tenant'] ? claim(() => canonicalId(payload['tenant'] as string, 'the tenant claim')) : cfg.defaultTenant;
    const name = typeof payload['name'] === 'string' && payload['name'] ? claim(() => canonicalName(payload['name'] as string, 'the name claim')) : userId;
    const rolesClaim = payload['roles'];
    const roles = Array.isArray(rolesClaim) ? rolesClaim.filter((r): r is string => typeof r === 'string') : [];
    return { userId, name: name.slice(0, 128), tenant, roles, expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined };
  };
  const missing = () => new ChatError('unauthorized', 'missing token');

  return {
    verifyNow(token) {
      if (!token) throw missing();
      return verifyNow ? principalOf(verifyNow(token)) : undefined;
    },
    async verify(token) {
      if (!token) throw missing();
      return principalOf(verifyNow ? verifyNow(token) : await verifyLater!(token));
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

function assertRsaPublicKey(pem: string): void {
  let key;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new ChatError('internal', `JWT_PUBLIC_KEY is not a PEM public key: ${(err as Error).message}`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'rsa') throw new ChatError('internal', `JWT_PUBLIC_KEY must be an RSA key for RS256, not ${key.asymmetricKeyType}`);
}

const NO_EXP = 'token has no exp claim (tokens that never expire are refused)';

function describeFastJwtError(err: unknown): string {
  if (!(err instanceof TokenError)) return 'token rejected';
  switch (err.code) {
    case TokenError.codes.expired: return 'token expired';
    case TokenError.codes.invalidAlgorithm: return 'token algorithm not allowed';
    case TokenError.codes.invalidSignature: case TokenError.codes.missingSignature: return 'token signature invalid';
    case TokenError.codes.missingRequiredClaim: return /\bexp\b/.test(err.message) ? NO_EXP : 'token claim invalid: ' + err.message;
    case TokenError.codes.inactive: return 'token claim invalid: nbf';
    case TokenError.codes.invalidClaimType: case TokenError.codes.invalidClaimValue: {
      const claimName = /The (\w+) claim|of (\w+) claim/.exec(err.message);
      return `token claim invalid: ${claimName?.[1] ?? claimName?.[2] ?? 'unknown'}`;
    }
    case TokenError.codes.malformed: case TokenError.codes.invalidType: case TokenError.codes.invalidPayload: return 'token malformed';
    default: return 'token rejected';
  }
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'token expired';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature invalid';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return err.claim === 'exp' && err.reason === 'missing' ? NO_EXP : `token claim invalid: ${err.claim}`;
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
