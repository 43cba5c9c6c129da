import t from 'tap';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { startRedisServer } from '../../test/support/redis-server.ts';
import { runSessionContract } from './session-store.contract.ts';
import { createRedisSessionStore, createSessionStore } from './index.ts';

const silent = pino({ level: 'silent' });
// generous: a busy CI machine must not turn a slow reply into a failure
const COMMAND_TIMEOUT_MS = 5000;

const server = await startRedisServer();
t.teardown(() => server.stop());

runSessionContract(t, {
  name: 'redis',
  open: (cfg) => createRedisSessionStore({ url: server.url, ...cfg }, silent, { keyPrefix: 'contract:', commandTimeoutMs: COMMAND_TIMEOUT_MS }),
});

t.test('sessions - redis: one hash per session, expiring SESSION_TTL after the last touch', async (t) => {
  const prefix = `ttl${Date.now().toString(36)}:`;
  const s = await createRedisSessionStore({ url: server.url, ttlSec: 60 }, silent, { keyPrefix: prefix, commandTimeoutMs: COMMAND_TIMEOUT_MS });
  t.teardown(() => s.close());
  const raw = new Redis(server.url, { maxRetriesPerRequest: 1 });
  t.teardown(() => raw.disconnect());
  await s.touchInbound({ tenant: 'acme', platform: 'whatsapp', externalUserId: '49:1' }, { roomId: 'wa_491', newSessionId: 's1', platformMessageId: 'm1', at: Date.now() });
  const keys = await raw.keys(`${prefix}*`);
  t.same(keys, [`${prefix}cs:{acme:whatsapp:49%3A1}`], 'ids escaped inside one hash tag');
  const ttl = await raw.pttl(keys[0]!);
  t.ok(ttl > 55_000 && ttl <= 60_000, `expires in ${ttl} ms`);
  await s.mergeContext({ tenant: 'acme', platform: 'whatsapp', externalUserId: '49:1' }, { a: 1 });
  t.ok(await raw.pttl(keys[0]!) <= ttl, 'a context change does not extend it');
});

t.test('sessions - redis: a Redis that is gone fails calls with unavailable within the command timeout', async (t) => {
  const s2 = await startRedisServer();
  t.teardown(() => s2.stop());
  const s = await createRedisSessionStore({ url: s2.url, ttlSec: 60 }, silent, { commandTimeoutMs: 300, connectWaitMs: 500 });
  t.teardown(() => s.close());
  const k = { tenant: 't', platform: 'telegram', externalUserId: '1' };
  await s.touchInbound(k, { roomId: 'tg_1', newSessionId: 's1', platformMessageId: 'm', at: Date.now() });
  await s2.kill();
  await t.rejects(s.touchInbound(k, { roomId: 'tg_1', newSessionId: 's2', platformMessageId: 'n', at: Date.now() }), { code: 'unavailable' });
  await t.rejects(s.get(k), { code: 'unavailable' });
});

t.test('sessions - createSessionStore builds the redis adapter', async (t) => {
  const s = await createSessionStore({ adapter: 'redis', url: server.url, ttlSec: 5 }, silent);
  t.teardown(() => s.close());
  t.equal(s.kind, 'redis');
});
