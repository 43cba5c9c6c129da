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

t.test('api - input limits - bodies nested too deep, or with numbers JSON cannot carry exactly, are 400 bad_request (issue 12: deep metadata was a 500)', async (t) => {
  const room = (await alice.post('/rooms', { name: 'Edge', type: 'public' })).data.roomId as string;
  const send = (metadata: string) => alice.raw('POST', `/rooms/${room}/messages`, `{"content":"hi","metadata":${metadata}}`);
  const cases: Array<[string, string, RegExp]> = [
    ['metadata 5,000 deep', `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`, /nest at most 32 levels/],
    ['arrays 20,000 deep', `{"a":${'['.repeat(20_000)}${']'.repeat(20_000)}}`, /nest/],
    ['a number beyond 2^53', '{"n":18446744073709551616}', /whole numbers/],
    ['a number that parses to Infinity', '{"n":1e400}', /finite/],
  ];
  for (const [what, metadata, message] of cases) {
    const r = await send(metadata);
    t.equal(r.status, 400, what);
    t.equal(r.error?.code, 'bad_request', what);
    t.match(r.error?.message, message, what);
  }
  const fine = await send('{"a":{"b":{"c":[1,2,{"d":0.5}]}},"n":9007199254740991}');
  t.equal(fine.status, 201, 'modest nesting and the largest exact integer are fine');
  t.same(fine.data.message.metadata, { a: { b: { c: [1, 2, { d: 0.5 }] } }, n: 9007199254740991 });
  const other = await alice.raw('PATCH', `/rooms/${room}`, `{"description":"x","settings":${'{"a":'.repeat(40)}1${'}'.repeat(40)}}`);
  t.equal(other.status, 400, 'every JSON body is checked, not only messages');
});
