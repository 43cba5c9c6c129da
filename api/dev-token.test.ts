import t from 'tap';
import { loadConfig } from '../shared/config/index.ts';
import { createAuthenticator } from '../shared/auth/index.ts';
import { createHttpServer } from '../shared/http/index.ts';
import { silentLogger } from '../shared/telemetry/logger.ts';
import { devTokenRoutes } from './routes/dev-token.ts';
import type { ApiDeps } from './deps.ts';
import { startApiHarness } from '../test/support/api-harness.ts';

/** Only what the dev token routes read. */
async function serveDevTokens(env: Record<string, string>) {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env });
  const authenticator = await createAuthenticator(config.auth);
  const server = createHttpServer({ http: config.http, log: silentLogger(), authenticator, checkResponses: true });
  await devTokenRoutes({ server, auth: config.auth } as ApiDeps);
  const port = await server.listen('127.0.0.1', 0);
  return { base: `http://127.0.0.1:${port}`, authenticator, close: () => server.close() };
}

const post = (base: string, body: unknown) =>
  fetch(`${base}/v1/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

t.test('dev token - with the development secret, a token for a name signs in as that user', async (t) => {
  const srv = await serveDevTokens({});
  t.teardown(srv.close);
  const res = await post(srv.base, { user: 'alice', name: 'Alice Liddell' });
  t.equal(res.status, 200);
  const body = (await res.json()) as { data: { token: string; userId: string; name: string; expiresIn: number } };
  t.match(body.data, { userId: 'alice', name: 'Alice Liddell', expiresIn: 86400 });
  t.match(await srv.authenticator.verify(body.data.token), { userId: 'alice', name: 'Alice Liddell' });
  t.equal((await post(srv.base, { user: 'has space' })).status, 400, 'a user id with spaces is refused');
});

t.test('dev token - the token names the canonical user, and names that a token would be refused for get none (issue 12)', async (t) => {
  const srv = await serveDevTokens({});
  t.teardown(srv.close);
  const wide = await post(srv.base, { user: 'ａｌｉｃｅ', name: 'Cafe\u0301' });
  t.match(((await wide.json()) as { data: unknown }).data, { userId: 'alice', name: 'Café' }, 'ａｌｉｃｅ is alice');
  for (const body of [{ user: 'ali\u200bce' }, { user: 'alice', name: 'x\u202e' }, { user: 'alice', name: '\u200b\u200b' }]) {
    const res = await post(srv.base, body);
    t.equal(res.status, 400, JSON.stringify(body));
  }
});

t.test('dev token - with a real secret the route does not exist (404)', async (t) => {
  const srv = await serveDevTokens({ JWT_SECRET: 'a-real-secret-that-is-long-enough-0123456789' });
  t.teardown(srv.close);
  const res = await post(srv.base, { user: 'alice' });
  t.equal(res.status, 404);
  t.match(await res.json(), { success: false, error: { code: 'not_found' } });
});

t.test('dev token - the api tier as started for production-like config has no dev route, and serves the page at /', async (t) => {
  const h = await startApiHarness();
  t.teardown(() => h.close());
  t.equal((await post(h.base, { user: 'alice' })).status, 404);
  const page = await fetch(`${h.base}/`);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.ok(h.server.openapi()['paths'] && !JSON.stringify(h.server.openapi()).includes('/v1/dev/token'), 'and does not document one');
});
