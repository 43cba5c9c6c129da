import t from 'tap';
import WebSocket from 'ws';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsServer, freePort } from './support/nats-server.ts';
import { startChatCluster } from './support/chat-cluster.ts';
import { eventually, restClient } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { DEPLOY, hasTool } from './support/deploy-files.ts';
import { ChatClient, type ChatClientOptions } from '../shared/client/index.ts';

/**
 * deploy/compose/nginx.conf as it is (its upstreams pointed at local processes instead of the
 * compose service names) in front of a distributed deployment: 2 gateways, a persister and an
 * api on a private NATS. One origin serves the web page, REST, WebSockets, SSE and long-polls:
 * the SDK over each transport, through nginx only, sends and receives. Needs nginx (Debian's
 * nginx-light); without it the test skips.
 */
if (!hasTool('nginx', ['-v'])) {
  t.test('proxy - compose\'s nginx.conf in front of the tiers', { skip: 'nginx not found (apt-get install nginx-light)' }, async () => undefined);
} else {
  await run();
}

async function run(): Promise<void> {
  const nats = await startNatsServer();
  t.teardown(() => nats.destroy());
  const cluster = await startChatCluster({ natsUrl: nats.url, gateways: 2, persisters: 1, env: { RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000' } });
  t.teardown(() => cluster.stop());

  const dir = mkdtempSync(join(tmpdir(), 'chat-nginx-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const upstreams: Record<string, number> = {
    'gateway-1': cluster.gateways[0]!.port, 'gateway-2': cluster.gateways[1]!.port, api: cluster.api.port,
  };
  const conf = readFileSync(join(DEPLOY, 'compose/nginx.conf'), 'utf8')
    .replace(/server ([a-z0-9-]+):8080/g, (_m, name: string) => `server 127.0.0.1:${upstreams[name]}`)
    .replace('listen 8080;', `listen 127.0.0.1:${port};`)
    .replaceAll('/tmp/', `${dir}/`);
  if (/server [a-z][a-z0-9-]*:8080/.test(conf)) throw new Error(`an upstream of nginx.conf was not pointed at a local process:\n${conf}`);
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const nginxLog: string[] = [];
  nginx.stderr!.on('data', (d: Buffer) => nginxLog.push(d.toString()));
  const nginxExit = new Promise((r) => nginx.once('exit', r));
  t.teardown(async () => { nginx.kill('SIGTERM'); await nginxExit; });
  const origin = `http://127.0.0.1:${port}`;
  await eventually(async () => (await fetch(`${origin}/health`).catch(() => undefined))?.ok, 20_000, 100)
    .catch((err) => { throw new Error(`nginx did not start: ${nginxLog.join('')}`, { cause: err }); });

  const clients: ChatClient[] = [];
  t.teardown(() => { for (const c of clients) c.close(); });
  const client = async (user: string, extra: Partial<ChatClientOptions>) => {
    const c = new ChatClient({ url: origin, token: await devToken(user), WebSocket: WebSocket as never, fallbackAfterFailures: 1, ...extra });
    clients.push(c);
    await c.connect();
    return c;
  };

  t.test('proxy - the web page and its assets come from the api through the one origin', async (t) => {
    const page = await fetch(`${origin}/`);
    t.equal(page.status, 200);
    const html = await page.text();
    const asset = html.match(/src="(\/assets\/[^"]+\.js)"/)?.[1];
    t.ok(asset, 'the page loads its script from /assets/');
    const js = await fetch(origin + asset);
    t.equal(js.status, 200, `${asset} is served`);
    t.match(js.headers.get('content-type') ?? '', /javascript/);
  });

  t.test('proxy - /metrics is not served to the public origin', async (t) => {
    t.equal((await fetch(`${origin}/metrics`)).status, 404);
  });

  t.test('proxy - a WebSocket, an SSE and a long-poll client, all through nginx, get a message sent over the WebSocket', async (t) => {
    const roomId = `proxy_${Date.now().toString(36)}`;
    const rest = restClient(origin, await devToken('ann'));
    t.equal((await rest('POST', '/v1/chat/rooms', { roomId, name: 'Proxy', type: 'public' })).status, 201, 'room created over REST through nginx');
    const ann = await client('ann', { transports: ['websocket'] });
    const ben = await client('ben', { transports: ['sse'] });
    const cat = await client('cat', { transports: ['poll'], pollHoldSeconds: 5 });
    await ben.join(roomId);
    await cat.join(roomId);
    const got = (c: ChatClient) => new Promise<string>((resolve) => c.on('message', (f) => { if (f.roomId === roomId) resolve(f.message.content); }));
    const arrivals = [got(ann), got(ben), got(cat)];
    const ack = await ann.send(roomId, 'through one origin');
    t.ok(ack.messageId, 'acknowledged');
    t.same(await Promise.all(arrivals), ['through one origin', 'through one origin', 'through one origin'], 'WebSocket, SSE and long-poll clients each got it');
    const history = await rest('GET', `/v1/chat/rooms/${roomId}/messages?limit=5`);
    const messages = JSON.stringify(history.body.data);
    t.match(messages, /through one origin/, 'and REST history has it');
  });
}
