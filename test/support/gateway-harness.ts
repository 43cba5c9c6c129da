import WebSocket from 'ws';
import { loadConfig } from '../../shared/config/index.ts';
import { createAuthenticator } from '../../shared/auth/index.ts';
import { createSqliteStore } from '../../shared/store/index.ts';
import { createMemoryBus } from '../../shared/bus/index.ts';
import { createMemoryPresence } from '../../shared/presence/index.ts';
import { createMemoryRateLimiter } from '../../shared/rate-limit/index.ts';
import { MessageCommands, RoomCommands, createCachedRoomAccess } from '../../shared/commands/index.ts';
import { createHttpServer } from '../../shared/http/index.ts';
import { Snowflake } from '../../shared/ids/index.ts';
import { silentLogger } from '../../shared/telemetry/index.ts';
import { startGateway } from '../../gateway/start.ts';

/**
 * A gateway in this process on a real HTTP server with in-process adapters, configured from
 * `env` as `chat gateway` would be (its limits and rules), for tests of what a socket sees.
 */
export async function startGatewayHarness(t: { teardown(fn: () => unknown): void }, env: Record<string, string> = {}) {
  const config = loadConfig({ NODE_ENV: 'test', JWT_SECRET: 'gateway-test-secret-0123456789-abcdefgh', LOG_LEVEL: 'silent', RATE_LIMIT_PER_SECOND: '100000', RATE_LIMIT_BURST: '100000', ...env });
  const log = silentLogger();
  const store = createSqliteStore({ file: ':memory:' });
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 100_000 });
  const presence = createMemoryPresence({ ttlSec: 300, typingTimeoutMs: config.ws.typingTimeoutMs });
  const authenticator = await createAuthenticator(config.auth);
  const ids = new Snowflake(1);
  const access = createCachedRoomAccess(store);
  const rateLimiter = createMemoryRateLimiter();
  const { roomCreate, membership, roomAdmin } = config.rateLimit;
  const rooms = new RoomCommands({ bus, store, presence, ids, rates: { limiter: rateLimiter, create: roomCreate, membership, admin: roomAdmin } });
  const messages = new MessageCommands({
    bus, store, presence, ids, access, rateLimiter, limits: { maxMessageLength: 1000 },
    userRate: { perSecond: config.rateLimit.perSecond, burst: config.rateLimit.burst }, tenantRate: undefined,
    coalesceReadMs: config.rateLimit.coalesceReadMs,
  });
  const server = createHttpServer({ http: config.http, log, authenticator, checkResponses: true });
  const gateway = startGateway({ server, ws: config.ws, bus, store, presence, authenticator, messages, rooms, access, rateLimiter, log });
  const port = await server.listen('127.0.0.1', 0);
  t.teardown(async () => {
    await gateway.drain();
    server.close();
    await bus.close();
    await rateLimiter.close();
  });
  const token = (userId: string, ttlSec?: number) => authenticator.sign({ sub: userId, name: userId.toUpperCase() }, ttlSec);
  const principal = async (userId: string) => authenticator.verify(await token(userId));
  return { base: `http://127.0.0.1:${port}`, port, config, bus, store, rooms, messages, token, principal, connections: () => gateway.connections() };
}

export type GatewayHarness = Awaited<ReturnType<typeof startGatewayHarness>>;

/** A JSON WebSocket client that keeps every frame it got, and how it closed. */
export interface FrameClient {
  ws: WebSocket;
  frames: any[];
  closed: Promise<{ code: number; reason: string }>;
  send(frame: Record<string, unknown>): void;
  /** Resolves with the first frame (from `from` on) that matches, or rejects when the socket closes first or after `ms`. */
  next(match: (f: any) => boolean, ms?: number, from?: number): Promise<any>;
}

export async function connectClient(h: GatewayHarness, token: string, path = '/chat', opts: { welcome?: boolean } = {}): Promise<FrameClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${h.port}${path}${path.includes('?') ? '&' : '?'}token=${token}`);
  const frames: any[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    frames.push(JSON.parse(String(data)));
    for (const w of [...waiters]) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: String(reason) });
      for (const w of [...waiters]) w();
    });
  });
  ws.on('error', () => {});
  const client: FrameClient = {
    ws, frames, closed,
    send: (frame) => ws.send(JSON.stringify(frame)),
    next(match, ms = 20_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = frames.slice(from).find(match);
          if (found !== undefined) return done(() => resolve(found));
          if (ws.readyState === WebSocket.CLOSED) return done(() => reject(new Error(`closed before a matching frame; got ${frames.map((f) => f.type).join(',')}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no matching frame in ${ms} ms; got ${frames.slice(-10).map((f) => f.type).join(',')}`))), ms);
        const done = (fn: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          fn();
        };
        waiters.add(check);
        check();
      });
    },
  };
  if (opts.welcome !== false) await client.next((f) => f.type === 'welcome');
  return client;
}

/** Waits until `ok()` holds, checking every 10 ms, for up to `ms`. */
export async function until(ok: () => boolean, ms = 20_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 10))) if (ok()) return true;
  return ok();
}
