import t from 'tap';
import { subjects } from '../shared/bus/bus.ts';
import { decodeMsgpack } from '../shared/protocol/codec.ts';
import { eventually, historyOf, startApiHarness } from '../test/support/api-harness.ts';
import { roomKey } from '../shared/domain/index.ts';

const h = await startApiHarness();
t.teardown(() => h.close());
const alice = h.as('alice');
const bob = h.as('bob');
const carol = h.as('carol');

t.test('api - auth - every /v1/chat route needs a valid token', async (t) => {
  const missing = await fetch(`${h.base}/v1/chat/rooms`);
  t.equal(missing.status, 401);
  t.match(await missing.json(), { success: false, error: { code: 'unauthorized' } });
  const garbage = await fetch(`${h.base}/v1/chat/me`, { headers: { authorization: 'Bearer not.a.jwt' } });
  t.equal(garbage.status, 401);
  t.equal((await fetch(`${h.base}/v1/chat/rooms/x/messages`, { method: 'POST' })).status, 401);
});

t.test('api - me - who you are and your rooms', async (t) => {
  const room = (await alice.post('/rooms', { name: 'mine', type: 'private' })).data.roomId;
  const me = await alice.get('/me');
  t.equal(me.status, 200);
  t.match(me.data, { userId: 'alice', name: 'Alice', tenant: 'acme', roles: [] });
  t.ok(me.data.rooms.includes(room));
  t.notOk((await bob.get('/me')).data.rooms.includes(room));
});

t.test('api - search - finds messages in your rooms, or in one room you may read', async (t) => {
  const priv = (await alice.post('/rooms', { name: 'ops', type: 'private', members: ['bob'] })).data.roomId;
  const pub = (await alice.post('/rooms', { name: 'lobby', type: 'public' })).data.roomId;
  await alice.post(`/rooms/${priv}/messages`, { content: 'the deployment pipeline is green' });
  await alice.post(`/rooms/${pub}/messages`, { content: 'public deployment notes' });
  await alice.post(`/rooms/${pub}/messages`, { content: 'unrelated chatter' });
  await historyOf(alice, priv, 1);
  await historyOf(alice, pub, 2);
  // history shows a message from the live window at once; search reads the store, a persister
  // batch later
  const mine = await eventually(async () => {
    const r = await alice.get('/search?q=deployment');
    return r.data?.messages?.length === 2 ? r : undefined;
  }, 'both deployment messages searchable');
  t.equal(mine.status, 200);
  t.equal(mine.data.query, 'deployment');
  t.same(mine.data.messages.map((m: any) => m.content).sort(), ['public deployment notes', 'the deployment pipeline is green']);

  const bobs = await bob.get('/search?q=deployment');
  t.same(bobs.data.messages.map((m: any) => m.roomId), [priv], 'only rooms you are a member of');
  const carols = await carol.get('/search?q=deployment');
  t.same(carols.data.messages, [], 'nothing from rooms you are not in');

  const oneRoom = await carol.get(`/search?q=deployment&roomId=${pub}`);
  t.same(oneRoom.data.messages.map((m: any) => m.content), ['public deployment notes'], 'a public room can be searched by name');
  t.equal((await carol.get(`/search?q=deployment&roomId=${priv}`)).status, 404);
  t.equal((await carol.get('/search')).status, 400);
  t.equal((await carol.get('/search?q=')).status, 400);
});

t.test('api - presence - set your status, read others, rooms are told', async (t) => {
  const room = (await alice.post('/rooms', { name: 'p', type: 'public' })).data.roomId;
  const frames: any[] = [];
  const sub = h.bus.subscribe(subjects.roomEvents(roomKey('acme', room)), (payload) => frames.push(decodeMsgpack(payload)));
  t.teardown(() => sub.unsubscribe());
  await h.presence.connect({ tenant: 'acme', userId: 'alice', connectionId: 'c1' });

  const set = await alice.put('/presence', { status: 'busy', customStatus: 'in a meeting', device: { type: 'web', platform: 'browser' } });
  t.equal(set.status, 200);
  t.match(set.data, { userId: 'alice', status: 'busy', customStatus: 'in a meeting', connections: 1 });
  const frame = frames.find((f) => f.type === 'presence_update');
  t.match(frame, { type: 'presence_update', userId: 'alice', status: 'busy', customStatus: 'in a meeting', device: { type: 'web' } });

  await bob.post(`/rooms/${room}/join`);
  const unconnected = await bob.put('/presence', { status: 'away' });
  t.equal(unconnected.data.status, 'offline', 'without a connection the user stays offline');
  t.notOk(frames.some((f) => f.type === 'presence_update' && f.userId === 'bob'), 'and nobody is told of a non-change');

  const got = await bob.get('/presence?userIds=alice,carol,alice');
  t.same(got.data.presence.map((p: any) => [p.userId, p.status]), [['alice', 'busy'], ['carol', 'offline']]);
  const otherTenant = await h.as('bob', 'elsewhere').get('/presence?userIds=alice');
  t.equal(otherTenant.data.presence[0].status, 'offline', 'presence is per tenant');

  t.equal((await alice.put('/presence', { status: 'sleeping' })).status, 400);
  t.equal((await bob.get(`/presence?userIds=${Array.from({ length: 101 }, (_, i) => `u${i}`).join(',')}`)).status, 400);
  t.equal((await bob.get('/presence?userIds=,')).status, 400);
});

