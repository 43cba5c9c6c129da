import type { Test } from 'tap';
import { SESSION_CONTEXT_MAX_BYTES, type SessionKey, type SessionStore } from './session-store.ts';

/**
 * The behaviour every SessionStore adapter must show, against the port only. Expiry is waited for
 * in real time (ttlSec 1), so the Redis adapter runs the same suite; keys are unique per test.
 */
export interface SessionContractOptions {
  name: string;
  open: (cfg: { ttlSec: number }) => Promise<SessionStore>;
}

export function runSessionContract(t: Test, opts: SessionContractOptions): void {
  const open = async (t: Test, ttlSec = 300): Promise<SessionStore> => {
    const s = await opts.open({ ttlSec });
    t.teardown(() => s.close());
    return s;
  };
  const key = (over: Partial<SessionKey> = {}): SessionKey => ({ tenant: `t${uid()}`, platform: 'whatsapp', externalUserId: '4915550001', ...over });
  const inbound = (id: string, at = Date.now(), extra = {}) => ({ roomId: 'wa_4915550001', newSessionId: `s-${id}`, platformMessageId: id, at, ...extra });

  t.test(`sessions - the first inbound message starts a session, later ones count in it (${opts.name})`, async (t) => {
    const s = await open(t);
    const k = key();
    t.equal(await s.get(k), undefined, 'none before');
    const at = Date.now();
    const first = await s.touchInbound(k, inbound('m1', at, { context: { lastButton: { id: 'yes', title: 'Yes' } } }));
    t.equal(first.started, true);
    t.match(first.session, {
      sessionId: 's-m1', platform: 'whatsapp', externalUserId: '4915550001', roomId: 'wa_4915550001', inbound: 1, outbound: 0,
      startedAt: new Date(at).toISOString(), lastActivityAt: new Date(at).toISOString(), expiresAt: new Date(at + 300_000).toISOString(),
    });
    t.same(first.session.context, { lastInboundMessageId: 'm1', lastButton: { id: 'yes', title: 'Yes' } });
    const second = await s.touchInbound(k, inbound('m2', at + 5));
    t.equal(second.started, false);
    t.match(second.session, { sessionId: 's-m1', inbound: 2, lastActivityAt: new Date(at + 5).toISOString() }, 'the same session, its id kept');
    t.same(second.session.context, { lastInboundMessageId: 'm2', lastButton: { id: 'yes', title: 'Yes' } });
    t.same(await s.get(k), second.session, 'get reads what the touch answered');
  });

  t.test(`sessions - a message delivered again is not counted twice (${opts.name})`, async (t) => {
    const s = await open(t);
    const k = key();
    await s.touchInbound(k, inbound('m1'));
    const again = await s.touchInbound(k, inbound('m1'));
    t.match(again, { started: false, session: { inbound: 1 } });
  });

  t.test(`sessions - replies count in a live session and never start one (${opts.name})`, async (t) => {
    const s = await open(t);
    const k = key();
    t.equal(await s.touchOutbound(k, Date.now()), undefined, 'no session: nothing started');
    t.equal(await s.get(k), undefined);
    await s.touchInbound(k, inbound('m1'));
    const at = Date.now() + 10;
    t.match(await s.touchOutbound(k, at), { inbound: 1, outbound: 1, lastActivityAt: new Date(at).toISOString() });
    t.match(await s.touchOutbound(k, at), { outbound: 2 });
  });

  t.test(`sessions - tenants, platforms and people have their own sessions (${opts.name})`, async (t) => {
    const s = await open(t);
    const k = key({ externalUserId: 'u:1' });
    await s.touchInbound(k, inbound('a'));
    await s.mergeContext(k, { secret: 'acme only' });
    for (const other of [{ ...k, tenant: `${k.tenant}x` }, { ...k, platform: 'telegram' }, { ...k, externalUserId: 'u:2' },
      { ...k, tenant: `${k.tenant}:u`, externalUserId: '1' }, { ...k, tenant: `${k.tenant}\u0000whatsapp` }]) {
      t.equal(await s.get(other), undefined, `nothing under ${JSON.stringify(other)}`);
      t.equal(await s.mergeContext(other, { x: 1 }), undefined);
      t.equal(await s.touchOutbound(other, Date.now()), undefined);
    }
    const [mine, theirs] = await Promise.all([s.touchInbound(k, inbound('b')), s.touchInbound({ ...k, tenant: `${k.tenant}x` }, inbound('b'))]);
    t.equal(mine.started, false);
    t.equal(theirs.started, true, 'the same ids in another tenant start their own');
    t.notOk('secret' in theirs.session.context);
  });

  t.test(`sessions - context merges keys, null removes, and its size is bounded (${opts.name})`, async (t) => {
    const s = await open(t);
    const k = key();
    t.equal(await s.mergeContext(k, { a: 1 }), undefined, 'no session: undefined');
    const { session } = await s.touchInbound(k, inbound('m1'));
    const merged = await s.mergeContext(k, { intent: 'refund', order: { id: 42, items: ['x', 'y'] }, vip: true, note: 'ünïcode ✓' });
    t.same(merged?.context, { lastInboundMessageId: 'm1', intent: 'refund', order: { id: 42, items: ['x', 'y'] }, vip: true, note: 'ünïcode ✓' });
    t.same(merged?.lastActivityAt, session.lastActivityAt, 'an agent\'s context is not the person\'s activity');
    t.same((await s.mergeContext(k, { intent: null, vip: false }))?.context, { lastInboundMessageId: 'm1', order: { id: 42, items: ['x', 'y'] }, vip: false, note: 'ünïcode ✓' });
    const before = await s.get(k);
    // multi-byte characters: the limit is in bytes, not characters
    await t.rejects(s.mergeContext(k, { big: 'é'.repeat(SESSION_CONTEXT_MAX_BYTES / 2) }), { code: 'too_large', name: 'SessionContextTooLargeError' });
    t.same(await s.get(k), before, 'nothing changed');
    const room = SESSION_CONTEXT_MAX_BYTES - JSON.stringify(before!.context).length;
    t.ok((await s.mergeContext(k, { note: null, fill: 'x'.repeat(Math.max(0, room - 20)) }))?.context['fill'], 'up to the limit is taken');
  });

  t.test(`sessions - a session expires ttlSec after its last activity, then the next message starts a new one (${opts.name})`, async (t) => {
    const s = await open(t, 1);
    const k = key();
    const first = await s.touchInbound(k, inbound('m1'));
    await s.mergeContext(k, { agentKey: 1 });
    await sleep(600);
    await s.touchOutbound(k, Date.now());
    await sleep(600);
    t.match(await s.get(k), { sessionId: 's-m1', outbound: 1 }, 'the reply kept it alive past its first second');
    await sleep(1200);
    t.equal(await s.get(k), undefined, 'gone a second after its last activity');
    t.equal(await s.touchOutbound(k, Date.now()), undefined);
    const next = await s.touchInbound(k, inbound('m2'));
    t.equal(next.started, true);
    t.not(next.session.sessionId, first.session.sessionId);
    t.match(next.session, { sessionId: 's-m2', inbound: 1, outbound: 0 });
    t.same(next.session.context, { lastInboundMessageId: 'm2' }, 'the old context went with it');
  });

  t.test(`sessions - simultaneous first messages start one session (${opts.name})`, async (t) => {
    const s = await open(t);
    const k = key();
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((id) => s.touchInbound(k, inbound(id))));
    t.equal(results.filter((r) => r.started).length, 1);
    t.equal(new Set(results.map((r) => r.session.sessionId)).size, 1);
    t.equal((await s.get(k))?.inbound, 4);
  });
}

function uid(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
