import t from 'tap';
import net from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { SignJWT, UnsecuredJWT } from 'jose';
import WebSocket from 'ws';
import { Type } from '@sinclair/typebox';
import { createAuthenticator, type Authenticator } from '../auth/authenticator.ts';
import { ChatError } from '../protocol/errors.ts';
import { createHttpServer, type HttpServer, type HttpServerOptions } from './http-server.ts';

const SECRET = 'http-test-secret-0123456789-abcdefghij';

interface Harness {
  server: HttpServer;
  base: string;
  port: number;
  auth: Authenticator;
  logs: string[];
  token: (sub?: string) => Promise<string>;
}

async function start(t: { teardown(fn: () => unknown): void }, options: Partial<HttpServerOptions> = {}, setup?: (server: HttpServer) => void): Promise<Harness> {
  const auth = await createAuthenticator({
    secret: SECRET, publicKeyPem: undefined, jwksUrl: undefined, issuer: undefined, audience: undefined, defaultTenant: 'acme', devTokens: false,
  });
  const logs: string[] = [];
  const log = pino({ level: 'warn' }, new Writable({ write(chunk, _enc, cb) { logs.push(String(chunk)); cb(); } }));
  const server = createHttpServer({ http: { bodyLimitBytes: 1024, corsOrigins: ['*'], reusePort: false }, log, authenticator: auth, checkResponses: true, ...options });
  setup?.(server);
  const port = await server.listen('127.0.0.1', 0);
  t.teardown(() => server.close());
  return { server, base: `http://127.0.0.1:${port}`, port, auth, logs, token: (sub = 'alice') => auth.sign({ sub, name: sub.toUpperCase() }) };
}

