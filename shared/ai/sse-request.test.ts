import t, { type Test } from 'tap';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AiProviderError } from './ai.ts';
import { postSse, retryAfter } from './sse-request.ts';

/** A server whose handler writes raw SSE; counts the TCP connections it accepted. */
async function sseServer(t: Test, handle: Parameters<typeof createServer>[1]): Promise<{ url: string; connections: () => number }> {
  const server: Server = createServer(handle);
  let connections = 0;
  server.on('connection', () => { connections++; });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/sse`, connections: () => connections };
}

const collect = (url: string, signal = AbortSignal.timeout(5000)) => {
  const events: string[] = [];
  let n = 0;
  return postSse(url, {}, { q: 1 }, signal, (d) => { events.push(d); n++; }, () => n).then(() => events, (err: unknown) => { throw Object.assign(err as object, { events }); });
};

t.test('events arrive in order, a multi-byte character split across writes included', async (t) => {
  const { url } = await sseServer(t, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const euro = Buffer.from('data: 1€\n\n');
    res.write(euro.subarray(0, 8)); // cuts the three bytes of € after its first
    setTimeout(() => { res.write(euro.subarray(8)); res.end('data: 2\n\n'); }, 20);
  });
  t.same(await collect(url), ['1€', '2']);
});

t.test('the connection is kept for the next answer', async (t) => {
  const srv = await sseServer(t, (req, res) => {
    req.resume();
    req.on('end', () => { res.writeHead(200, { 'content-type': 'text/event-stream' }); res.end('data: x\n\n'); });
  });
  await collect(srv.url);
  await collect(srv.url);
  t.equal(srv.connections(), 1, 'one TCP connection for two answers');
});

t.test('a connection cut mid-answer is a network failure that knows what was delivered', async (t) => {
  const { url } = await sseServer(t, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: half\n\n');
    setTimeout(() => res.socket?.destroy(), 20);
  });
  const err = await collect(url).then(() => undefined, (e: unknown) => e) as AiProviderError & { events: string[] };
  t.ok(err instanceof AiProviderError);
  t.equal(err.kind, 'network');
  t.equal(err.deltas, 1);
  t.same(err.events, ['half']);
});

t.test('an answer that stops coming is cut off by the signal as a timeout', async (t) => {
  const { url } = await sseServer(t, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\n\n');
  });
  const err = await collect(url, AbortSignal.timeout(200)).then(() => undefined, (e: unknown) => e) as AiProviderError;
  t.equal(err.kind, 'timeout');
  t.equal(err.deltas, 1);
});

t.test('a 429 carries its Retry-After; other statuses are http failures', async (t) => {
  let status = 429;
  const { url } = await sseServer(t, (req, res) => {
    req.resume();
    res.writeHead(status, status === 429 ? { 'retry-after-ms': '1500' } : {});
    res.end('{"error":{}}');
  });
  let err = await collect(url).then(() => undefined, (e: unknown) => e) as AiProviderError;
  t.equal(err.kind, 'rate_limited');
  t.equal(err.options.retryAfterMs, 1500);
  status = 503;
  err = await collect(url).then(() => undefined, (e: unknown) => e) as AiProviderError;
  t.equal(err.kind, 'http');
  t.equal(err.options.status, 503);
});

t.test('an unreachable provider is a network failure', async (t) => {
  const { url } = await sseServer(t, () => {});
  const dead = url.replace(/:\d+\//, ':1/');
  const err = await collect(dead).then(() => undefined, (e: unknown) => e) as AiProviderError;
  t.equal(err.kind, 'network');
  t.equal(err.deltas, 0);
});

t.test('retryAfter reads a Headers-like object', async (t) => {
  t.equal(retryAfter({ get: (n: string) => (n === 'retry-after' ? '2' : null) }), 2000);
  t.equal(retryAfter({ get: () => null }), undefined);
});
