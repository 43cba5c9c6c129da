import t from 'tap';
import { pino } from 'pino';
import { runSessionContract } from './session-store.contract.ts';
import { createMemorySessionStore, createSessionStore } from './index.ts';

runSessionContract(t, { name: 'memory', open: async (cfg) => createMemorySessionStore(cfg) });

t.test('sessions - memory: the sweep forgets expired sessions', async (t) => {
  let now = 1_700_000_000_000;
  const s = createMemorySessionStore({ ttlSec: 10 }, { now: () => now, sweepIntervalMs: 10 });
  t.teardown(() => s.close());
  const k = { tenant: 't', platform: 'telegram', externalUserId: '1' };
  await s.touchInbound(k, { roomId: 'tg_1', newSessionId: 's1', platformMessageId: 'm', at: now });
  now += 9_999;
  t.match(await s.get(k), { sessionId: 's1' }, 'alive 1 ms before the ttl');
  now += 1;
  t.equal(await s.get(k), undefined, 'expired at the ttl');
});

t.test('sessions - createSessionStore builds the memory adapter', async (t) => {
  const s = await createSessionStore({ adapter: 'memory', ttlSec: 5 }, pino({ level: 'silent' }));
  t.teardown(() => s.close());
  t.equal(s.kind, 'memory');
  t.equal(s.ttlSec, 5);
});
