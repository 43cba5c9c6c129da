import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startAll } from '../bin/all.ts';
import type { MemoryBus } from '../shared/bus/index.ts';
import { silentLogger } from '../shared/telemetry/index.ts';
import { TestClient } from './support/ws-client.ts';
import { restClient } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * Issue 12, finding 5, scaled down: 100 users each posting 20 messages with large metadata grew
 * RSS by 150 MB that stayed. Now metadata over MAX_METADATA_BYTES is refused (too_large) on frames
 * and REST, and the in-process stream holds at most MEMORY_STREAM_MAX_MB of events: the test reads
 * the stream's own byte accounting (RSS is too noisy on a shared machine to assert on).
 */
const BOUND_MB = 2;
const METADATA_LIMIT = 8 * 1024;
const dataDir = mkdtempSync(join(tmpdir(), 'chat-bound-'));
const all = await startAll({
  NODE_ENV: 'test', HOST: '127.0.0.1', PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'silent',
  MEMORY_STREAM_MAX_MB: String(BOUND_MB), MAX_METADATA_BYTES: String(METADATA_LIMIT),
  RATE_LIMIT_PER_SECOND: '100000', RATE_LIMIT_BURST: '100000', PERSIST_INTERVAL_MS: '20', DRAIN_GRACE_MS: '0',
}, silentLogger());
t.teardown(async () => {
  await all.stop();
  rmSync(dataDir, { recursive: true, force: true });
});
const http = `http://127.0.0.1:${all.port}`;
const bus = all.adapters.bus as MemoryBus;

/** `size` bytes of metadata as JSON. */
function metadata(size: number): Record<string, unknown> {
  return { blob: 'x'.repeat(size - '{"blob":""}'.length) };
}

t.test('memory bound - metadata over MAX_METADATA_BYTES is refused with too_large on frames and REST; at the limit it is accepted', async (t) => {
  const token = await devToken('meta-owner');
  const rest = restClient(http, token);
  const room = (await rest('POST', '/v1/chat/rooms', { name: 'metadata', type: 'public' })).body.data.roomId as string;
  const big = metadata(60 * 1024);

  const overRest = await rest('POST', `/v1/chat/rooms/${room}/messages`, { content: 'big', metadata: big });
  t.equal(overRest.status, 413, 'REST: 413');
  t.equal(overRest.body.error?.code, 'too_large', 'REST: too_large');
  const atLimit = await rest('POST', `/v1/chat/rooms/${room}/messages`, { content: 'fits', metadata: metadata(METADATA_LIMIT) });
  t.equal(atLimit.status, 201, 'metadata of exactly the limit is accepted');
  const multiByte = await rest('POST', `/v1/chat/rooms/${room}/messages`, { content: 'wide', metadata: { s: 'é'.repeat(METADATA_LIMIT / 2) } });
  t.equal(multiByte.body.error?.code, 'too_large', 'counted in UTF-8 bytes, not characters');

  for (const format of ['json', 'msgpack'] as const) {
    const c = await TestClient.connect(`ws://127.0.0.1:${all.port}/chat`, { token, format });
    t.teardown(() => c.close());
    await c.next((f) => f.type === 'welcome');
    await c.request({ type: 'join_room', roomId: room });
    const reply = await c.request({ type: 'send_message', roomId: room, content: 'big', metadata: big, clientMsgId: `big-${format}` });
    t.match(reply, { type: 'error', code: 'too_large' }, `${format} frame: too_large`);
    const after = await c.request({ type: 'send_message', roomId: room, content: 'small', metadata: { ok: true } });
    t.equal(after.type, 'ack', `${format}: the socket goes on`);
  }
  const history = await rest('GET', `/v1/chat/rooms/${room}/messages?limit=50`);
  t.notOk((history.body.data.messages as Array<{ content: string }>).some((m) => m.content === 'big'), 'nothing oversize was stored');
});

t.test('memory bound - 100 users x 20 messages with metadata at the limit never hold more than MEMORY_STREAM_MAX_MB in the stream', async (t) => {
  const users = Array.from({ length: 100 }, (_, i) => `bound-u${i}`);
  const tokens = await Promise.all(users.map((u) => devToken(u)));
  const owner = restClient(http, tokens[0]);
  const rooms = await Promise.all(Array.from({ length: 10 }, async (_, i) =>
    (await owner('POST', '/v1/chat/rooms', { name: `bound ${i}`, type: 'public' })).body.data.roomId as string));
  await Promise.all(users.map((_, i) => i === 0 ? undefined : Promise.all(rooms.map((r) => restClient(http, tokens[i])('POST', `/v1/chat/rooms/${r}/join`)))));

  const meta = metadata(METADATA_LIMIT - 64);
  let peak = 0;
  let acked = 0;
  let refused = 0;
  await Promise.all(users.map(async (_, i) => {
    const rest = restClient(http, tokens[i]);
    for (let m = 0; m < 20; m++) {
      for (;;) {
        const res = await rest('POST', `/v1/chat/rooms/${rooms[i % rooms.length]}/messages`, { content: `m${m}`, metadata: meta, clientMsgId: `${i}-${m}` });
        peak = Math.max(peak, bus.buffered().bytes);
        if (res.status === 201) { acked++; break; }
        if (res.status !== 503 || res.body.error?.code !== 'unavailable') throw new Error(`send: ${res.status} ${JSON.stringify(res.body)}`);
        refused++; // the persister is behind: retry, as a client does on a retryable code
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }));
  t.equal(acked, 2000, 'every message was acked (retrying the unavailable ones)');
  const bound = BOUND_MB * 1024 * 1024;
  t.ok(peak <= bound, `the stream never held more than ${bound} bytes: peak ${peak} (${2000 * METADATA_LIMIT} bytes of metadata were sent; ${refused} sends waited)`);
  t.ok(peak > bound / 2, 'and the load did reach the bound (so the bound, not the load, kept it there)');
  t.ok(bus.buffered().bytes <= bound);
  const page = await owner('GET', `/v1/chat/rooms/${rooms[0]}/messages?limit=100`);
  t.equal(page.body.data.messages.length, 100, 'history is whole: dropped events were already in the store');
});
