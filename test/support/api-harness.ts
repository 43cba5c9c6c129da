import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../shared/config/index.ts';
import { createApiKeyVerifier, createAuthenticator } from '../../shared/auth/index.ts';
import { createSqliteStore, type Store } from '../../shared/store/index.ts';
import { createMemoryBus, type Bus } from '../../shared/bus/index.ts';
import { createMemoryPresence, type Presence } from '../../shared/presence/index.ts';
import { createMemoryRateLimiter } from '../../shared/rate-limit/index.ts';
import { MessageCommands, RoomCommands, RoomGuard, TenantQuotaReader, createStoreRoomAccess } from '../../shared/commands/index.ts';
import { createHttpServer, type HttpServer } from '../../shared/http/index.ts';
import { decodeMsgpack } from '../../shared/protocol/index.ts';
import type { DurableEvent } from '../../shared/domain/index.ts';
import { Snowflake } from '../../shared/ids/index.ts';
import { silentLogger, type Logger } from '../../shared/telemetry/index.ts';
import { startApi } from '../../api/start.ts';
import { createAssistant } from '../../shared/ai/index.ts';
import type { AttachmentStorage } from '../../shared/runtime/index.ts';
import { aesGcmCipher, type SecretCipher } from '../../shared/secrets/index.ts';
import type { SessionStore } from '../../shared/sessions/index.ts';

/**
 * A real api over HTTP for tests: `:memory:` SQLite, the in-process bus with a small persister
 * loop, memory presence and rate limits, and response checking on (a response that breaks its
 * schema fails the request, so the OpenAPI document stays true).
 */
export const MAX_MESSAGE_LENGTH = 200;
const SECRET = 'api-test-secret-0123456789-abcdefghijkl';

export interface ApiHarness {
  base: string;
  store: Store;
  bus: Bus;
  presence: Presence;
  server: HttpServer;
  /** A bearer token for `userId` (tenant `acme` unless given). */
  token(userId: string, tenant?: string): Promise<string>;
  /** A client acting as `userId` (tenant `acme` unless given), with the token roles given. */
  as(userId: string, tenant?: string, roles?: string[]): Client;
  /** A bearer token for `userId` of `tenant` with these roles. */
  tokenWith(userId: string, tenant: string, roles: string[]): Promise<string>;
  /** A request to any path of the server (`/v1/...`), with the headers given (an Authorization header, X-Tenant-ID). */
  call(method: string, path: string, opts?: { headers?: Record<string, string>; body?: unknown }): Promise<Reply>;
  close(): Promise<void>;
}

export interface Reply {
  status: number;
  headers: Headers;
  /** The whole JSON body. */
  body: any;
  /** `body.data` on success. */
  data: any;
  /** `body.error` on failure. */
  error: { code: string; message: string; details?: Record<string, unknown> } | undefined;
}

export interface Client {
  userId: string;
  get(path: string): Promise<Reply>;
  post(path: string, body?: unknown): Promise<Reply>;
  put(path: string, body?: unknown): Promise<Reply>;
  patch(path: string, body?: unknown): Promise<Reply>;
  del(path: string): Promise<Reply>;
  /** A request whose body is sent as written (JSON no encoder would produce). */
  raw(method: string, path: string, text: string): Promise<Reply>;
}