t.test('api - rate limit - sending too fast is 429 with Retry-After', async (t) => {
  const slow = await startApiHarness({ ratePerSecond: 1, burst: 2 });
  t.teardown(() => slow.close());
  const user = slow.as('speedy');
  const room = (await user.post('/rooms', { name: 'r', type: 'public' })).data.roomId;
  const statuses: number[] = [];
  let limited: any;
  for (let i = 0; i < 4; i++) {
    const r = await user.post(`/rooms/${room}/messages`, { content: `m${i}` });
    statuses.push(r.status);
    if (r.status === 429) limited = r;
  }
  t.same(statuses.slice(0, 2), [201, 201]);
  t.ok(limited, 'a send past the burst is refused');
  t.equal(limited.error.code, 'rate_limited');
  t.ok(Number(limited.headers.get('retry-after')) >= 1);
});

/** Every route of the REST surface; the document must list exactly these under /v1/chat. */
const CHAT_ROUTES = [
  'get /v1/chat/rooms', 'post /v1/chat/rooms', 'get /v1/chat/rooms/{roomId}', 'patch /v1/chat/rooms/{roomId}',
  'post /v1/chat/rooms/{roomId}/join', 'delete /v1/chat/rooms/{roomId}/leave',
  'post /v1/chat/rooms/{roomId}/archive', 'post /v1/chat/rooms/{roomId}/unarchive',
  'get /v1/chat/rooms/{roomId}/members', 'post /v1/chat/rooms/{roomId}/members', 'delete /v1/chat/rooms/{roomId}/members/{userId}',
  'put /v1/chat/rooms/{roomId}/members/{userId}/role',
  'post /v1/chat/rooms/{roomId}/members/{userId}/mute', 'delete /v1/chat/rooms/{roomId}/members/{userId}/mute',
  'post /v1/chat/rooms/{roomId}/members/{userId}/ban', 'delete /v1/chat/rooms/{roomId}/members/{userId}/ban',
  'get /v1/chat/rooms/{roomId}/messages', 'post /v1/chat/rooms/{roomId}/messages',
  'get /v1/chat/rooms/{roomId}/messages/{messageId}', 'patch /v1/chat/rooms/{roomId}/messages/{messageId}',
  'delete /v1/chat/rooms/{roomId}/messages/{messageId}',
  'post /v1/chat/rooms/{roomId}/messages/{messageId}/reactions', 'delete /v1/chat/rooms/{roomId}/messages/{messageId}/reactions/{emoji}',
  'post /v1/chat/rooms/{roomId}/messages/{messageId}/pin', 'delete /v1/chat/rooms/{roomId}/messages/{messageId}/pin',
  'get /v1/chat/rooms/{roomId}/pins',
  'get /v1/chat/rooms/{roomId}/threads/{messageId}', 'post /v1/chat/rooms/{roomId}/threads/{messageId}',
  'post /v1/chat/rooms/{roomId}/read', 'get /v1/chat/rooms/{roomId}/messages/{messageId}/status',
  'get /v1/chat/search', 'get /v1/chat/presence', 'put /v1/chat/presence', 'get /v1/chat/me', 'post /v1/chat/ai/ask',
  'get /v1/chat/me/notifications', 'put /v1/chat/me/notifications',
  'post /v1/chat/webhooks', 'get /v1/chat/webhooks', 'get /v1/chat/webhooks/{webhookId}', 'delete /v1/chat/webhooks/{webhookId}',
  'post /v1/chat/webhooks/{webhookId}/enable',
  'get /v1/chat/push/vapid-public-key', 'post /v1/chat/push/subscriptions', 'get /v1/chat/push/subscriptions', 'delete /v1/chat/push/subscriptions',
];

t.test('api - openapi - the document lists every route with its schemas', async (t) => {
  const res = await fetch(`${h.base}/v1/openapi.json`);
  t.equal(res.status, 200);
  const doc = (await res.json()) as any;
  const listed: string[] = [];
  for (const [path, item] of Object.entries<any>(doc.paths)) {
    if (!path.startsWith('/v1/chat')) continue;
    for (const method of Object.keys(item)) listed.push(`${method} ${path}`);
  }
  t.same([...listed].sort(), [...CHAT_ROUTES].sort());

  const ids = new Set<string>();
  for (const route of CHAT_ROUTES) {
    const [method, path] = route.split(' ') as [string, string];
    const op = doc.paths[path][method];
    ids.add(op.operationId);
    const pathParams = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    t.same((op.parameters ?? []).filter((p: any) => p.in === 'path').map((p: any) => p.name), pathParams, `${route} documents its path parameters`);
    const success = Object.keys(op.responses).find((s) => s.startsWith('2'))!;
    t.ok(op.responses[success].content['application/json'].schema.properties.data, `${route} documents its data`);
    t.ok(op.responses['401'], `${route} documents 401`);
    if (method === 'put' || method === 'patch') t.ok(op.requestBody, `${route} documents its body`);
  }
  t.equal(ids.size, CHAT_ROUTES.length, 'operation ids are unique');
  t.match(doc.components.schemas.Message.properties, { messageId: {}, reactions: {}, threadId: {} });
  t.same(doc.paths['/v1/chat/rooms/{roomId}/messages'].post.responses['201'].content['application/json'].schema.properties.data,
    { $ref: '#/components/schemas/SendResult' });
});
