import t from 'tap';
import { startChatProcess, removeDir } from './support/chat-process.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * Issue 15, against `chat all`: a tenant admin makes an API key; a server-to-server call with it and
 * X-Tenant-ID acts as the tenant's service (its message is in the tenant's room for the tenant's
 * users); a revoked key, an unknown tenant and another tenant are refused; a quota set by the
 * admin holds; the key and the tenant's secrets appear in no log line of the process.
 */
const srv = await startChatProcess({ env: { LOG_LEVEL: 'debug', PERSIST_INTERVAL_MS: '50', REDIS_URL: '', CASSANDRA_CONTACT_POINTS: '', NATS_URL: '', NODE_ID: '' } });
t.teardown(async () => {
  await srv.kill();
  removeDir(srv.dataDir);
});

async function withKey(method: string, path: string, tenant: string, key: string, body?: unknown) {
  const res = await fetch(srv.http + path, {
    method, headers: { authorization: `Bearer ${key}`, 'x-tenant-id': tenant, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: await res.json() as { data?: any; error?: { code: string; message: string } } };
}

t.test('tenant API keys - a key acts for its tenant, and only while it is not revoked', async (t) => {
  const admin = restClient(srv.http, await devToken('boss', { tenant: 'acme', roles: ['tenant_admin'] }));
  const secret = 'EAAG-very-secret-whatsapp-token-42';
  t.equal((await admin('PUT', '/v1/tenants/acme/settings', { secrets: { whatsappToken: secret } })).status, 200);
  const created = await admin('POST', '/v1/tenants/acme/api-keys', { name: 'crm' });
  t.equal(created.status, 201);
  const { key, keyId } = created.body.data as { key: string; keyId: string };

  const room = await withKey('POST', '/v1/chat/rooms', 'acme', key, { roomId: 'support', name: 'Support', type: 'public' });
  t.equal(room.status, 201);
  t.equal((await withKey('POST', '/v1/chat/rooms/support/messages', 'acme', key, { content: 'order 42 shipped' })).status, 201);
  const alice = restClient(srv.http, await devToken('alice', { tenant: 'acme' }));
  t.equal((await alice('POST', '/v1/chat/rooms/support/join')).status, 200, "a user of the tenant joins the service's room");
  const seen = await eventually(async () => {
    const h = await alice('GET', '/v1/chat/rooms/support/messages');
    return (h.body.data?.messages as any[] | undefined)?.find((m) => m.content === 'order 42 shipped');
  });
  t.equal(seen.authorId, `service:${keyId}`, 'written by the tenant\'s service');
  const eve = restClient(srv.http, await devToken('eve', { tenant: 'globex' }));
  t.equal((await eve('GET', '/v1/chat/rooms/support')).status, 404, 'another tenant does not see it');

  t.equal((await withKey('GET', '/v1/chat/me', 'globex', key)).status, 404, 'a tenant nobody set up is unknown');
  t.equal((await admin('PUT', '/v1/tenants/globex/quotas', { rooms: 1 })).status, 403, "acme's admin cannot touch globex");
  t.equal((await admin('DELETE', `/v1/tenants/acme/api-keys/${keyId}`)).status, 200);
  const revoked = await withKey('GET', '/v1/chat/me', 'acme', key);
  t.equal(revoked.status, 401, 'revoked');
  t.equal(revoked.body.error?.code, 'unauthorized');

  const logs = srv.output.join('\n');
  t.ok(logs.length > 0);
  t.notOk(logs.includes(key.slice(22)), 'the key is in no log line');
  t.notOk(logs.includes(secret), 'the secret is in no log line');
});

t.test('tenant quotas - a quota its admin sets holds across the process', async (t) => {
  const admin = restClient(srv.http, await devToken('boss', { tenant: 'small-co', roles: ['tenant_admin'] }));
  t.equal((await admin('PUT', '/v1/tenants/small-co/quotas', { rooms: 1 })).status, 200);
  const ann = restClient(srv.http, await devToken('ann', { tenant: 'small-co' }));
  t.equal((await ann('POST', '/v1/chat/rooms', { name: 'one', type: 'public' })).status, 201);
  const second = await ann('POST', '/v1/chat/rooms', { name: 'two', type: 'public' });
  t.equal(second.status, 403);
  t.equal(second.body.error?.code, 'quota_exceeded');
  t.match(second.body.error?.message, /quota rooms/);
});
