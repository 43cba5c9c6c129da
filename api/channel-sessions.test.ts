import t from 'tap';
import { startApiHarness } from '../test/support/api-harness.ts';
import { createMemorySessionStore, SESSION_CONTEXT_MAX_BYTES } from '../shared/sessions/index.ts';

const sessions = createMemorySessionStore({ ttlSec: 3600 });
const h = await startApiHarness({ sessions });
t.teardown(async () => {
  await h.close();
  await sessions.close();
});

// the same person, by the same ids, in two tenants
await sessions.touchInbound({ tenant: 'acme', platform: 'whatsapp', externalUserId: '4915550001' },
  { roomId: 'wa_4915550001', newSessionId: 'acme-session', platformMessageId: 'wamid.A', at: Date.now() });
await sessions.touchInbound({ tenant: 'globex', platform: 'whatsapp', externalUserId: '4915550001' },
  { roomId: 'wa_4915550001', newSessionId: 'globex-session', platformMessageId: 'wamid.G', at: Date.now() });

const byPerson = async (user: string, tenant: string, roles: string[], method = 'GET', body?: unknown) =>
  h.call(method, '/v1/channels/sessions/whatsapp/4915550001', { headers: { authorization: `Bearer ${await h.tokenWith(user, tenant, roles)}` }, ...(body ? { body } : {}) });

t.test('sessions - routes: the tenant\'s agents and admins read their own tenant\'s session, by person and by room', async (t) => {
  const agent = await byPerson('ann', 'acme', ['agent']);
  t.equal(agent.status, 200);
  t.match(agent.data, { sessionId: 'acme-session', platform: 'whatsapp', externalUserId: '4915550001', roomId: 'wa_4915550001', inbound: 1, outbound: 0, context: { lastInboundMessageId: 'wamid.A' } });
  t.match((await byPerson('boss', 'acme', ['tenant_admin'])).data, { sessionId: 'acme-session' });
  t.match((await byPerson('gus', 'globex', ['agent'])).data, { sessionId: 'globex-session' }, 'the same ids in globex: globex\'s own');
  t.match((await h.as('ann', 'acme', ['agent']).get('/rooms/wa_4915550001/session')).data, { sessionId: 'acme-session' });
  t.match((await h.as('gus', 'globex', ['agent']).get('/rooms/wa_4915550001/session')).data, { sessionId: 'globex-session' });
});

t.test('sessions - routes: others are refused; no session is 404', async (t) => {
  t.match(await byPerson('bob', 'acme', []), { status: 403, error: { code: 'forbidden' } }, 'an ordinary user');
  t.match(await byPerson('whatsapp:4915550001', 'acme', ['channel']), { status: 403 }, 'the person themselves');
  t.match(await byPerson('ann', 'initech', ['agent']), { status: 404, error: { code: 'not_found' } }, 'an agent of a tenant without that session');
  t.match(await h.call('GET', '/v1/channels/sessions/whatsapp/4915550999', { headers: { authorization: `Bearer ${await h.tokenWith('ann', 'acme', ['agent'])}` } }), { status: 404 });
  t.match(await h.call('GET', '/v1/channels/sessions/fax/1', { headers: { authorization: `Bearer ${await h.tokenWith('ann', 'acme', ['agent'])}` } }), { status: 400 }, 'not a platform');
  t.match(await h.as('ann', 'acme', ['agent']).get('/rooms/general/session'), { status: 404 }, 'not a channel room');
  t.match(await h.call('GET', '/v1/channels/sessions/whatsapp/4915550001'), { status: 401 });
});

t.test('sessions - routes: PATCH merges the agents\' keys into their own tenant\'s context, within its limit', async (t) => {
  const set = await byPerson('ann', 'acme', ['agent'], 'PATCH', { context: { intent: 'refund', order: { id: 7 } } });
  t.equal(set.status, 200);
  t.same(set.data.context, { lastInboundMessageId: 'wamid.A', intent: 'refund', order: { id: 7 } });
  const removed = await h.as('ann', 'acme', ['agent']).patch('/rooms/wa_4915550001/session', { context: { intent: null } });
  t.same(removed.data.context, { lastInboundMessageId: 'wamid.A', order: { id: 7 } });
  t.same((await byPerson('gus', 'globex', ['agent'])).data.context, { lastInboundMessageId: 'wamid.G' }, 'globex\'s session untouched');
  t.match(await byPerson('ann', 'acme', ['agent'], 'PATCH', { context: { big: 'x'.repeat(SESSION_CONTEXT_MAX_BYTES) } }), { status: 413, error: { code: 'too_large' } });
  t.match(await byPerson('ann', 'acme', ['agent'], 'PATCH', { context: { lastButton: 'forged' } }), { status: 400, error: { code: 'bad_request' } }, 'system keys are the system\'s');
  t.match(await byPerson('bob', 'acme', [], 'PATCH', { context: { a: 1 } }), { status: 403 });
  t.match(await byPerson('ann', 'initech', ['agent'], 'PATCH', { context: { a: 1 } }), { status: 404 });
  t.same((await byPerson('ann', 'acme', ['agent'])).data.context, { lastInboundMessageId: 'wamid.A', order: { id: 7 } }, 'refused patches changed nothing');
});

t.test('sessions - routes: documented in the OpenAPI document', async (t) => {
  const doc = (await (await fetch(`${h.base}/v1/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  t.ok(doc.paths['/v1/channels/sessions/{platform}/{externalUserId}']?.['get']);
  t.ok(doc.paths['/v1/channels/sessions/{platform}/{externalUserId}']?.['patch']);
  t.ok(doc.paths['/v1/chat/rooms/{roomId}/session']?.['get']);
});
