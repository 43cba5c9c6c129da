import t from 'tap';
import { startApiHarness, type ApiHarness } from '../test/support/api-harness.ts';
import { registry } from '../shared/telemetry/index.ts';

// the local provider answers offline; the user limit is high so only the tenant's quota refuses
const h = await startApiHarness({
  aiEnv: { AI_PROVIDERS: 'local', AI_RATE_LIMIT_PER_MINUTE: '1000', AI_STREAM_FLUSH_MS: '0' },
  env: { TENANT_METRIC_LABELS: 'rooms-co' },
});
t.teardown(() => h.close());

/** Sets the tenant's quotas before anything of that tenant reads them (they are cached a few seconds once read). */
async function setQuotas(harness: ApiHarness, tenant: string, quotas: Record<string, number>) {
  const headers = { authorization: `Bearer ${await harness.tokenWith('boss', tenant, ['tenant_admin'])}` };
  const r = await harness.call('PUT', `/v1/tenants/${tenant}/quotas`, { headers, body: quotas });
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
}

async function refusals(tenant: string, quota: string): Promise<number> {
  const metric = (await registry.getSingleMetric('chat_quota_refusals_total')!.get()).values;
  return metric.find((v) => v.labels['tenant'] === tenant && v.labels['quota'] === quota)?.value ?? 0;
}

t.test('quotas - rooms: the tenant holds at most its quota of rooms, another tenant is not counted', async (t) => {
  await setQuotas(h, 'rooms-co', { rooms: 2 });
  const ann = h.as('ann', 'rooms-co');
  t.equal((await ann.post('/rooms', { name: 'one', type: 'public' })).status, 201);
  t.equal((await h.as('ben', 'rooms-co').post('/rooms', { name: 'two', type: 'private' })).status, 201, 'any user of the tenant counts');
  const third = await ann.post('/rooms', { name: 'three', type: 'public' });
  t.equal(third.status, 403);
  t.equal(third.error?.code, 'quota_exceeded');
  t.match(third.error?.message, /quota rooms/, 'the message names the quota');
  t.match(third.error?.details, { quota: 'rooms', limit: 2 });
  t.equal(await refusals('rooms-co', 'rooms'), 1, 'counted under the tenant, which TENANT_METRIC_LABELS names');
  const match = await ann.post('/rooms', { name: 'm', type: 'direct', members: ['ben'], matchId: 'match-1' });
  t.equal(match.error?.code, 'quota_exceeded', 'a match room is a room too');
  t.equal((await h.as('ann', 'acme').post('/rooms', { name: 'elsewhere', type: 'public' })).status, 201, 'another tenant is not limited');
});

t.test('quotas - membersPerRoom: creating, inviting and joining stop at the quota', async (t) => {
  await setQuotas(h, 'members-co', { membersPerRoom: 2 });
  const ann = h.as('ann', 'members-co');
  const tooMany = await ann.post('/rooms', { name: 'big', type: 'group', members: ['ben', 'cat'] });
  t.equal(tooMany.status, 403);
  t.equal(tooMany.error?.code, 'quota_exceeded');
  t.match(tooMany.error?.message, /quota membersPerRoom/);
  const room = (await ann.post('/rooms', { name: 'pair', type: 'public', members: ['ben'] })).data.roomId;
  const invite = await ann.post(`/rooms/${room}/members`, { userId: 'cat' });
  t.equal(invite.status, 403, 'an invitation over the quota');
  t.equal(invite.error?.code, 'quota_exceeded');
  const join = await h.as('dan', 'members-co').post(`/rooms/${room}/join`);
  t.equal(join.status, 403, 'a join over the quota');
  t.match(join.error, { code: 'quota_exceeded', details: { quota: 'membersPerRoom', limit: 2 } });
  t.ok(await refusals('other', 'membersPerRoom') >= 3, 'a tenant TENANT_METRIC_LABELS does not name is counted as other');
  await ann.del(`/rooms/${room}/members/ben`);
  t.equal((await h.as('dan', 'members-co').post(`/rooms/${room}/join`)).status, 200, 'room again once a member left');
});

t.test('quotas - messagesPerSecond: the tenant\'s messages together, 429 naming the quota', async (t) => {
  await setQuotas(h, 'chatty-co', { messagesPerSecond: 1 });
  const ann = h.as('ann', 'chatty-co');
  const ben = h.as('ben', 'chatty-co');
  const room = (await ann.post('/rooms', { name: 'talk', type: 'public', members: ['ben'] })).data.roomId;
  const answers = [];
  // the bucket holds twice the rate: two go through at once, the next is refused, whoever sends it
  for (const [who, i] of [[ann, 1], [ben, 2], [ann, 3], [ben, 4]] as const) answers.push(await who.post(`/rooms/${room}/messages`, { content: `m${i}` }));
  t.strictSame(answers.slice(0, 2).map((r) => r.status), [201, 201]);
  const refused = answers.find((r) => r.status !== 201);
  t.equal(refused?.status, 429);
  t.equal(refused?.error?.code, 'rate_limited');
  t.match(refused?.error?.message, /quota messagesPerSecond/);
  t.match(refused?.error?.details, { quota: 'messagesPerSecond', limit: 1 });
  const other = h.as('ann', 'acme');
  const otherRoom = (await other.post('/rooms', { name: 'calm', type: 'public' })).data.roomId;
  for (let i = 0; i < 4; i++) t.equal((await other.post(`/rooms/${otherRoom}/messages`, { content: `x${i}` })).status, 201, 'another tenant is not limited');
});

t.test('quotas - aiRequestsPerMinute: the tenant\'s questions together, 429 naming the quota', async (t) => {
  await setQuotas(h, 'curious-co', { aiRequestsPerMinute: 2 });
  t.equal((await h.as('ann', 'curious-co').post('/ai/ask', { question: 'one' })).status, 200);
  t.equal((await h.as('ben', 'curious-co').post('/ai/ask', { question: 'two' })).status, 200);
  const third = await h.as('cat', 'curious-co').post('/ai/ask', { question: 'three' });
  t.equal(third.status, 429);
  t.equal(third.error?.code, 'rate_limited');
  t.match(third.error?.message, /quota aiRequestsPerMinute/);
  t.match(third.error?.details, { quota: 'aiRequestsPerMinute', limit: 2 });
  t.equal((await h.as('cat', 'acme').post('/ai/ask', { question: 'three' })).status, 200, 'another tenant is not limited');
});

t.test('quotas - the defaults come from config when the tenant set none', async (t) => {
  const limited = await startApiHarness({ env: { TENANT_MAX_ROOMS: '1' } });
  t.teardown(() => limited.close());
  const ann = limited.as('ann', 'plain-co');
  t.equal((await ann.post('/rooms', { name: 'one', type: 'public' })).status, 201);
  t.equal((await ann.post('/rooms', { name: 'two', type: 'public' })).error?.code, 'quota_exceeded');
});
