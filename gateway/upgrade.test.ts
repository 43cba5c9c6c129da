import t from 'tap';
import type { HttpRequest, HttpResponse, us_socket_context_t } from 'uWebSockets.js';
import { createAuthenticator, type Authenticator } from '../shared/auth/index.ts';
import { loadConfig } from '../shared/config/config.ts';
import type { HttpServer } from '../shared/http/index.ts';
import type { ChatError } from '../shared/protocol/index.ts';
import type { Connection } from './connection.ts';
import { upgradeHandler } from './upgrade.ts';

/**
 * Issue 12, finding 11: uWebSockets.js can drop a socket upgraded through `res.cork` after an await
 * (uWebSockets#1928). These tests drive the handler with a recording request and response and
 * check when `upgrade` is called: during the handler whenever the token can be decided there.
 */
interface Recorded {
  calls: string[];
  upgraded?: Connection;
  refused?: ChatError;
}

function exchange(url: string, query: string, headers: Record<string, string>): { res: HttpResponse; req: HttpRequest; rec: Recorded } {
  const rec: Recorded = { calls: [] };
  let corked = false;
  const res = {
    onAborted: () => res,
    cork(fn: () => void) { corked = true; fn(); corked = false; return res; },
    upgrade(conn: Connection, key: string, protocol: string) {
      rec.calls.push(corked ? `upgrade in cork (${key}, ${protocol})` : `upgrade (${key}, ${protocol})`);
      rec.upgraded = conn;
    },
  } as unknown as HttpResponse;
  const req = {
    getUrl: () => url,
    getQuery: () => query,
    getHeader: (name: string) => headers[name] ?? '',
  } as unknown as HttpRequest;
  return { res, req, rec };
}

function deps(authenticator: Authenticator, rec: () => Recorded): Parameters<typeof upgradeHandler>[0] {
  const server = { writeError: (_res: HttpResponse, _origin: string | undefined, err: ChatError) => { rec().calls.push(`refused ${err.code}`); rec().refused = err; } } as unknown as HttpServer;
  return { server, authenticator, draining: () => false };
}

const context = {} as us_socket_context_t;

t.test('upgrade - a token the authenticator can decide now is upgraded before the handler returns, without cork', async (t) => {
  const auth = await createAuthenticator(loadConfig({}).auth);
  const token = await auth.sign({ sub: 'now-user', tenant: 'acme' });
  let current: Recorded = { calls: [] };
  const handle = upgradeHandler(deps(auth, () => current));
  const { res, req, rec } = exchange('/chat', `token=${token}&device=web`, { 'sec-websocket-key': 'k==', 'sec-websocket-protocol': 'chat.v1.msgpack' });
  current = rec;
  handle(res, req, context);
  t.same(rec.calls, ['upgrade (k==, chat.v1.msgpack)'], 'upgraded synchronously, inside the handler');
  t.match(rec.upgraded, { principal: { userId: 'now-user', tenant: 'acme' }, format: 'msgpack', device: 'web', welcomed: false });
});

t.test('upgrade - a bad token is refused synchronously with the REST envelope', async (t) => {
  const auth = await createAuthenticator(loadConfig({}).auth);
  const expired = await auth.sign({ sub: 'late' }, -5);
  for (const [query, message] of [[`token=${expired}`, 'token expired'], ['', 'missing token'], ['token=abc', 'token malformed']] as const) {
    let current: Recorded = { calls: [] };
    const handle = upgradeHandler(deps(auth, () => current));
    const { res, req, rec } = exchange('/chat', query, { 'sec-websocket-key': 'k==' });
    current = rec;
    handle(res, req, context);
    t.same(rec.calls, ['refused unauthorized'], query || 'no token');
    t.equal(rec.refused?.message, message);
  }
});

t.test('upgrade - a token only the asynchronous path can decide (a JWKS key) is upgraded in a cork afterwards', async (t) => {
  const sync = await createAuthenticator(loadConfig({}).auth);
  const jwksLike: Authenticator = { verifyNow: () => undefined, verify: (token) => sync.verify(token), sign: sync.sign };
  const token = await sync.sign({ sub: 'later' });
  let current: Recorded = { calls: [] };
  const handle = upgradeHandler(deps(jwksLike, () => current));
  const { res, req, rec } = exchange('/chat', '', { authorization: `Bearer ${token}`, 'sec-websocket-key': 'k==' });
  current = rec;
  handle(res, req, context);
  t.same(rec.calls, [], 'nothing yet');
  await new Promise((r) => setImmediate(r));
  t.same(rec.calls, ['upgrade in cork (k==, )']);
  t.match(rec.upgraded, { principal: { userId: 'later' } });
});