export async function startApiHarness(opts: {
  ratePerSecond?: number; burst?: number; aiEnv?: Record<string, string>;
  /** Serves the attachment routes over this storage (the caller closes its objects). */
  attachments?: AttachmentStorage;
  /** Where the api logs (silent unless given). */
  log?: Logger;
  /** TENANT_* and other variables. */
  env?: Record<string, string>;
  /** What tenant secrets are sealed with (default: a random key, as the embedded mode's key file). */
  secrets?: SecretCipher;
  /** Serves the channel session routes over this store (the caller closes it). */
  sessions?: SessionStore;
} = {}): Promise<ApiHarness> {
  const config = loadConfig({
    NODE_ENV: 'test', JWT_SECRET: SECRET, DEFAULT_TENANT: 'acme', MAX_MESSAGE_LENGTH: String(MAX_MESSAGE_LENGTH),
    HTTP_BODY_LIMIT_BYTES: String(64 * 1024), LOG_LEVEL: 'silent', ...opts.aiEnv, ...opts.env,
  });
  const log = opts.log ?? silentLogger();
  const store = createSqliteStore({ file: ':memory:' });
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 100_000 });
  const presence = createMemoryPresence({ ttlSec: 300, typingTimeoutMs: 3000 });
  const rateLimiter = createMemoryRateLimiter();
  const authenticator = await createAuthenticator(config.auth);
  const ids = new Snowflake(1);
  const quotas = new TenantQuotaReader(config.tenants.defaultQuotas, store, { metricLabels: config.tenants.metricLabels });
  const rooms = new RoomCommands({ bus, store, presence, ids, quotas });
  const access = createStoreRoomAccess(store);
  const messages = new MessageCommands({
    bus, store, presence, ids, access, rateLimiter,
    limits: { maxMessageLength: config.limits.maxMessageLength },
    userRate: { perSecond: opts.ratePerSecond ?? 10_000, burst: opts.burst ?? 10_000 },
    tenantRate: undefined, quotas,
  });
  const server = createHttpServer({ http: config.http, log, authenticator, apiKeys: createApiKeyVerifier(store), checkResponses: true });
  const api = await startApi({
    server, auth: config.auth, store, bus, presence, rooms, messages, guard: new RoomGuard(access), log, tenants: config.tenants,
    secrets: opts.secrets ?? aesGcmCipher({ current: randomBytes(32), previous: [] }),
    // the AI workers run when the test configures the assistant
    ...(opts.aiEnv ? { ai: { config: config.ai, assistant: createAssistant(config.ai, log), rateLimiter } } : {}),
    ...(opts.attachments ? { attachments: opts.attachments } : {}),
    ...(opts.sessions ? { sessions: opts.sessions } : {}),
  });
  const persister = bus.consume({ durable: 'test', maxBatch: 500, maxWaitMs: 20 }, async (batch) => {
    await store.applyEvents(batch.map((d) => decodeMsgpack(d.data) as DurableEvent));
    for (const d of batch) d.ack();
  });
  const port = await server.listen('127.0.0.1', 0);
  const base = `http://127.0.0.1:${port}`;

  const tokens = new Map<string, Promise<string>>();
  const token = (userId: string, tenant: string, roles: string[] = []) => {
    const key = `${tenant}/${userId}/${roles.join(',')}`;
    let t = tokens.get(key);
    if (!t) tokens.set(key, (t = authenticator.sign({ sub: userId, name: userId[0]!.toUpperCase() + userId.slice(1), tenant, ...(roles.length ? { roles } : {}) })));
    return t;
  };

  return {
    base, store, bus, presence, server,
    token: (userId, tenant = 'acme') => token(userId, tenant),
    tokenWith: (userId, tenant, roles) => token(userId, tenant, roles),
    async call(method, path, { headers = {}, body } = {}) {
      const all: Record<string, string> = { ...headers };
      if (body !== undefined) all['content-type'] = 'application/json';
      const res = await fetch(`${base}${path}`, { method, headers: all, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      const json = (await res.json()) as any;
      return { status: res.status, headers: res.headers, body: json, data: json?.data, error: json?.error };
    },
    as(userId, tenant = 'acme', roles = []) {
      const request = async (method: string, path: string, body?: unknown, text = body === undefined ? undefined : JSON.stringify(body)): Promise<Reply> => {
        const headers: Record<string, string> = { authorization: `Bearer ${await token(userId, tenant, roles)}` };
        if (text !== undefined) headers['content-type'] = 'application/json';
        const res = await fetch(`${base}/v1/chat${path}`, { method, headers, ...(text !== undefined ? { body: text } : {}) });
        const json = (await res.json()) as any;
        return { status: res.status, headers: res.headers, body: json, data: json?.data, error: json?.error };
      };
      return {
        userId,
        get: (path) => request('GET', path),
        post: (path, body) => request('POST', path, body),
        put: (path, body) => request('PUT', path, body),
        patch: (path, body) => request('PATCH', path, body),
        del: (path) => request('DELETE', path),
        raw: (method, path, text) => request(method, path, undefined, text),
      };
    },
    async close() {
      server.stopListening();
      await api.stop(1000);
      server.close();
      await persister.stop();
      await bus.close();
      await Promise.all([presence.close(), rateLimiter.close()]);
      await store.close();
    },
  };
}

/** Polls `probe` until it returns something other than undefined (persistence lags a send by a batch). */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

/** Waits until the room's history (main timeline) holds `count` messages; returns them newest first. */
export async function historyOf(client: Client, roomId: string, count: number): Promise<any[]> {
  return eventually(async () => {
    const r = await client.get(`/rooms/${roomId}/messages?limit=100`);
    return r.status === 200 && r.data.messages.length >= count ? (r.data.messages as any[]) : undefined;
  }, `${count} messages in ${roomId}`);
}