async function call(base: string, path: string, init: RequestInit & { token?: string; json?: unknown } = {}) {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `Bearer ${init.token}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  const res = await fetch(base + path, { ...init, headers, body });
  const text = await res.text();
  let json: any;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

/** Writes a raw request and collects everything the server sends until it closes or goes quiet. */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let received = '';
    let quiet: NodeJS.Timeout | undefined;
    const finish = () => { clearTimeout(quiet); socket.destroy(); resolve(received); };
    socket.on('data', (d) => {
      received += String(d);
      clearTimeout(quiet);
      quiet = setTimeout(finish, 200);
    });
    socket.on('close', finish);
    socket.on('error', (err) => (received ? finish() : reject(err)));
  });
}

function thingRoutes(server: HttpServer, calls: unknown[] = []): void {
  server.route({
    method: 'get', path: '/v1/things/:thingId', operationId: 'getThing', summary: 'A thing', tags: ['things'],
    params: Type.Object({ thingId: Type.String({ minLength: 1 }) }),
    query: Type.Object({
      limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
      verbose: Type.Optional(Type.Boolean()),
    }),
    response: Type.Object({ thingId: Type.String(), limit: Type.Integer(), verbose: Type.Boolean(), user: Type.String() }),
    handler: async ({ params, query, principal }) => {
      calls.push({ params, query });
      return { thingId: params.thingId, limit: query.limit, verbose: query.verbose ?? false, user: principal.userId };
    },
  });
  server.route({
    method: 'post', path: '/v1/things', operationId: 'createThing', summary: 'Create a thing', status: 201,
    body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 10 }), size: Type.Optional(Type.Integer()) }),
    response: Type.Object({ name: Type.String(), size: Type.Integer() }),
    handler: async ({ body, setStatus }) => {
      if (body.name === 'again') setStatus(200);
      return { name: body.name, size: body.size ?? 0 };
    },
  });
  server.route({
    method: 'get', path: '/v1/public', operationId: 'publicThing', summary: 'No auth', auth: false,
    response: Type.Object({ anonymous: Type.Boolean() }),
    handler: async ({ principal }) => ({ anonymous: principal === undefined }),
  });
}

t.test('http - routes, path params and query conversion with defaults', async (t) => {
  const calls: unknown[] = [];
  const h = await start(t, {}, (s) => thingRoutes(s, calls));
  const token = await h.token();

  const a = await call(h.base, '/v1/things/a%20b?verbose=true', { token });
  t.equal(a.status, 200);
  t.same(a.json, { success: true, data: { thingId: 'a b', limit: 20, verbose: true, user: 'alice' } });

  const b = await call(h.base, '/v1/things/x1?limit=7', { token });
  t.same(b.json.data, { thingId: 'x1', limit: 7, verbose: false, user: 'alice' });
  t.match(b.headers.get('content-type'), /application\/json/);

  const created = await call(h.base, '/v1/things', { method: 'POST', token, json: { name: 'box', size: 3 } });
  t.equal(created.status, 201);
  t.same(created.json, { success: true, data: { name: 'box', size: 3 } });
  const again = await call(h.base, '/v1/things', { method: 'POST', token, json: { name: 'again' } });
  t.equal(again.status, 200, 'a handler may override the success status');

  const pub = await call(h.base, '/v1/public');
  t.same(pub.json, { success: true, data: { anonymous: true } });
  t.equal(calls.length, 2);
});

t.test('http - validation errors name the first failing path', async (t) => {
  const calls: unknown[] = [];
  const h = await start(t, {}, (s) => thingRoutes(s, calls));
  const token = await h.token();

  const q = await call(h.base, '/v1/things/x?limit=abc', { token });
  t.equal(q.status, 400);
  t.equal(q.json.success, false);
  t.equal(q.json.error.code, 'bad_request');
  t.match(q.json.error.message, /query: \/limit/);

  const tooBig = await call(h.base, '/v1/things/x?limit=1000', { token });
  t.equal(tooBig.status, 400);
  t.match(tooBig.json.error.message, /\/limit/);

  const body = await call(h.base, '/v1/things', { method: 'POST', token, json: { size: 2 } });
  t.equal(body.status, 400);
  t.match(body.json.error.message, /body: \/name/);
  t.same(body.json.error.details, { in: 'body', path: '/name' });

  const long = await call(h.base, '/v1/things', { method: 'POST', token, json: { name: 'x'.repeat(11) } });
  t.equal(long.status, 400);

  const badEncoding = await call(h.base, '/v1/things/%E0%A4%A', { token });
  t.equal(badEncoding.status, 400);
  t.match(badEncoding.json.error.message, /thingId/);
  t.equal(calls.length, 0, 'no handler ran for an invalid request');
});

t.test('http - bad JSON is 400 and an oversized body is 413', async (t) => {
  const h = await start(t, {}, (s) => thingRoutes(s));
  const token = await h.token();

  const bad = await call(h.base, '/v1/things', { method: 'POST', token, headers: { 'content-type': 'application/json' }, body: '{"name":' });
  t.equal(bad.status, 400);
  t.same(bad.json.error.code, 'bad_request');
  t.match(bad.json.error.message, /JSON/);

  const declared = await call(h.base, '/v1/things', { method: 'POST', token, json: { name: 'x', pad: 'y'.repeat(5000) } });
  t.equal(declared.status, 413);
  t.equal(declared.json.error.code, 'too_large');
  t.same(declared.json.error.details, { limit: 1024 });

  // No content-length: the limit is enforced while reading the chunks. A raw socket sends the
  // whole body before reading, so the answer does not race the upload.
  const chunk = 'x'.repeat(400);
  const chunked = Array.from({ length: 10 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('') + '0\r\n\r\n';
  const answer = await rawExchange(h.port,
    `POST /v1/things HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`);
  t.match(answer, /^HTTP\/1\.1 413 /);
  t.match(answer, /"code":"too_large"/);

  const fine = await call(h.base, '/v1/things', { method: 'POST', token, json: { name: 'ok' } });
  t.equal(fine.status, 201, 'the server keeps serving after refusing bodies');
});

t.test('http - authentication failures are 401 with a reason', async (t) => {
  const h = await start(t, {}, (s) => thingRoutes(s));
  const missing = await call(h.base, '/v1/things/x');
  t.equal(missing.status, 401);
  t.equal(missing.json.error.code, 'unauthorized');
  t.equal(missing.headers.get('www-authenticate'), 'Bearer');

  const forged = await new SignJWT({ name: 'm' }).setProtectedHeader({ alg: 'HS256' }).setSubject('mallory').setExpirationTime('1h')
    .sign(new TextEncoder().encode('another-secret-of-sufficient-length-123'));
  const bad = await call(h.base, '/v1/things/x', { token: forged });
  t.equal(bad.status, 401);
  t.match(bad.json.error.message, /signature/);

  const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice')
    .setIssuedAt(Math.floor(Date.now() / 1000) - 120).setExpirationTime(Math.floor(Date.now() / 1000) - 60)
    .sign(new TextEncoder().encode(SECRET));
  const old = await call(h.base, '/v1/things/x', { token: expired });
  t.equal(old.status, 401);
  t.match(old.json.error.message, /expired/);

  const none = new UnsecuredJWT({}).setSubject('alice').setExpirationTime('1h').encode();
  const unsigned = await call(h.base, '/v1/things/x', { token: none });
  t.equal(unsigned.status, 401);
  t.equal(unsigned.json.error.code, 'unauthorized');

  const ok = await call(h.base, '/v1/things/x', { token: await h.token('bob') });
  t.equal(ok.status, 200);
  t.equal(ok.json.data.user, 'bob');
});

t.test('http - ChatError maps to its status, anything else to a logged 500 that leaks nothing', async (t) => {
  const h = await start(t, {}, (s) => {
    s.route({
      method: 'get', path: '/v1/fail/:how', operationId: 'fail', summary: 'Fails',
      params: Type.Object({ how: Type.String() }),
      handler: async ({ params }) => {
        if (params.how === 'forbidden') throw new ChatError('forbidden', 'not yours');
        if (params.how === 'limited') throw new ChatError('rate_limited', 'slow down', { details: { retryAfterMs: 1500 } });
        if (params.how === 'conflict') throw new ChatError('conflict', 'taken', { details: { id: 'x' } });
        if (params.how === 'driver') throw new ChatError('internal', 'SQLITE_CORRUPT at page 7', { cause: new Error('disk'), details: { page: 7 } });
        throw new Error('db password is hunter2');
      },
    });
    s.route({
      method: 'get', path: '/v1/liar', operationId: 'liar', summary: 'Returns the wrong shape',
      response: Type.Object({ n: Type.Integer() }),
      handler: async () => ({ n: 'one' }) as unknown as { n: number },
    });
  });
  const token = await h.token();

  const f = await call(h.base, '/v1/fail/forbidden', { token });
  t.equal(f.status, 403);
  t.same(f.json, { success: false, error: { code: 'forbidden', message: 'not yours' } });

  const r = await call(h.base, '/v1/fail/limited', { token });
  t.equal(r.status, 429);
  t.equal(r.headers.get('retry-after'), '2');
  t.same(r.json.error.details, { retryAfterMs: 1500 });

  const c = await call(h.base, '/v1/fail/conflict', { token });
  t.equal(c.status, 409);
  t.same(c.json.error, { code: 'conflict', message: 'taken', details: { id: 'x' } });

  const boom = await call(h.base, '/v1/fail/boom', { token });
  t.equal(boom.status, 500);
  t.same(boom.json, { success: false, error: { code: 'internal', message: 'internal error' } });
  t.notMatch(boom.text, /hunter2/);
  const logged = h.logs.find((l) => l.includes('hunter2'));
  t.ok(logged, 'the failure is logged');
  t.match(logged, /http-server\.test\.ts/, 'with its stack');

  const driver = await call(h.base, '/v1/fail/driver', { token });
  t.equal(driver.status, 500);
  t.same(driver.json.error, { code: 'internal', message: 'internal error' }, 'an internal ChatError is not passed through either');
  t.ok(h.logs.some((l) => l.includes('SQLITE_CORRUPT')));

  const liar = await call(h.base, '/v1/liar', { token });
  t.equal(liar.status, 500, 'a response that breaks its schema is caught when checkResponses is on');
  t.ok(h.logs.some((l) => l.includes('does not match its schema')));
});

t.test('http - CORS preflight and origin echo', async (t) => {
  const any = await start(t, {}, (s) => thingRoutes(s));
  const pre = await fetch(`${any.base}/v1/things`, {
    method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
  });
  t.equal(pre.status, 204);
  t.equal(pre.headers.get('access-control-allow-origin'), '*');
  t.match(pre.headers.get('access-control-allow-methods'), /POST/);
  t.match(pre.headers.get('access-control-allow-headers'), /Authorization/);
  t.match(pre.headers.get('access-control-allow-headers'), /Content-Type/);

  const listed = await start(t, { http: { bodyLimitBytes: 1024, corsOrigins: ['https://good.example'], reusePort: false } }, (s) => thingRoutes(s));
  const good = await call(listed.base, '/v1/public', { headers: { origin: 'https://good.example' } });
  t.equal(good.headers.get('access-control-allow-origin'), 'https://good.example');
  t.equal(good.headers.get('vary'), 'Origin');
  const evil = await call(listed.base, '/v1/public', { headers: { origin: 'https://evil.example' } });
  t.equal(evil.status, 200);
  t.equal(evil.headers.get('access-control-allow-origin'), null);
  const evilPre = await fetch(`${listed.base}/v1/things`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
  t.equal(evilPre.status, 204);
  t.equal(evilPre.headers.get('access-control-allow-methods'), null);
});

t.test('http - health, readiness, metrics', async (t) => {
  let dbUp = true;
  const h = await start(t, { readinessTimeoutMs: 100 }, (s) => {
    thingRoutes(s);
    s.addReadiness('db', async () => { if (!dbUp) throw new Error('db is down'); });
  });
  const health = await call(h.base, '/health');
  t.equal(health.status, 200);
  t.same(health.json, { status: 'ok' });

  const ready = await call(h.base, '/health/ready');
  t.equal(ready.status, 200);
  t.same(ready.json, { status: 'ready', checks: { db: 'ok' } });

  dbUp = false;
  h.server.addReadiness('bus', () => new Promise(() => {}));
  const notReady = await call(h.base, '/health/ready');
  t.equal(notReady.status, 503);
  t.equal(notReady.json.status, 'not_ready');
  t.equal(notReady.json.checks.db, 'db is down');
  t.match(notReady.json.checks.bus, /within 100 ms/);

  await call(h.base, '/v1/things/m', { token: await h.token() });
  const m = await fetch(`${h.base}/metrics`);
  t.equal(m.status, 200);
  t.match(m.headers.get('content-type'), /application\/openmetrics-text/);
  const text = await m.text();
  t.match(text, /chat_http_requests_total\{route="\/v1\/things\/:thingId",status="200"\} \d+/);
  t.match(text, /chat_http_request_seconds_bucket\{le="[^"]+",route="\/v1\/things\/:thingId"\}/);
});

t.test('http - /health/detailed: each check with status, latency and dependency; chat_ready and chat_dependency_up follow it at each scrape', async (t) => {
  let storeUp = true;
  const h = await start(t, { readinessTimeoutMs: 100, tier: 'probe-test', nodeId: 7 }, (s) => {
    s.addReadiness('store', async () => { if (!storeUp) throw new Error('store is down'); }, 'cassandra');
    s.addReadiness('self', async () => {});
  });
  const ok = await call(h.base, '/health/detailed');
  t.equal(ok.status, 200);
  t.equal(ok.json.status, 'ready');
  t.equal(ok.json.tier, 'probe-test');
  t.equal(ok.json.nodeId, 7);
  t.same(ok.json.checks.store, { status: 'ok', latencyMs: ok.json.checks.store.latencyMs, dependency: 'cassandra' });
  t.ok(ok.json.checks.store.latencyMs >= 0);
  t.notOk('dependency' in ok.json.checks.self, 'a check of the process itself names no dependency');
  const up = await (await fetch(`${h.base}/metrics`)).text();
  t.match(up, /chat_ready\{tier="probe-test"\} 1/);
  t.match(up, /chat_dependency_up\{dependency="cassandra"\} 1/);

  storeUp = false;
  const down = await call(h.base, '/health/detailed');
  t.equal(down.status, 503);
  t.equal(down.json.status, 'not_ready');
  t.same(down.json.checks.store, { status: 'fail', latencyMs: down.json.checks.store.latencyMs, dependency: 'cassandra', error: 'store is down' });
  storeUp = true;
  const later = await (await fetch(`${h.base}/metrics`)).text();
  t.match(later, /chat_ready\{tier="probe-test"\} 1/, 'a scrape runs the checks again rather than repeating the last probe');
  storeUp = false;
  const scraped = await (await fetch(`${h.base}/metrics`)).text();
  t.match(scraped, /chat_ready\{tier="probe-test"\} 0/);
  t.match(scraped, /chat_dependency_up\{dependency="cassandra"\} 0/);
  const info = await call(h.base, '/info');
  t.equal(info.status, 200);
  t.equal(info.json.nodeId, 7);
  t.equal(info.json.build, info.json.commit ?? info.json.version);
});

t.test('http - markNotReady: readiness answers 503 naming the reason while the dependencies are fine, and stays so', async (t) => {
  const h = await start(t, {}, (s) => {
    s.addReadiness('db', async () => {});
  });
  t.equal((await call(h.base, '/health/ready')).status, 200);
  h.server.markNotReady('shutting down');
  h.server.markNotReady('shutting down');
  for (let i = 0; i < 2; i++) {
    const ready = await call(h.base, '/health/ready');
    t.equal(ready.status, 503);
    t.same(ready.json, { status: 'not_ready', checks: { db: 'ok', draining: 'shutting down' } });
  }
  t.equal((await call(h.base, '/health')).status, 200, 'liveness is not affected');
});

t.test('http - unknown routes get the 404 envelope; routes and ws registered later still win', async (t) => {
  const h = await start(t, {}, (s) => {
    s.app.ws('/chat', { open: (ws) => { ws.send('hello'); } });
    thingRoutes(s);
  });
  const miss = await call(h.base, '/v1/nowhere');
  t.equal(miss.status, 404);
  t.same(miss.json.success, false);
  t.equal(miss.json.error.code, 'not_found');
  t.match(miss.json.error.message, /GET \/v1\/nowhere/);

  const wrongMethod = await call(h.base, '/v1/things/x', { method: 'DELETE', token: await h.token() });
  t.equal(wrongMethod.status, 404);

  const late = await call(h.base, '/v1/public');
  t.equal(late.status, 200);

  const greeting = await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${h.port}/chat`);
    ws.on('message', (data) => { resolve(String(data)); ws.close(); });
    ws.on('error', reject);
  });
  t.equal(greeting, 'hello');
});

