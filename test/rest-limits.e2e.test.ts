import t from 'tap';
import { startChatProcess, removeDir } from './support/chat-process.ts';
import { restClient } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * Issue 12, finding 3, over REST: one user created 300 rooms in 264 ms. Room creation, joins and
 * leaves, and presence changes each have their own rule; past it a write gets 429 `rate_limited`
 * with Retry-After, and other users are not affected.
 */
const srv = await startChatProcess({
  env: {
    NODE_ID: '', NATS_URL: '', REDIS_URL: '',
    RATE_LIMIT_ROOM_CREATE: '5/60s', RATE_LIMIT_MEMBERSHIP: '4/60s', RATE_LIMIT_PRESENCE: '3/60s',
  },
});
t.teardown(async () => {
  await srv.stop();
  removeDir(srv.dataDir);
});

t.test('rest limits - room creation past RATE_LIMIT_ROOM_CREATE gets 429 rate_limited with Retry-After', async (t) => {
  const ann = restClient(srv.http, await devToken('ann'));
  const results = [];
  for (let i = 0; i < 30; i++) results.push(await ann('POST', '/v1/chat/rooms', { name: `flood ${i}`, type: 'public' }));
  t.equal(results.filter((r) => r.status === 201).length, 5, 'five rooms made');
  const refused = results.filter((r) => r.status === 429);
  t.equal(refused.length, 25, 'the other 25 refused');
  t.equal(refused[0]!.body.error?.code, 'rate_limited');
  t.ok(Number(refused[0]!.headers.get('retry-after')) >= 1, `Retry-After: ${refused[0]!.headers.get('retry-after')}`);
  const bob = restClient(srv.http, await devToken('bob'));
  t.equal((await bob('POST', '/v1/chat/rooms', { name: 'mine', type: 'public' })).status, 201, 'another user is not limited by ann');
});

t.test('rest limits - joins and leaves, and presence changes, have their own rules', async (t) => {
  const bob = restClient(srv.http, await devToken('bob'));
  const room = (await bob('POST', '/v1/chat/rooms', { name: 'lobby', type: 'public' })).body.data;
  const cat = restClient(srv.http, await devToken('cat'));
  const membership = [];
  for (let i = 0; i < 10; i++) membership.push((await cat(i % 2 === 0 ? 'POST' : 'DELETE', `/v1/chat/rooms/${room.roomId}/${i % 2 === 0 ? 'join' : 'leave'}`)).status);
  t.same(membership, [200, 200, 200, 200, 429, 429, 429, 429, 429, 429]);
  const presence = [];
  for (let i = 0; i < 6; i++) presence.push((await cat('PUT', '/v1/chat/presence', { status: i % 2 ? 'away' : 'busy' })).status);
  t.same(presence, [200, 200, 200, 429, 429, 429]);
});
