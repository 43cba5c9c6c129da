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

export type TokenAnswer = { kind: 'token'; token: string } | Extract<SendOutcome, { kind: 'failed' }>;

/**
 * The bot's access token for the Bot Connector (OAuth 2 client credentials against Microsoft's
 * token endpoint), kept until shortly before it expires; concurrent sends share one request.
 * `drop` forgets it (the connector answered 401: it was revoked or the password rotated).
 */
export function teamsTokenSource(cfg: TeamsTokenConfig): { get(): Promise<TokenAnswer>; drop(): void } {
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
