import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';

type RemoteKeySet = ReturnType<typeof createRemoteJWKSet>;
import { ChatError } from '../protocol/errors.ts';

/** The issuer of the tokens the Bot Connector service sends with an activity. */
export const BOT_FRAMEWORK_ISSUER = 'https://api.botframework.com';
/** Where the Bot Framework publishes its OpenID metadata (and so its signing keys). */
export const BOT_FRAMEWORK_OPENID_METADATA = 'https://login.botframework.com/v1/.well-known/openidconfiguration';
/** Bot Framework's documented clock skew allowance. */
const CLOCK_TOLERANCE_SEC = 300;
/** How long the metadata (where the key set is) is trusted before it is read again. */
const METADATA_TTL_MS = 24 * 3600 * 1000;

export interface TeamsAuthConfig {
  appId: string;
  openIdMetadataUrl: string;
  httpTimeoutMs: number;
  /**
   * Least time between two downloads of the key set for a token naming a key it does not hold
   * (a rotated key is fetched then; a stream of made-up kids costs one download per period).
   */
  jwksCooldownMs?: number;
}

/**
 * Checks the `Authorization: Bearer <JWT>` the Bot Connector sends with an activity, as Bot
 * Framework's "authenticate requests from the Bot Connector service" asks: RS256 under a key of
 * the key set the OpenID metadata names, issuer api.botframework.com, audience our app id, within
 * its lifetime give or take 5 minutes, and a `serviceurl` claim equal to the activity's
 * serviceUrl (a token taken from one activity cannot send us to another service), and a signing
 * key whose `endorsements` name the activity's channelId (a key Microsoft endorsed for another
 * channel does not vouch for a Teams activity). The key set is kept (jose's remote JWKS) and
 * downloaded again for a key id it does not know.
 */
export function teamsTokenVerifier(cfg: TeamsAuthConfig): (authorization: string | undefined, serviceUrl: string, channelId: string) => Promise<void> {
  const keySet = sharedKeySet(cfg);

  return async (authorization, serviceUrl, channelId) => {
    const token = /^Bearer (\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) throw new ChatError('unauthorized', 'missing Authorization: Bearer token');
    const getKey = await keySet();
    let payload;
    let kid: string | undefined;
    try {
      ({ payload, protectedHeader: { kid } } = await jwtVerify(token, getKey, {
        algorithms: ['RS256'], issuer: BOT_FRAMEWORK_ISSUER, audience: cfg.appId, clockTolerance: CLOCK_TOLERANCE_SEC, requiredClaims: ['exp'],
      }));
    } catch (err) {
      // the key set could not be downloaded: not the sender's fault, and the connector retries a 5xx
      if (err instanceof joseErrors.JWKSTimeout || (err instanceof Error && !(err instanceof joseErrors.JOSEError))) {
        throw new ChatError('unavailable', 'the Bot Framework key set could not be read', { cause: err });
      }
      throw new ChatError('unauthorized', `the Bot Framework token is not valid: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const claimed = payload['serviceurl'] ?? payload['serviceUrl'];
    if (typeof claimed !== 'string' || trimSlash(claimed) !== trimSlash(serviceUrl)) {
      throw new ChatError('unauthorized', 'the token\'s serviceurl claim is not the activity\'s serviceUrl');
    }
    const key = getKey.jwks()?.keys.find((k) => k.kid === kid) as { endorsements?: unknown } | undefined;
    const endorsements = Array.isArray(key?.endorsements) ? key.endorsements : [];
    if (!endorsements.includes(channelId)) {
      throw new ChatError('unauthorized', `the token's signing key is not endorsed for channel ${JSON.stringify(channelId.slice(0, 64))}`);
    }
  };
}

interface KeySet { getKey: RemoteKeySet | undefined; until: number; loading: Promise<RemoteKeySet> | undefined }
/**
 * Key sets by metadata URL, shared by every adapter: a tenant's adapters are rebuilt every
 * DIRECTORY_TTL_MS (channel-directory.ts), and the key set is the same for every bot.
 */
const KEY_SETS = new Map<string, KeySet>();

function sharedKeySet(cfg: TeamsAuthConfig): () => Promise<RemoteKeySet> {
  const id = `${cfg.openIdMetadataUrl} ${cfg.jwksCooldownMs ?? ''}`;
  return async () => {
    let set = KEY_SETS.get(id);
    if (set === undefined) {
      set = { getKey: undefined, until: 0, loading: undefined };
      KEY_SETS.set(id, set);
    }
    const entry = set;
    if (entry.getKey && entry.until > Date.now()) return entry.getKey;
    entry.loading ??= (async () => {
      try {
        let res: Response;
        try {
          res = await fetch(cfg.openIdMetadataUrl, { signal: AbortSignal.timeout(cfg.httpTimeoutMs), redirect: 'error' });
        } catch (err) {
          throw new ChatError('unavailable', 'the Bot Framework OpenID metadata could not be read', { cause: err });
        }
        const meta = res.ok ? await res.json().catch(() => undefined) as { jwks_uri?: unknown } | undefined : undefined;
        if (typeof meta?.jwks_uri !== 'string') throw new ChatError('unavailable', `the Bot Framework OpenID metadata has no jwks_uri (HTTP ${res.status})`);
        const getKey = createRemoteJWKSet(new URL(meta.jwks_uri), {
          timeoutDuration: cfg.httpTimeoutMs, cooldownDuration: cfg.jwksCooldownMs ?? 30_000, cacheMaxAge: 3600_000,
        });
        entry.getKey = getKey;
        entry.until = Date.now() + METADATA_TTL_MS;
        return getKey;
      } finally {
        entry.loading = undefined;
      }
    })();
    return entry.loading;
  };
}

const trimSlash = (url: string): string => url.replace(/\/+$/, '');
