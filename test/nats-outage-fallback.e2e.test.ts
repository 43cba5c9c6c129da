import t from 'tap';
import WebSocket from 'ws';
import { startNatsServer } from './support/nats-server.ts';
import { startChatProcess, removeDir } from './support/chat-process.ts';
import { devToken } from './support/tokens.ts';
import { eventually } from './support/rest.ts';
import { ChatClient, type ChatClientOptions, type FrameOf } from '../shared/client/index.ts';

/**
 * The gateway's one live-gap repair serves every transport: NATS dies for 2.5 s under a steady send
 * load while a WebSocket, an SSE and a long-poll client are in the room, and each of them ends up
 * with every message exactly once (the sender retries with the same clientMsgId).
 */
const nats = await startNatsServer();
t.teardown(() => nats.destroy());
const srv = await startChatProcess({ env: { NATS_URL: nats.url, RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000', PERSIST_INTERVAL_MS: '20' } });
const clients: ChatClient[] = [];
t.teardown(async () => { for (const c of clients) c.close(); await srv.kill(); removeDir(srv.dataDir); });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function client(user: string, extra: Partial<ChatClientOptions> = {}) {
  const c = new ChatClient({ url: srv.http, token: await devToken(user), WebSocket: WebSocket as never, ...extra });
  clients.push(c);
  await c.connect();
  return c;
}

t.test('nats outage - NATS restart with SSE and long-poll clients connected: every message exactly once', async (t) => {
  const alice = await client('alice');
  const room = await alice.rest.createRoom({ name: 'cut', type: 'public' });
  const bob = await client('bob', { transports: ['sse'] });
  const carol = await client('carol', { transports: ['poll'] });
  const dan = await client('dan');
  for (const c of [bob, carol, dan]) await c.rest.joinRoom(room.roomId);
  await eventually(async () => [bob, carol, dan].every((c) => c.rooms.includes(room.roomId)), 10_000);
  const got = new Map<ChatClient, string[]>();
  for (const c of [bob, carol, dan]) {
    const seen: string[] = [];
    c.on('message', (f: FrameOf<'new_message'>) => { if (f.roomId === room.roomId) seen.push(f.message.content); });
    got.set(c, seen);
  }
  const N = 120;
  let retries = 0;
  const sending = (async () => {
    for (let i = 0; i < N; i++) {
      const clientMsgId = `cut-${i}`;
      for (;;) {
        try { await alice.send(room.roomId, `m${i}`, { clientMsgId }); break; } catch { retries++; await sleep(200); }
      }
      await sleep(40);
    }
  })();
  await sleep(1500);
  await nats.kill();
  await sleep(2500);
  await nats.restart();
  await sending;
  const want = Array.from({ length: N }, (_, i) => `m${i}`);
  await eventually(async () => [bob, carol, dan].every((c) => want.every((m) => got.get(c)!.includes(m))), 30_000);
  await sleep(500);
  for (const [c, name] of [[bob, 'sse'], [carol, 'poll'], [dan, 'ws']] as const) {
    const seen = got.get(c)!;
    const missing = want.filter((m) => !seen.includes(m));
    const repeated = want.filter((m) => seen.filter((s) => s === m).length > 1);
    t.same({ missing, repeated }, { missing: [], repeated: [] }, `${name}: every message once (${seen.length} seen, transport ${c.transportKind})`);
  }
  t.comment(`retries ${retries}`);
  t.ok(srv.output.some((l) => l.includes('live gap repaired from the stream')), 'the gateway repaired the gap');
  t.comment(srv.output.filter((l) => l.includes('live gap')).join('\n'));
});
