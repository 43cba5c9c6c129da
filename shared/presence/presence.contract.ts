import type { Test } from 'tap';
import type { Presence } from './presence.ts';

/**
 * The behaviour every Presence adapter must show, against the port only. Expiry tests wait in
 * real time (ttlSec 1), so a Redis adapter runs the same suite; ids are unique per test.
 */
export interface PresenceContractOptions {
  name: string;
  open: (cfg: { ttlSec: number; typingTimeoutMs: number }) => Promise<Presence>;
}

export function runPresenceContract(t: Test, opts: PresenceContractOptions): void {
  const open = async (t: Test, cfg: { ttlSec?: number; typingTimeoutMs?: number } = {}): Promise<Presence> => {
    const presence = await opts.open({ ttlSec: cfg.ttlSec ?? 300, typingTimeoutMs: cfg.typingTimeoutMs ?? 3000 });
    t.teardown(() => presence.close());
    return presence;
  };

  t.test(`presence - first connection goes online, last disconnect goes offline (${opts.name})`, async (t) => {
    const p = await open(t);
    const tenant = `t${uid()}`;
    const user = `u${uid()}`;
    t.same(await p.connect({ tenant, userId: user, connectionId: 'c1' }), { wentOnline: true }, 'first connection');
    t.same(await p.connect({ tenant, userId: user, connectionId: 'c2' }), { wentOnline: false }, 'second connection');
    t.match(await p.get(tenant, [user]), [{ userId: user, status: 'online', connections: 2 }]);
    t.same(await p.disconnect(tenant, user, 'c1'), { wentOffline: false }, 'one connection left');
    t.match(await p.get(tenant, [user]), [{ status: 'online', connections: 1 }]);
    t.same(await p.disconnect(tenant, user, 'c2'), { wentOffline: true }, 'last connection');
    t.match(await p.get(tenant, [user]), [{ userId: user, status: 'offline', connections: 0 }]);
    t.same(await p.disconnect(tenant, user, 'c2'), { wentOffline: false }, 'a second disconnect is not a transition');
    t.same(await p.connect({ tenant, userId: user, connectionId: 'c3' }), { wentOnline: true }, 'online again');
  });

  t.test(`presence - a connection without heartbeat expires after ttlSec (${opts.name})`, async (t) => {
    const p = await open(t, { ttlSec: 1 });
    const tenant = `t${uid()}`;
    const user = `u${uid()}`;
    const start = Date.now();
    await p.connect({ tenant, userId: user, connectionId: 'c1' });
    t.match(await p.get(tenant, [user]), [{ status: 'online', connections: 1 }]);
    await sleep(1600);
    const [info] = await p.get(tenant, [user]);
    t.match(info, { status: 'offline', connections: 0 }, `expired (${Date.now() - start} ms after connect)`);
    t.same(await p.connect({ tenant, userId: user, connectionId: 'c2' }), { wentOnline: true }, 'a new connection is a transition again');
  });

  t.test(`presence - heartbeat keeps a connection alive (${opts.name})`, async (t) => {
    const p = await open(t, { ttlSec: 1 });
    const tenant = `t${uid()}`;
    const kept = `u${uid()}`;
    const idle = `u${uid()}`;
    await p.connect({ tenant, userId: kept, connectionId: 'k1' });
    await p.connect({ tenant, userId: idle, connectionId: 'i1' });
    const until = Date.now() + 2200;
    while (Date.now() < until) {
      await sleep(200);
      await p.heartbeat(tenant, [{ userId: kept, connectionId: 'k1' }]);
    }
    const [keptInfo, idleInfo] = await p.get(tenant, [kept, idle]);
    t.match(keptInfo, { userId: kept, status: 'online', connections: 1 }, 'heartbeats kept it');
    t.match(idleInfo, { userId: idle, status: 'offline', connections: 0 }, 'the other one expired');
    t.ok(Date.parse(keptInfo!.lastSeen) >= until - 1500, `lastSeen follows heartbeats (${keptInfo!.lastSeen})`);
    t.same(await p.disconnect(tenant, kept, 'k1'), { wentOffline: true });
  });

  t.test(`presence - setStatus and get (${opts.name})`, async (t) => {
    const p = await open(t);
    const tenant = `t${uid()}`;
    const user = `u${uid()}`;
    const stranger = `u${uid()}`;
    const before = Date.now();
    await p.connect({ tenant, userId: user, connectionId: 'c1', device: { type: 'web', platform: 'linux' } });
    const set = await p.setStatus(tenant, user, { status: 'away', customStatus: 'lunch' });
    t.match(set, { userId: user, status: 'away', customStatus: 'lunch', connections: 1, device: { type: 'web', platform: 'linux' } });
    const busy = await p.setStatus(tenant, user, { status: 'busy' });
    t.match(busy, { status: 'busy', customStatus: 'lunch', device: { type: 'web' } }, 'customStatus and device kept');

    const [info, unknown] = await p.get(tenant, [user, stranger]);
    t.match(info, { userId: user, status: 'busy', customStatus: 'lunch', connections: 1 });
    const seen = Date.parse(info!.lastSeen);
    t.ok(seen >= before - 2000 && seen <= Date.now() + 2000, `lastSeen ${info!.lastSeen} is an ISO time of the connect`);
    t.match(unknown, { userId: stranger, status: 'offline', connections: 0 }, 'an unknown user is offline');
    t.same((await p.get(tenant, [stranger, user])).map((i) => i.userId), [stranger, user], 'answers in the order asked');

    await p.disconnect(tenant, user, 'c1');
    t.match(await p.get(tenant, [user]), [{ status: 'offline', connections: 0 }], 'offline without a connection whatever was set');
  });

  t.test(`presence - typing starts, refreshes, stops and expires (${opts.name})`, async (t) => {
    const p = await open(t, { typingTimeoutMs: 1500 });
    const tenant = `t${uid()}`;
    const room = `r${uid()}`;
    const [a, b] = [`u${uid()}`, `u${uid()}`];
    t.equal(await p.startTyping(tenant, room, a), true, 'start begins a typing period');
    t.equal(await p.startTyping(tenant, room, a), false, 'a second start is a refresh');
    t.equal(await p.startTyping(tenant, room, b), true);
    t.same((await p.typingIn(tenant, room)).sort(), [a, b].sort());
    t.equal(await p.stopTyping(tenant, room, a), true, 'stop of a typing user');
    t.equal(await p.stopTyping(tenant, room, a), false, 'stop of a user not typing');
    t.same(await p.typingIn(tenant, room), [b]);

    await sleep(900);
    t.equal(await p.startTyping(tenant, room, b), false, 'refresh before expiry');
    await sleep(900);
    t.same(await p.typingIn(tenant, room), [b], 'still typing 1.8 s after the first start thanks to the refresh');
    await sleep(1200);
    t.same(await p.typingIn(tenant, room), [], 'expired typingTimeoutMs after the refresh');
    t.equal(await p.stopTyping(tenant, room, b), false, 'an expired entry is not typing');
    t.equal(await p.startTyping(tenant, room, b), true, 'typing again after expiry begins a new period');
  });

  t.test(`presence - tenants are isolated (${opts.name})`, async (t) => {
    const p = await open(t);
    const [t1, t2] = [`t${uid()}`, `t${uid()}`];
    const user = `u${uid()}`;
    const room = `r${uid()}`;
    t.same(await p.connect({ tenant: t1, userId: user, connectionId: 'c1' }), { wentOnline: true });
    t.same(await p.connect({ tenant: t2, userId: user, connectionId: 'c1' }), { wentOnline: true }, 'same ids, other tenant: its own transition');
    await p.setStatus(t1, user, { status: 'busy', customStatus: 'in t1' });
    const [in2] = await p.get(t2, [user]);
    t.match(in2, { status: 'online', connections: 1 });
    t.notOk(in2!.customStatus, 'status of the other tenant not visible');
    t.same(await p.disconnect(t2, user, 'c1'), { wentOffline: true });
    t.match(await p.get(t1, [user]), [{ status: 'busy', connections: 1 }], 'the first tenant is untouched');
    await p.startTyping(t1, room, user);
    t.same(await p.typingIn(t2, room), [], 'typing is per tenant');
    t.same(await p.typingIn(t1, room), [user]);
  });

  t.test(`presence - unread counts follow messages and read marks (${opts.name})`, async (t) => {
    const p = await open(t);
    const tenant = `t${uid()}`;
    const [room, other] = [`r${uid()}`, `r${uid()}`];
    const [alice, bob] = [`a${uid()}`, `b${uid()}`];
    await p.markRoomRead(tenant, room, bob);
    t.same([...(await p.unreadCounts(tenant, bob, [room, other]))], [[room, 0], [other, 0]], 'nothing sent yet');
    for (let i = 0; i < 5; i++) await p.noteMessage(tenant, room, alice);
    t.equal((await p.unreadCounts(tenant, bob, [room])).get(room), 5, 'bob missed five');
    t.equal((await p.unreadCounts(tenant, alice, [room])).get(room), 0, 'own messages are never unread');
    await p.noteMessage(tenant, room, bob);
    t.equal((await p.unreadCounts(tenant, bob, [room])).get(room), 0, 'sending reads everything before it');
    await p.noteMessage(tenant, room, alice);
    await p.noteMessage(tenant, other, alice);
    t.same([...(await p.unreadCounts(tenant, bob, [room, other]))], [[room, 1], [other, 1]], 'a room never read counts every message');
    for (let i = 0; i < 3; i++) await p.noteMessage(tenant, room, alice);
    await p.markRoomRead(tenant, room, bob, 2);
    t.equal((await p.unreadCounts(tenant, bob, [room])).get(room), 2, 'reading an older message leaves the newer ones unread');
    await p.markRoomRead(tenant, room, bob, 3);
    t.equal((await p.unreadCounts(tenant, bob, [room])).get(room), 2, 'read positions never move back');
    await p.markRoomRead(tenant, room, bob);
    t.equal((await p.unreadCounts(tenant, bob, [room])).get(room), 0, 'mark read resets');
    t.equal((await p.unreadCounts(`x${tenant}`, bob, [room])).get(room), 0, 'tenants are separate');
    t.same([...(await p.unreadCounts(tenant, bob, []))], [], 'no rooms, no counts');
  });
}

function uid(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
