import t, { type Test } from 'tap';
import { pino } from 'pino';
import { runPresenceContract } from './presence.contract.ts';
import { createMemoryPresence, createPresence, type MemoryPresenceOptions, type Presence } from './index.ts';

runPresenceContract(t, { name: 'memory', open: async (cfg) => createMemoryPresence(cfg) });

function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => { now += ms; } };
}

function openMemory(t: Test, opts: MemoryPresenceOptions, cfg = { ttlSec: 10, typingTimeoutMs: 3000 }): Presence {
  const p = createMemoryPresence(cfg, opts);
  t.teardown(() => p.close());
  return p;
}

t.test('presence - memory: a connection lives exactly ttlSec after its last connect or heartbeat', async (t) => {
  const clock = fakeClock();
  const p = openMemory(t, { now: clock.now });
  await p.connect({ tenant: 't', userId: 'u', connectionId: 'c1' });
  clock.advance(9999);
  t.match(await p.get('t', ['u']), [{ status: 'online', connections: 1 }], 'alive 1 ms before ttl');
  await p.heartbeat('t', [{ userId: 'u', connectionId: 'c1' }]);
  clock.advance(9999);
  t.match(await p.get('t', ['u']), [{ status: 'online', lastSeen: new Date(clock.now() - 9999).toISOString() }], 'the heartbeat restarted the ttl');
  clock.advance(1);
  t.match(await p.get('t', ['u']), [{ status: 'offline', connections: 0 }], 'expired at ttl');
});

t.test('presence - memory: expired connections are neither revived by heartbeat nor reported offline twice', async (t) => {
  const clock = fakeClock();
  const p = openMemory(t, { now: clock.now });
  await p.connect({ tenant: 't', userId: 'u', connectionId: 'c1' });
  clock.advance(10_000);
  await p.heartbeat('t', [{ userId: 'u', connectionId: 'c1' }]);
  t.match(await p.get('t', ['u']), [{ status: 'offline', connections: 0 }], 'a heartbeat after expiry does not bring it back');
  t.same(await p.disconnect('t', 'u', 'c1'), { wentOffline: false }, 'the transition happened at expiry');
  t.same(await p.connect({ tenant: 't', userId: 'u', connectionId: 'c1' }), { wentOnline: true });
});

t.test('presence - memory: the set status survives a reconnect; an empty customStatus clears it', async (t) => {
  const clock = fakeClock();
  const p = openMemory(t, { now: clock.now });
  await p.connect({ tenant: 't', userId: 'u', connectionId: 'c1' });
  await p.setStatus('t', 'u', { status: 'busy', customStatus: 'focus' });
  await p.disconnect('t', 'u', 'c1');
  await p.connect({ tenant: 't', userId: 'u', connectionId: 'c2', device: { type: 'mobile' } });
  t.match(await p.get('t', ['u']), [{ status: 'busy', customStatus: 'focus', device: { type: 'mobile' } }]);
  const cleared = await p.setStatus('t', 'u', { status: 'online', customStatus: '' });
  t.equal(cleared.customStatus, undefined);
  t.equal(cleared.status, 'online');
});

t.test('presence - memory: the sweep forgets offline users and expired typing', async (t) => {
  const clock = fakeClock();
  const p = openMemory(t, { now: clock.now, sweepIntervalMs: 10, offlineRetentionMs: 60_000 });
  await p.connect({ tenant: 't', userId: 'gone', connectionId: 'c1' });
  await p.setStatus('t', 'gone', { status: 'busy', customStatus: 'x' });
  await p.disconnect('t', 'gone', 'c1');
  await p.connect({ tenant: 't', userId: 'stays', connectionId: 'c1' });
  clock.advance(30_000);
  await new Promise((r) => setTimeout(r, 50));
  t.match(await p.get('t', ['gone']), [{ customStatus: 'x' }], 'kept within the retention');
  clock.advance(31_000);
  await p.heartbeat('t', [{ userId: 'stays', connectionId: 'c1' }]);
  await new Promise((r) => setTimeout(r, 50));
  const [gone] = await p.get('t', ['gone']);
  t.equal(gone!.customStatus, undefined, 'forgotten after the retention');
  t.equal(gone!.lastSeen, new Date(0).toISOString(), 'now reported as never seen');
});

t.test('presence - createPresence builds the memory adapter', async (t) => {
  const log = pino({ level: 'silent' });
  const p = await createPresence({ adapter: 'memory', ttlSec: 5, typingTimeoutMs: 1000 }, log);
  t.teardown(() => p.close());
  t.equal(p.kind, 'memory');
  t.same(await p.connect({ tenant: 't', userId: 'u', connectionId: 'c' }), { wentOnline: true });
});
