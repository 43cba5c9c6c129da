import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, SignJWT } from 'jose';

export const FAKE_TEAMS_APP_ID = '00000000-1111-2222-3333-444444444444';
export const FAKE_TEAMS_PASSWORD = 'teams-app-password-for-tests';

/** One request the fake took: a token request or a connector send. */
export interface TeamsRequest {
  kind: 'token' | 'send';
  path: string;
  authorization: string | undefined;
  /** The JSON activity of a send; the form fields of a token request. */
  body: any;
  status: number;
}

export interface FakeTeams {
  /** The server's base URL: the activities' serviceUrl (http: TEAMS_ALLOW_HTTP_SERVICE_URL). */
  base: string;
  metadataUrl: string;
  tokenUrl: string;
  requests: TeamsRequest[];
  /** Tokens the token endpoint has handed out, in order. */
  issued: string[];
  /** How many times the key set was downloaded. */
  jwksFetches(): number;
  /** Statuses the next connector sends answer, in order (then 201). */
  failSends(...statuses: number[]): void;
  /** Statuses the next token requests answer, in order (then 200). */
  failTokens(...statuses: number[]): void;
  /** Puts a new signing key in the published key set (the old one stays unless `only`); its kid. */
  rotate(only?: boolean): string;
  /** A Bot Connector token for an activity: signed by the current key unless `key` says another. */
  sign(claims?: { aud?: string; iss?: string; serviceurl?: string; expSec?: number; kid?: string; key?: KeyObject }): Promise<string>;
  close(): Promise<void>;
}

interface Key { kid: string; privateKey: KeyObject; publicKey: KeyObject }

function newKey(n: number): Key {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid: `test-key-${n}`, privateKey, publicKey };
}

/**
 * A local Bot Framework: the OpenID metadata (`/openid` → `jwks_uri`), its key set (`/jwks`,
 * RSA keys with `endorsements` as Microsoft publishes them), the token endpoint (`/token`,
 * client credentials → `{token_type, expires_in, access_token}`, 401 `invalid_client` for a
 * wrong secret) and the Bot Connector (`POST /v3/conversations/{id}/activities` with the bearer
 * token, answering 201 `{id}`, 401 for a token it did not issue).
 */
export async function startFakeTeams(opts: { expiresInSec?: number } = {}): Promise<FakeTeams> {
  let n = 0;
  const keys: Key[] = [newKey(++n)];
  const requests: TeamsRequest[] = [];
  const issued: string[] = [];
  const sendStatuses: number[] = [];
  const tokenStatuses: number[] = [];
  let jwksFetches = 0;
  let seq = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const path = req.url ?? '/';
        const raw = Buffer.concat(chunks).toString('utf8');
        const json = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
        if (req.method === 'GET' && path === '/openid') {
          json(200, { issuer: 'https://api.botframework.com', authorization_endpoint: 'https://invalid.botframework.com', jwks_uri: `${base}/jwks`, id_token_signing_alg_values_supported: ['RS256'], token_endpoint_auth_methods_supported: ['private_key_jwt'] });
          return;
        }
        if (req.method === 'GET' && path === '/jwks') {
          jwksFetches++;
          const published = await Promise.all(keys.map(async (k) => ({ ...(await exportJWK(k.publicKey)), kid: k.kid, kty: 'RSA', use: 'sig', endorsements: ['msteams'] })));
          json(200, { keys: published });
          return;
        }
        if (req.method === 'POST' && path === '/token') {
          const form = Object.fromEntries(new URLSearchParams(raw));
          const good = form['grant_type'] === 'client_credentials' && form['client_id'] === FAKE_TEAMS_APP_ID && form['client_secret'] === FAKE_TEAMS_PASSWORD
            && form['scope'] === 'https://api.botframework.com/.default';
          const status = tokenStatuses.shift() ?? (good ? 200 : 401);
          requests.push({ kind: 'token', path, authorization: req.headers.authorization, body: { ...form, client_secret: '***' }, status });
          if (status === 200) {
            const token = `fake-access-token-${++seq}`;
            issued.push(token);
            json(200, { token_type: 'Bearer', expires_in: opts.expiresInSec ?? 3599, ext_expires_in: 3599, access_token: token });
          } else {
            json(status, { error: status === 401 ? 'invalid_client' : 'temporarily_unavailable', error_description: 'AADSTS7000215: Invalid client secret provided.' });
          }
          return;
        }
        const send = /^\/v3\/conversations\/([^/]+)\/activities$/.exec(path);
        if (req.method === 'POST' && send) {
          let body: any;
          try {
            body = JSON.parse(raw);
          } catch {
            body = undefined;
          }
          const auth = req.headers.authorization;
          const status = sendStatuses.shift() ?? (issued.some((t) => auth === `Bearer ${t}`) ? 201 : 401);
          requests.push({ kind: 'send', path, authorization: auth, body, status });
          if (status === 201) json(201, { id: `1:out-${++seq}` });
          else if (status === 429) res.writeHead(429, { 'retry-after': '0', 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'Throttled', message: 'Too many requests' } }));
          else json(status, { error: { code: status === 401 ? 'Unauthorized' : status === 404 ? 'ConversationNotFound' : 'ServiceError', message: `HTTP ${status}` } });
          return;
        }
        json(404, { error: 'not found' });
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base, metadataUrl: `${base}/openid`, tokenUrl: `${base}/token`, requests, issued,
    jwksFetches: () => jwksFetches,
    failSends: (...s) => void sendStatuses.push(...s),
    failTokens: (...s) => void tokenStatuses.push(...s),
    rotate(only = false) {
      const key = newKey(++n);
      if (only) keys.length = 0;
      keys.push(key);
      return key.kid;
    },
    async sign(c = {}) {
      const key = keys[keys.length - 1]!;
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ serviceurl: c.serviceurl ?? base })
        .setProtectedHeader({ alg: 'RS256', kid: c.kid ?? key.kid, typ: 'JWT' })
        .setIssuer(c.iss ?? 'https://api.botframework.com').setAudience(c.aud ?? FAKE_TEAMS_APP_ID)
        .setIssuedAt(now - 60).setNotBefore(now - 60).setExpirationTime(now + (c.expSec ?? 3600))
        .sign(c.key ?? key.privateKey);
    },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** A Teams `message` activity from a person in their personal chat with the bot, as the connector posts it. */
export function teamsActivity(serviceUrl: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'message', id: '1733360000000', timestamp: new Date().toISOString(), localTimestamp: new Date().toISOString(),
    serviceUrl, channelId: 'msteams',
    from: { id: '29:1AbCdEfGhIjKlMnOpQrStUvWxYz-0123456789abcdefghijklmnopqrstuvwxyz', name: 'Ada Lovelace', aadObjectId: 'a1b2c3d4-0000-4000-8000-000000000001' },
    conversation: { conversationType: 'personal', tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47', id: 'a:1VeryLongOpaqueConversationIdForThePersonalChatWithTheBot_0123456789' },
    recipient: { id: `28:${FAKE_TEAMS_APP_ID}`, name: 'Support Bot' },
    textFormat: 'plain', text: 'Hello from Teams', entities: [{ type: 'clientInfo', locale: 'en-US', country: 'US', platform: 'Web' }],
    channelData: { tenant: { id: '72f988bf-86f1-41af-91ab-2d7cd011db47' } }, locale: 'en-US',
    ...fields,
  };
}
