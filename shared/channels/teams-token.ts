import { createHash } from 'node:crypto';
import type { SendOutcome } from './channel.ts';
import { describeFailure, postForm, retryableStatus } from './platform-http.ts';

/** The scope a bot's token for the Bot Connector is asked for. */
export const BOT_FRAMEWORK_SCOPE = 'https://api.botframework.com/.default';
/** A token is renewed this long before it expires, so none goes out about to lapse mid-request. */
const RENEW_BEFORE_MS = 5 * 60_000;

export interface TeamsTokenConfig {
  appId: string;
  appPassword: string;
  tokenUrl: string;
  httpTimeoutMs: number;
  now?: () => number;
}

/** Bots whose tokens are remembered at once; past it the memory starts over. */
const MAX_SOURCES = 10_000;

export type TokenAnswer = { kind: 'token'; token: string } | Extract<SendOutcome, { kind: 'failed' }>;

/**
 * The bot's access token for the Bot Connector (OAuth 2 client credentials against Microsoft's
 * token endpoint), kept until shortly before it expires; concurrent sends share one request.
 * `drop` forgets it (the connector answered 401: it was revoked or the password rotated).
 */
export type TokenSource = { get(): Promise<TokenAnswer>; drop(): void };
const SOURCES = new Map<string, TokenSource>();

/**
 * The token source of one bot (endpoint, app id and password), shared by every adapter built
 * for it: a tenant's adapters are rebuilt every DIRECTORY_TTL_MS (channel-directory.ts), and a
 * new token for each would be a token request per reply.
 */
export function sharedTeamsTokenSource(cfg: TeamsTokenConfig): TokenSource {
  const id = `${cfg.tokenUrl}\n${cfg.appId}\n${createHash('sha256').update(cfg.appPassword).digest('base64url')}`;
  let source = SOURCES.get(id);
  if (source === undefined) {
    if (SOURCES.size >= MAX_SOURCES) SOURCES.clear();
    source = teamsTokenSource(cfg);
    SOURCES.set(id, source);
  }
  return source;
}

export function teamsTokenSource(cfg: TeamsTokenConfig): TokenSource {
  const now = cfg.now ?? Date.now;
  let cached: { token: string; until: number } | undefined;
  let pending: Promise<TokenAnswer> | undefined;

  async function fetchToken(): Promise<TokenAnswer> {
    const answer = await postForm(cfg.tokenUrl, {}, {
      grant_type: 'client_credentials', client_id: cfg.appId, client_secret: cfg.appPassword, scope: BOT_FRAMEWORK_SCOPE,
    }, cfg.httpTimeoutMs);
    if ('kind' in answer) return { ...answer, error: `token endpoint: ${answer.error}` };
    const json = answer.json as { access_token?: unknown; expires_in?: unknown } | undefined;
    if (answer.status !== 200 || typeof json?.access_token !== 'string') {
      // 400/401: the app id or password is wrong, which no retry mends
      return {
        kind: 'failed', error: `token endpoint: ${describeFailure(answer.status, answer.status === 200 ? undefined : json)}`,
        retryable: retryableStatus(answer.status), ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}),
      };
    }
    const lifetimeMs = (typeof json.expires_in === 'number' ? json.expires_in : Number(json.expires_in ?? 3600)) * 1000;
    // a short-lived token is kept for half its life rather than not at all
    const keepMs = lifetimeMs > 2 * RENEW_BEFORE_MS ? lifetimeMs - RENEW_BEFORE_MS : lifetimeMs / 2;
    cached = { token: json.access_token, until: now() + (Number.isFinite(keepMs) ? keepMs : 0) };
    return { kind: 'token', token: json.access_token };
  }

  return {
    async get() {
      if (cached && cached.until > now()) return { kind: 'token', token: cached.token };
      pending ??= fetchToken().finally(() => { pending = undefined; });
      return pending;
    },
    drop() {
      cached = undefined;
    },
  };
}