t.test('http - openapi document lists the routes with their schemas', async (t) => {
  const h = await start(t, {}, (s) => thingRoutes(s));
  const res = await call(h.base, '/v1/openapi.json');
  t.equal(res.status, 200);
  const doc = res.json;
  t.equal(doc.openapi, '3.1.0');
  const get = doc.paths['/v1/things/{thingId}'].get;
  t.equal(get.operationId, 'getThing');
  t.same(get.parameters.map((p: any) => [p.name, p.in, p.required]), [['thingId', 'path', true], ['limit', 'query', false], ['verbose', 'query', false]]);
  t.same(get.responses['200'].content['application/json'].schema.properties.success, { const: true });
  t.ok(get.responses['401'], 'auth routes document 401');
  const post = doc.paths['/v1/things'].post;
  t.same(post.requestBody.content['application/json'].schema.required, ['name']);
  t.ok(post.responses['201']);
  t.same(doc.paths['/v1/public'].get.security, []);
  t.same(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  t.ok(doc.paths['/health'].get && doc.paths['/metrics'].get, 'built-in routes are documented');
  t.same(h.server.openapi(), doc);
});

t.test('http - a client that disconnects mid-request does not crash the server', async (t) => {
  let release!: () => void;
  let entered!: () => void;
  const inHandler = new Promise<void>((r) => { entered = r; });
  let finished = false;
  const h = await start(t, {}, (s) => {
    s.route({
      method: 'get', path: '/v1/slow', operationId: 'slow', summary: 'Waits', auth: false,
      handler: async () => {
        entered();
        await new Promise<void>((r) => { release = r; });
        finished = true;
        return { late: true };
      },
    });
    s.route({
      method: 'post', path: '/v1/upload', operationId: 'upload', summary: 'Takes a body', auth: false,
      body: Type.Object({}), handler: async () => ({ ok: true }),
    });
  });

  const socket = net.connect(h.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  socket.write('GET /v1/slow HTTP/1.1\r\nHost: x\r\n\r\n');
  await inHandler;
  socket.destroy();
  await new Promise((r) => setTimeout(r, 50));
  release();
  await new Promise((r) => setTimeout(r, 50));
  t.ok(finished, 'the handler ran to the end');

  const partial = net.connect(h.port, '127.0.0.1');
  await new Promise((r) => partial.once('connect', r));
  partial.write('POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"a":');
  await new Promise((r) => setTimeout(r, 30));
  partial.destroy();
  await new Promise((r) => setTimeout(r, 30));

  const after = await call(h.base, '/v1/upload', { method: 'POST', json: {} });
  t.equal(after.status, 200, 'still serving');
  t.equal(await h.server.drain(1000), 0, 'nothing left in flight');
});

t.test('http - stopListening refuses new connections and keeps open ones; close ends them', async (t) => {
  const h = await start(t, {}, (s) => thingRoutes(s));
  t.equal((await call(h.base, '/health')).status, 200);
  const keepAlive = net.connect(h.port, '127.0.0.1');
  await new Promise((r) => keepAlive.once('connect', r));
  h.server.stopListening();
  const refused = await new Promise<string>((resolve) => {
    const s = net.connect(h.port, '127.0.0.1', () => { s.destroy(); resolve('connected'); });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
  t.equal(refused, 'ECONNREFUSED');
  const answer = await new Promise<string>((resolve) => {
    keepAlive.once('data', (d) => resolve(String(d)));
    keepAlive.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  t.match(answer, /^HTTP\/1\.1 200 /, 'a connection opened before still gets answers');
  const ended = new Promise((r) => keepAlive.once('close', r));
  h.server.close();
  await ended;
  t.ok(keepAlive.destroyed, 'close ends open connections');
});

t.test('http - a route whose path and params disagree is refused at registration', async (t) => {
  const h = await start(t);
  t.throws(() => h.server.route({
    method: 'get', path: '/v1/x/:a', operationId: 'x', summary: 'x',
    params: Type.Object({ b: Type.String() }), handler: async () => ({}),
  }), /params schema must declare exactly a/);
  h.server.route({ method: 'get', path: '/v1/once', operationId: 'once', summary: 'x', handler: async () => ({}) });
  t.throws(() => h.server.route({ method: 'get', path: '/v1/once', operationId: 'twice', summary: 'x', handler: async () => ({}) }), /registered twice/);
  t.throws(() => h.server.route({ method: 'post', path: '/v1/other', operationId: 'once', summary: 'x', handler: async () => ({}) }), /registered twice/);
});

t.test('http - held routes: streams and held answers, with auth (query token allowed), validation, CORS, metrics and docs', async (t) => {
  let aborted = 0;
  let release!: () => void;
  const h = await start(t, {}, (s) => {
    s.held({
      method: 'get', path: '/v1/feed', operationId: 'feed', summary: 'A stream', tokenInQuery: true, contentType: 'text/event-stream',
      query: Type.Object({ token: Type.Optional(Type.String()), n: Type.Integer({ minimum: 1, maximum: 5 }) }),
      handler: async ({ principal, query }, res) => {
        res.onAbort(() => { aborted++; });
        res.stream([['content-type', 'text/event-stream']], `hello ${principal.userId}\n`);
        for (let i = 0; i < query.n; i++) res.write(`${i}\n`);
        if (query.n < 5) res.end();
      },
    });
    s.held({
      method: 'get', path: '/v1/wait', operationId: 'wait', summary: 'A held answer',
      response: Type.Object({ late: Type.Boolean() }),
      handler: async (_ctx, res) => {
        await new Promise<void>((r) => { release = r; });
        res.json(JSON.stringify({ success: true, data: { late: true } }), [['Cache-Control', 'no-store']]);
      },
    });
  });
  const token = await h.token();

  const feed = await call(h.base, `/v1/feed?n=3&token=${token}`, { headers: { origin: 'https://app.example' } });
  t.equal(feed.status, 200);
  t.equal(feed.text, 'hello alice\n0\n1\n2\n', 'the stream, chunk by chunk, until the route ends it');
  t.match(feed.headers.get('content-type'), /text\/event-stream/);
  t.equal(feed.headers.get('access-control-allow-origin'), '*');

  const anonymous = await call(h.base, '/v1/feed?n=3');
  t.equal(anonymous.status, 401);
  t.match(anonymous.json.error.message, /\?token=/);
  const invalid = await call(h.base, '/v1/feed?n=9', { token });
  t.equal(invalid.status, 400);
  t.match(invalid.json.error.message, /query: \/n/);
  const headerOnly = await call(h.base, `/v1/wait?token=${token}`);
  t.equal(headerOnly.status, 401, 'a route that does not allow it takes no query token');

  const waiting = call(h.base, '/v1/wait', { token });
  await new Promise((r) => setTimeout(r, 50));
  t.equal(await h.server.drain(10), 1, 'a held answer is in flight until it is written');
  release();
  const answered = await waiting;
  t.same(answered.json, { success: true, data: { late: true } });
  t.equal(answered.headers.get('cache-control'), 'no-store');

  const open = net.connect(h.port, '127.0.0.1');
  await new Promise((r) => open.once('connect', r));
  const first = new Promise((r) => open.once('data', r));
  open.write(`GET /v1/feed?n=5&token=${token} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await first;
  open.destroy();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(aborted, 1, 'a stream whose client went away is told');
  t.equal(await h.server.drain(1000), 0, 'and is no longer in flight');

  const metrics = await (await fetch(`${h.base}/metrics`)).text();
  t.match(metrics, /chat_http_requests_total\{route="\/v1\/feed",status="200"\} [1-9]/);
  t.match(metrics, /chat_http_requests_total\{route="\/v1\/feed",status="401"\} [1-9]/);
  t.match(metrics, /chat_http_requests_total\{route="\/v1\/wait",status="200"\} [1-9]/);

  const doc = (await call(h.base, '/v1/openapi.json')).json;
  t.same(doc.paths['/v1/feed'].get.parameters.map((p: any) => p.name), ['token', 'n']);
  t.ok(doc.paths['/v1/feed'].get.responses['200'].content['text/event-stream']);
  t.ok(doc.paths['/v1/feed'].get.responses['401'], 'its errors are documented');
  t.same(doc.paths['/v1/wait'].get.responses['200'].content['application/json'].schema.properties.data.properties, { late: { type: 'boolean' } });
});

t.test('http - writeError answers a request no route handles with the envelope and CORS', async (t) => {
  const h = await start(t, {}, (s) => {
    s.app.get('/raw', (res, req) => {
      const origin = req.getHeader('origin') || undefined;
      s.writeError(res, origin, new ChatError('unavailable', 'not now'));
    });
  });
  const res = await call(h.base, '/raw', { headers: { origin: 'https://app.example' } });
  t.equal(res.status, 503);
  t.same(res.json, { success: false, error: { code: 'unavailable', message: 'not now' } });
  t.equal(res.headers.get('access-control-allow-origin'), '*');
});

t.test('listen - a port in use is an error naming it, unless sharing it is asked for', async (t) => {
  const log = pino({ level: 'silent' });
  const make = (reusePort: boolean) => createHttpServer({ http: { bodyLimitBytes: 1024, corsOrigins: ['*'], reusePort }, log });
  const first = make(false);
  t.teardown(() => first.close());
  const port = await first.listen('127.0.0.1', 0);
  const second = make(false);
  t.teardown(() => second.close());
  await t.rejects(second.listen('127.0.0.1', port), { code: 'unavailable', message: new RegExp(`127\\.0\\.0\\.1:${port}: the address is in use`) },
    'the second server on the port is refused');

  const sharedA = make(true);
  const sharedB = make(true);
  t.teardown(() => { sharedA.close(); sharedB.close(); });
  // A port picked by the kernel (port 0) is never shared: take a free one and name it to both.
  const free = net.createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
  const sharedPort = (free.address() as net.AddressInfo).port;
  await new Promise((r) => free.close(r));
  t.equal(await sharedA.listen('127.0.0.1', sharedPort), sharedPort);
  t.equal(await sharedB.listen('127.0.0.1', sharedPort), sharedPort, 'with REUSE_PORT both listen on one port');
});
