// Talks to a chat-svc listening at argv[2] (http://host:port) as a client would: the page at /,
// a room over REST, then a WebSocket that joins it, sends and receives its own message, and the
// history that has it. Exits 0 when all of it worked, 1 naming what did not.
// Usage: node deploy/image/smoke-client.mjs http://127.0.0.1:8080 TOKEN
import WebSocket from 'ws';

const [base, token] = process.argv.slice(2);
if (!base || !token) {
  console.error('usage: smoke-client.mjs BASE_URL TOKEN');
  process.exit(2);
}
const auth = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
const roomId = `smoke_${Date.now().toString(36)}`;

function fail(what) {
  console.error(`smoke: ${what}`);
  process.exit(1);
}

async function rest(method, path, body) {
  const res = await fetch(base + path, { method, headers: auth, body: body && JSON.stringify(body) });
  const json = await res.json().catch(() => undefined);
  if (!res.ok || !json?.success) fail(`${method} ${path} -> ${res.status} ${JSON.stringify(json)}`);
  return json.data;
}

const page = await fetch(base + '/');
const html = await page.text();
if (!page.ok || !/<script[^>]+src="\/assets\//.test(html)) fail(`GET / is not the built web page (${page.status})`);
console.log('smoke: GET / serves the built web page');

await rest('POST', '/v1/chat/rooms', { roomId, name: 'Smoke', type: 'public' });
console.log(`smoke: created room ${roomId} over REST`);

const content = `hello from the image ${Math.random().toString(36).slice(2)}`;
const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/chat?token=${encodeURIComponent(token)}`);
const timer = setTimeout(() => fail('no new_message within 15 s'), 15_000);
ws.on('error', (err) => fail(`WebSocket: ${err.message}`));
ws.on('message', (data) => {
  const frame = JSON.parse(String(data));
  if (frame.type === 'welcome') {
    console.log(`smoke: WebSocket welcome for ${frame.userId}`);
    ws.send(JSON.stringify({ type: 'join_room', roomId, ref: 'j' }));
    ws.send(JSON.stringify({ type: 'send_message', roomId, content, messageType: 'text', ref: 's' }));
  } else if (frame.type === 'error') {
    if (frame.ref !== 'j') fail(`error frame ${JSON.stringify(frame)}`);
  } else if (frame.type === 'new_message' && frame.message?.content === content) {
    console.log(`smoke: sent and received ${frame.message.messageId} over the WebSocket`);
    clearTimeout(timer);
    ws.close(1000);
  }
});
await new Promise((resolve) => ws.once('close', resolve));

// the persister writes in batches: the message reaches history shortly after its ack
for (let i = 0; ; i++) {
  const history = await rest('GET', `/v1/chat/rooms/${roomId}/messages?limit=10`);
  const messages = Array.isArray(history) ? history : history.messages ?? history.items ?? [];
  if (messages.some((m) => m.content === content)) break;
  if (i === 50) fail(`the message is not in the history: ${JSON.stringify(history).slice(0, 300)}`);
  await new Promise((r) => setTimeout(r, 200));
}
console.log('smoke: the message is in the REST history');
