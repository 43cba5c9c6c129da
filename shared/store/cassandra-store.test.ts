import { randomBytes } from 'node:crypto';
import cassandra from 'cassandra-driver';
import t from 'tap';
import { ChatError } from '../protocol/errors.ts';
import { EPOCH_MS } from '../ids/snowflake.ts';
import { bucketOf, BUCKET_MS } from './cassandra-buckets.ts';
import { cassandraError } from './cassandra-errors.ts';
import { CASSANDRA_SCHEMA_VERSION, MIGRATIONS, runCassandraMigrations } from './cassandra-schema.ts';
import { createCassandraStore } from './cassandra-store.ts';
import { createTestKeyspace, testContactPoints } from '../../test/support/cassandra-keyspace.ts';
import { ev, idAt, makeMember, makeMessage, makeRoom, runStoreContract } from './store.contract.ts';
import { BARE_KEY_TENANT, roomKey } from '../domain/room-key.ts';

const SILENT = { info: () => undefined, warn: () => undefined, error: () => undefined };
const contactPoints = testContactPoints();

if (contactPoints.length === 0) {
  t.test('cassandra store - contract suite, migrations and buckets against a real Cassandra', {
    skip: 'neither CHAT_TEST_CASSANDRA nor CASSANDRA_CONTACT_POINTS is set (bash deploy/cassandra/cassandra.sh start, then CASSANDRA_CONTACT_POINTS=127.0.0.1)',
  }, async () => undefined);
} else {
  const ks = await createTestKeyspace(contactPoints, { localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? 'datacenter1' });
  t.teardown(() => ks.drop());
  runStoreContract(t, { name: `cassandra ${ks.keyspace}`, open: () => ks.open({ empty: true }) });
  const localDataCenter = process.env.CASSANDRA_LOCAL_DC ?? 'datacenter1';

  t.test('cassandra store - migrations are versioned, recorded, and a second run changes nothing', async (t) => {
    const keyspace = `chat_migrate_${randomBytes(4).toString('hex')}`;
    const cfg = { contactPoints, localDataCenter, keyspace, replicationFactor: 1 };
    const admin = new cassandra.Client({ contactPoints, localDataCenter, socketOptions: { readTimeout: 60_000 } });
    t.teardown(async () => {
      await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
      await admin.shutdown();
    });
    const store = createCassandraStore({ contactPoints, keyspace, localDataCenter, consistency: 'LOCAL_QUORUM' });
    t.teardown(() => store.close());
    await t.rejects(store.ping(), { name: 'ChatError', code: 'unavailable', message: /schema version 0.*run `chat migrate`/ },
      'a store on a keyspace without the schema is not ready and says what to do');

    const all = MIGRATIONS.map((m) => m.version);
    t.strictSame(all, Array.from({ length: CASSANDRA_SCHEMA_VERSION }, (_, i) => i + 1), 'versions are 1..N in order');
    t.strictSame(await runCassandraMigrations(cfg, SILENT), all, 'the first run applies every version');
    t.strictSame(await runCassandraMigrations(cfg, SILENT), [], 'the second run applies none');
    const recorded = await admin.execute(`SELECT version, name, applied_at FROM ${keyspace}.schema_migrations`);
    t.strictSame(recorded.rows.map((r) => r.get('version') as number).sort(), all, 'each version is recorded once');
    t.ok(recorded.rows.every((r) => typeof r.get('name') === 'string' && r.get('applied_at') instanceof Date));
    t.equal(await store.ping(), undefined, 'the same store becomes ready once the schema is there');

    // A migration whose record was lost (stopped before recording) is run again without harm.
    await admin.execute(`DELETE FROM ${keyspace}.schema_migrations WHERE version = ?`, [CASSANDRA_SCHEMA_VERSION], { prepare: true });
    t.strictSame(await runCassandraMigrations(cfg, SILENT), [CASSANDRA_SCHEMA_VERSION]);

    await admin.execute(`INSERT INTO ${keyspace}.schema_migrations (version, name) VALUES (?, 'from the future')`, [CASSANDRA_SCHEMA_VERSION + 1], { prepare: true });
    const newer = createCassandraStore({ contactPoints, keyspace, localDataCenter, consistency: 'LOCAL_QUORUM' });
    t.teardown(() => newer.close());
    await t.rejects(newer.ping(), { name: 'ChatError', code: 'internal', message: /knows up to/ }, 'a newer schema than this build is refused');
  });

  t.test('cassandra store - migration 4 moves the rooms of tenants other than the default one to their keys', async (t) => {
    const keyspace = `chat_migrate_${randomBytes(4).toString('hex')}`;
    const cfg = { contactPoints, localDataCenter, keyspace, replicationFactor: 1 };
    const admin = new cassandra.Client({ contactPoints, localDataCenter, socketOptions: { readTimeout: 60_000 } });
    t.teardown(async () => {
      await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
      await admin.shutdown();
    });
    await runCassandraMigrations(cfg, SILENT);
    const store = createCassandraStore({ contactPoints, keyspace, localDataCenter, consistency: 'LOCAL_QUORUM' });
    t.teardown(() => store.close());
    // What a version-3 keyspace held: an acme room at its bare id (written here as the default tenant's, then retagged).
    const start = Date.UTC(2025, 0, 1);
    const m1 = makeMessage('r1', idAt(start + 1000), { content: 'moved words' });
    const m2 = makeMessage('r1', idAt(start + 2000), { content: 'deleted words' });
    await store.createRoom(makeRoom('r1', { type: 'private' }), [makeMember('r1', 'u1', { role: 'owner' }), makeMember('r1', 'u2')]);
    await store.createRoom(makeRoom('r2'), [makeMember('r2', 'u2', { role: 'owner' })]);
    await store.applyEvents([
      ev.created(m1, start + 1000), ev.created(m2, start + 2000), ev.deleted('r1', m2.messageId, start + 2500),
      ev.reactionAdded('r1', m1.messageId, 'u2', '👍', start + 1100), ev.pinned('r1', m1.messageId, start + 1200),
      ev.readMarked('r1', 'u2', m1.messageId, start + 1300), ev.delivered('r1', m1.messageId, 'u2', start + 1400),
      ev.created(makeMessage('r2', idAt(start + 3000), { content: 'stays' }), start + 3000),
    ]);
    const snapshot = async (key: string) => ({
      members: (await store.listMembers(key, { limit: 10, offset: 0 })).members,
      history: await store.history(key, { limit: 10 }),
      pinned: await store.pinned(key),
      search: await store.search({ roomIds: [key], text: 'moved', limit: 10 }),
      read: await store.getReadState(key, 'u2'),
      status: await store.messageStatus(key, m1.messageId),
    });
    const before = await snapshot('r1');
    await admin.execute(`UPDATE ${keyspace}.rooms SET tenant = 'acme.example' WHERE room_id = 'r1'`);
    await admin.execute(`DELETE FROM ${keyspace}.rooms_by_tenant WHERE tenant = 'default' AND room_id = 'r1'`);
    await admin.execute(`INSERT INTO ${keyspace}.rooms_by_tenant (tenant, room_id, type) VALUES ('acme.example', 'r1', 'private')`);
    for (const u of ['u1', 'u2']) await admin.execute(`UPDATE ${keyspace}.rooms_by_user SET tenant = 'acme.example' WHERE user_id = '${u}' AND room_id = 'r1'`);
    await admin.execute(`DELETE FROM ${keyspace}.schema_migrations WHERE version = 4`);

    t.strictSame(await runCassandraMigrations(cfg, SILENT), [4]);
    const key = roomKey('acme.example', 'r1');
    const fresh = createCassandraStore({ contactPoints, keyspace, localDataCenter, consistency: 'LOCAL_QUORUM' });
    t.teardown(() => fresh.close());
    t.match(await fresh.getRoom(key), { roomId: 'r1', tenant: 'acme.example', type: 'private', memberCount: 2 });
    t.equal(await fresh.getRoom('r1'), undefined, 'the bare id no longer names it');
    t.strictSame(await snapshot(key), before, 'members, messages (the deleted one too), reactions, pins, search, read marks and deliveries moved');
    t.strictSame(await fresh.roomsOfUser('acme.example', 'u2'), [key]);
    t.strictSame(await fresh.roomsOfUser('default', 'u2'), ['r2'], 'the default tenant\'s rooms stay');
    t.strictSame((await fresh.listRooms({ tenant: 'acme.example', limit: 10, offset: 0 })).rooms.map((r) => r.roomId), ['r1']);
    // later events still apply by event time on the moved cells
    await fresh.applyEvents([ev.edited(key, m1.messageId, 'edited after the move', start + 5000), ev.edited(key, m2.messageId, 'too late', start + 6000)]);
    t.match(await fresh.getMessage(key, m1.messageId), { content: 'edited after the move', isPinned: true });
    t.match(await fresh.getMessage(key, m2.messageId), { content: '', isDeleted: true }, 'a deleted message stays deleted');
    // the freed id is free in the default tenant, with nothing of the moved room in it
    await fresh.createRoom(makeRoom('r1'), [makeMember('r1', 'u3', { role: 'owner' })]);
    t.strictSame(await fresh.history('r1', { limit: 10 }), []);
    t.strictSame((await fresh.listMembers('r1', { limit: 10, offset: 0 })).members.map((m) => m.userId), ['u3']);
    t.strictSame(await runCassandraMigrations(cfg, SILENT), [], 'recorded once');
  });

  t.test('cassandra store - match rooms: stores of two processes opening one match at once agree on one room', async (t) => {
    const stores = [await ks.open({ empty: true }), await ks.open()];
    t.teardown(() => Promise.all(stores.map((s) => s.close())));
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => {
      const id = `p${i}`;
      return stores[i % 2]!.createMatchRoom(makeRoom(id, { type: 'direct', matchId: 'm-procs' }), [makeMember(id, 'u1'), makeMember(id, 'u2')]);
    }));
    t.equal(results.filter((r) => r.created).length, 1, 'one call created the room');
    t.equal(new Set(results.map((r) => r.room.roomId)).size, 1, 'every call, on either store, answers that room');
    t.ok(results.every((r) => r.room.memberCount === 2), 'whole, with its members');
  });

  t.test('cassandra store - match rooms: a match claimed by a process that stopped before writing its room is taken over', async (t) => {
    const store = await ks.open({ empty: true });
    const admin = new cassandra.Client({ contactPoints, localDataCenter, keyspace: ks.keyspace });
    t.teardown(async () => {
      await store.close();
      await admin.shutdown();
    });
    // what a process leaves when it stops between the match's claim and the room's
    await admin.execute('INSERT INTO rooms_by_match (tenant, match_id, room_id) VALUES (?, ?, ?)', [BARE_KEY_TENANT, 'm-stopped', 'orphan'], { prepare: true });
    const started = Date.now();
    const opened = await store.createMatchRoom(makeRoom('mine', { type: 'direct', matchId: 'm-stopped' }), [makeMember('mine', 'u1'), makeMember('mine', 'u2')]);
    t.ok(Date.now() - started >= 1000, 'after waiting for the claimer');
    t.strictSame({ created: opened.created, roomId: opened.room.roomId, matchId: opened.room.matchId, memberCount: opened.room.memberCount },
      { created: true, roomId: 'orphan', matchId: 'm-stopped', memberCount: 2 }, 'the room is written under the claimed id');
    t.strictSame(await store.getMember('orphan', 'u2'), makeMember('orphan', 'u2'));
    t.equal(await store.getRoom('mine'), undefined, 'no second room');
    const again = await store.createMatchRoom(makeRoom('later', { type: 'direct', matchId: 'm-stopped' }), [makeMember('later', 'u1'), makeMember('later', 'u2')]);
    t.strictSame([again.created, again.room.roomId], [false, 'orphan'], 'later calls find it');
  });

  t.test('cassandra store - history walks time buckets in both directions, skipping empty ones', async (t) => {
    const store = await ks.open({ empty: true });
    t.teardown(() => store.close());
    await store.createRoom(makeRoom('r1'), []);
    const day = 86_400_000;
    const start = Date.UTC(2025, 0, 1);
    // Three messages a day on days spread over 8 buckets, with empty buckets between them.
    const days = [0, 1, 9, 10, 11, 35, 36, 120, 121, 250];
    const all = days.flatMap((d) => [0, 1, 2].map((k) => idAt(start + d * day + k * 3_600_000)));
    const buckets = new Set(all.map((id) => bucketOf(BigInt(id))));
    t.ok(buckets.size >= 6, `messages span ${buckets.size} buckets`);
    await store.applyEvents(all.map((id) => ev.created(makeMessage('r1', id, { content: `at ${id}` }), Date.UTC(2025, 0, 1))));
    await store.applyEvents([ev.created(makeMessage('r2', idAt(start - 40 * day)), start)]);

    const newestFirst = all.slice().reverse();
    for (const size of [1, 4, 7, 30]) {
      const seen: string[] = [];
      let before: string | undefined;
      for (let i = 0; i < 100; i++) {
        const page = (await store.history('r1', before === undefined ? { limit: size } : { limit: size, before })).map((m) => m.messageId);
        if (page.length === 0) break;
        seen.push(...page);
        before = page[page.length - 1];
      }
      t.strictSame(seen, newestFirst, `backwards in pages of ${size}`);
      const forward: string[] = [];
      let after = '0';
      for (let i = 0; i < 100; i++) {
        const page = (await store.history('r1', { limit: size, after })).map((m) => m.messageId);
        if (page.length === 0) break;
        forward.push(...page.slice().reverse());
        after = page[0]!;
      }
      t.strictSame(forward, all, `forwards in pages of ${size}`);
    }
    const gap = idAt(start + 60 * day);
    t.strictSame((await store.history('r1', { limit: 4, before: gap })).map((m) => m.messageId), newestFirst.slice(newestFirst.indexOf(all[20]!), newestFirst.indexOf(all[20]!) + 4),
      'a cursor in an empty bucket continues in the next older one');
    t.strictSame((await store.history('r1', { limit: 2, after: gap })).map((m) => m.messageId), [all[22], all[21]]);
    t.strictSame(await store.history('r1', { limit: 10, before: all[0]! }), [], 'nothing before the first bucket');
    t.strictSame(await store.history('r9', { limit: 10 }), [], 'a room without buckets has no history');

    const admin = new cassandra.Client({ contactPoints, localDataCenter });
    t.teardown(() => admin.shutdown());
    const stored = await admin.execute(`SELECT bucket FROM ${ks.keyspace}.room_buckets WHERE room_id = 'r1'`);
    t.strictSame(stored.rows.map((r) => r.get('bucket') as number), [...buckets].sort((a, b) => b - a),
      'the room lists exactly the buckets that hold its messages, newest first');
    t.equal(bucketOf(BigInt(idAt(EPOCH_MS))), Math.floor(EPOCH_MS / BUCKET_MS));
  });
}

