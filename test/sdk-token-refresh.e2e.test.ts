import t from 'tap';
import WebSocket from 'ws';
import { ChatClient } from '../shared/client/index.ts';
import { startGatewayHarness, until } from './support/gateway-harness.ts';

/** Issue 12, finding 2: with a token function, the SDK keeps an open WebSocket past its token's exp by sending `auth`. */
t.test('client sdk - a token function refreshes the open socket before exp; the socket stays open', async (t) => {
  const h = await startGatewayHarness(t);
  let asked = 0;
  const chat = new ChatClient({
    url: h.base, WebSocket: WebSocket as never,
    // 3 s tokens: each must be replaced within its life, over the same socket
    token: async () => { asked++; return h.token('ann', 3); },
  });
  t.teardown(() => chat.close());
  const disconnects: unknown[] = [];
  chat.on('disconnected', (d) => disconnects.push(d));
  const welcome = await chat.connect();
  t.ok(welcome.tokenExpiresAt, `the welcome says when the token expires (${welcome.tokenExpiresAt})`);
  const firstExpiry = Date.parse(welcome.tokenExpiresAt!);
  // well past the first token's exp, and the server's check a second after it
  await until(() => Date.now() > firstExpiry + 4000, 15_000);
  t.ok(asked >= 3, `the token function was asked again before each expiry (${asked} times)`);
  t.same(disconnects, [], 'the socket was never closed');
  t.equal(chat.state, 'open');
});
