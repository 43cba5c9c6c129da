import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { AddressGuard } from './address-guard.ts';
import { createOutbound, OutboundError } from './outbound-http.ts';

async function server(t: import('tap').Test, handler: Parameters<typeof createServer>[1]): Promise<number> {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }));
  return (s.address() as AddressInfo).port;
}

t.test('address guard - refuses loopback, private, link-local, mapped and reserved addresses unless allowed', async (t) => {
  const guard = new AddressGuard([]);
  for (const ip of ['127.0.0.1', '10.0.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:169.254.169.254']) {
    t.notOk(guard.allows(ip), `${ip} refused`);
  }
  for (const ip of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '172.32.0.1']) t.ok(guard.allows(ip), `${ip} allowed`);
  const loopback = new AddressGuard(['127.0.0.0/8']);
  t.ok(loopback.allows('127.0.0.1'), 'allowed by config');
  t.notOk(loopback.allows('169.254.169.254'), 'only what config names');
  await t.rejects(guard.checkUrl('http://localhost:1/', 'url'), { code: 'bad_request', message: /points at/ }, 'a name is judged by what it resolves to');
});

t.test('outbound - connects only where the guard allows, checks the address a name resolves to, follows no redirect', async (t) => {
  let hits = 0;
  const port = await server(t, (req, res) => {
    hits++;
    if (req.url === '/moved') res.writeHead(302, { location: 'http://169.254.169.254/' }).end();
    else req.on('data', () => undefined).on('end', () => res.writeHead(200).end('fine'));
  });
  const body = Buffer.from('{}');
  const refused = createOutbound(new AddressGuard([]));
  await t.rejects(refused({ url: `http://127.0.0.1:${port}/`, headers: {}, body, timeoutMs: 2000 }), OutboundError, 'an IP literal');
  await t.rejects(refused({ url: `http://localhost:${port}/`, headers: {}, body, timeoutMs: 2000 }), { message: /may not reach/ }, 'a name resolving to loopback');
  t.equal(hits, 0, 'nothing reached the server');
  const allowed = createOutbound(new AddressGuard(['127.0.0.0/8', '::1/128']));
  t.match(await allowed({ url: `http://localhost:${port}/`, headers: { 'content-length': '99' }, body, timeoutMs: 2000 }), { status: 200, body: 'fine' });
  t.match(await allowed({ url: `http://127.0.0.1:${port}/moved`, headers: {}, body, timeoutMs: 2000 }), { status: 302 }, 'a redirect is an answer, not followed');
  t.equal(hits, 2);
});

t.test('outbound - a server that does not answer in time is an OutboundError', async (t) => {
  const port = await server(t, () => undefined);
  const post = createOutbound(new AddressGuard(['127.0.0.0/8']));
  await t.rejects(post({ url: `http://127.0.0.1:${port}/`, headers: {}, body: Buffer.from('x'), timeoutMs: 200 }), { name: 'OutboundError', message: /no response within 200 ms/ });
});