t.test('cassandra store - errors of a store that cannot reach Cassandra are unavailable', async (t) => {
  const { createCassandraStore } = await import('./cassandra-store.ts');
  const store = createCassandraStore({ contactPoints: ['127.0.0.1:1'], keyspace: 'chat', localDataCenter: 'datacenter1', consistency: 'LOCAL_QUORUM' });
  t.teardown(() => store.close());
  await t.rejects(store.ping(), { name: 'ChatError', code: 'unavailable' });
  await t.rejects(store.getRoom('r1'), { name: 'ChatError', code: 'unavailable' });
  const err = await store.history('r1', { limit: 10 }).catch((e: unknown) => e);
  t.ok(err instanceof ChatError && err.cause !== undefined, 'the driver error is kept as cause');
});

t.test('cassandra store - driver errors map to our codes', async (t) => {
  const { errors, types } = cassandra;
  const code = (err: unknown) => cassandraError(err, 'op').code;
  t.equal(code(new errors.NoHostAvailableError({})), 'unavailable');
  t.equal(code(new errors.OperationTimedOutError('timed out')), 'unavailable');
  for (const c of [types.responseErrorCodes.unavailableException, types.responseErrorCodes.writeTimeout, types.responseErrorCodes.readTimeout, types.responseErrorCodes.overloaded]) {
    t.equal(code(new errors.ResponseError(c, 'x')), 'unavailable', `response code 0x${c.toString(16)}`);
  }
  const syntax = cassandraError(new errors.ResponseError(types.responseErrorCodes.syntaxError, 'bad cql'), 'op');
  t.equal(syntax.code, 'internal');
  t.ok(syntax.cause instanceof errors.ResponseError, 'with the driver error as cause');
  t.equal(code(new Error('anything else')), 'internal');
  const ours = new ChatError('conflict', 'x');
  t.equal(cassandraError(ours, 'op'), ours, 'our errors pass through');
});
