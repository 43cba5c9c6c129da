import t from 'tap';
import { startApiHarness } from '../test/support/api-harness.ts';

/** Findings of the outside review (issue 12): paging numbers are taken as written or refused, and replies are not sniffed. */
const h = await startApiHarness();
t.teardown(() => h.close());
const alice = h.as('alice');

t.test('api - input limits - page sizes and offsets that are not plain whole numbers in range are 400, never clamped', async (t) => {
  const room = await alice.post('/rooms', { name: 'Limits', type: 'public' });
  t.equal(room.status, 201);
  const id = room.data.roomId as string;
  for (const q of ['limit=1e9', 'limit=1.5', 'limit=0x10', 'limit=100000']) {
    const r = await alice.get(`/rooms/${id}/messages?${q}`);
    t.equal(r.status, 400, `messages?${q}`);
    t.equal(r.error?.code, 'bad_request');
    t.match(r.error?.message, /\/limit/);
  }
  for (const q of ['offset=1e18', 'offset=1.5', 'offset=-1', 'limit=1.5']) {
    const r = await alice.get(`/rooms/${id}/members?${q}`);
    t.equal(r.status, 400, `members?${q}`);
    t.equal(r.error?.code, 'bad_request');
  }
  const ok = await alice.get(`/rooms/${id}/messages?limit=10`);
  t.equal(ok.status, 200, 'a plain limit is fine');
});

t.test('api - input limits - JSON replies, errors included, carry X-Content-Type-Options: nosniff', async (t) => {
  const list = await alice.get('/rooms');
  t.equal(list.status, 200);
  t.equal(list.headers.get('x-content-type-options'), 'nosniff');
  const missing = await alice.get('/rooms/no_such_room');
  t.equal(missing.status, 404);
  t.equal(missing.headers.get('x-content-type-options'), 'nosniff');
});
