import t from 'tap';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { startNatsServer } from './support/nats-server.ts';
import { startRedisServer } from './support/redis-server.ts';
import { TestClient, type Frame } from './support/ws-client.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * Issue 15, "Done when": two tenants with the same room id and the same user ids see only their own
 * data, over REST, WebSocket, search and presence. `alice` and `bob` exist in `acme` and in
 * `globex`; each tenant's alice makes a room `general`, bob joins it, and everything is said and
 * done in both. Where the user id alone would name the wrong person (presence, typing, read marks,
 * unread counts, the author check of edits, deletes, reactions and pins, notification settings),
 * each tenant must see only its own. Against `chat all`, embedded and on NATS with Redis presence
 * (a private redis-server, so other tests' tenants named acme cannot meet these).
 */
const ACME = 'acme';
const GLOBEX = 'globex';
const ENV = {
  RATE_LIMIT_PER_SECOND: '200', RATE_LIMIT_BURST: '200', PERSIST_INTERVAL_MS: '50', CASSANDRA_CONTACT_POINTS: '', NODE_ID: '',
  // every read mark, typing start and status change takes effect at once: frames are asserted one by one
  COALESCE_READ_MS: '0', COALESCE_TYPING_MS: '0', COALESCE_PRESENCE_MS: '0',
};

const nats = await startNatsServer();
t.teardown(() => nats.destroy());
const redis = await startRedisServer();
t.teardown(() => redis.stop());

type Rest = ReturnType<typeof restClient>;
const contents = (c: TestClient) => c.frames.filter((f) => f.type === 'new_message').map((f) => f.message.content as string);

for (const mode of ['embedded', 'nats+redis'] as const) {
  t.test(`tenants (${mode}) - the same user ids and room id in two tenants: each sees only its own`, async (t) => {
    const srv: ChatProcess = await startChatProcess({
      env: { ...ENV, NATS_URL: mode === 'embedded' ? '' : nats.url, REDIS_URL: mode === 'embedded' ? '' : redis.url },
    });
    const clients: TestClient[] = [];
    t.teardown(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await srv.kill();
      removeDir(srv.dataDir);
    });
    t.equal(srv.output.some((l) => l.includes('nats bus: connected')), mode !== 'embedded', `the ${mode} bus`);
    // display names tell the tenants' alices apart where ids cannot
    const token = (user: string, tenant: string) => devToken(user, { tenant, name: `${user} of ${tenant}` });
    const rest = async (user: string, tenant: string): Promise<Rest> => restClient(`${srv.http}/v1/chat`, await token(user, tenant));
    const ws = async (user: string, tenant: string, format: 'json' | 'msgpack' = 'json') => {
      const c = await TestClient.connect(`${srv.ws}/chat`, { token: await token(user, tenant), format });
      clients.push(c);
      await c.next((f) => f.type === 'welcome');
      return c;
    };
    const ack = async (c: TestClient, frame: Record<string, unknown>) => {
      const reply = await c.request(frame);
      t.equal(reply.type, 'ack', `${String(frame.type)} acked`, { reply });
      return reply;
    };

    const aliceA = await rest('alice', ACME);
    const bobA = await rest('bob', ACME);
    const aliceG = await rest('alice', GLOBEX);
    const bobG = await rest('bob', GLOBEX);
    const carolG = await rest('carol', GLOBEX);

    // the same room id, made in each tenant by its alice
    t.equal((await aliceA('POST', '/rooms', { roomId: 'general', name: 'Acme general', type: 'public' })).status, 201);
    t.equal((await aliceG('POST', '/rooms', { roomId: 'general', name: 'Globex general', type: 'public' })).status, 201, 'no conflict across tenants');
    t.equal((await bobA('POST', '/rooms/general/join')).status, 200);
    t.equal((await bobG('POST', '/rooms/general/join')).status, 200);
    t.equal((await carolG('POST', '/rooms/general/join')).status, 200, 'globex has a third member, acme two');

    // live: both bobs watch their room; the alices act in theirs
    const aliceWsA = await ws('alice', ACME);
    const bobWsA = await ws('bob', ACME, 'msgpack');
    const aliceWsG = await ws('alice', GLOBEX, 'msgpack');
    const bobWsG = await ws('bob', GLOBEX);
    for (const c of [aliceWsA, bobWsA, aliceWsG, bobWsG]) await ack(c, { type: 'join_room', roomId: 'general' });

    // acme acts first: its alice is busy, types, writes; bob reads
    await ack(aliceWsA, { type: 'set_presence', status: 'busy', customStatus: 'acme work' });
    await ack(aliceWsA, { type: 'typing_start', roomId: 'general' });
    const acmeOne = await ack(aliceWsA, { type: 'send_message', roomId: 'general', content: 'hello from acme one' });
    const acmeTwo = await ack(aliceWsA, { type: 'send_message', roomId: 'general', content: 'hello from acme two' });
    await bobWsA.next((f) => f.type === 'new_message' && f.message.content === 'hello from acme two', 10_000);
    t.ok(bobWsA.frames.some((f) => f.type === 'presence_update' && f.userId === 'alice' && f.status === 'busy' && f.customStatus === 'acme work'), 'acme bob sees acme alice busy');
    t.ok(bobWsA.frames.some((f) => f.type === 'typing_indicator' && f.user.userId === 'alice' && f.isTyping), 'and typing');

    // globex acts: its alice stays online, writes over REST; bob reads over WebSocket
    const globexOne = await aliceG('POST', '/rooms/general/messages', { content: 'hello from globex one' });
    t.equal(globexOne.status, 201);
    await bobWsG.next((f) => f.type === 'new_message' && f.message.content === 'hello from globex one', 10_000);
    t.same(contents(bobWsG), ['hello from globex one'], 'globex bob hears only globex\'s general');
    t.same(bobWsG.frames.filter((f) => f.type === 'presence_update' && (f.status === 'busy' || f.customStatus)), [], 'nor acme alice\'s status');
    t.same(bobWsG.frames.filter((f) => f.type === 'typing_indicator'), [], 'nor acme alice\'s typing');
    t.same(contents(bobWsA), ['hello from acme one', 'hello from acme two'], 'acme bob hears only acme\'s general');

    // read marks: each bob reads his own tenant's last message; each alice gets her own tenant's receipt
    await ack(bobWsA, { type: 'mark_read', roomId: 'general', messageId: acmeTwo.messageId });
    const receiptA = await aliceWsA.next((f) => f.type === 'read_receipt', 10_000);
    t.match(receiptA, { roomId: 'general', userId: 'bob', messageId: acmeTwo.messageId });
    await ack(bobWsG, { type: 'mark_read', roomId: 'general', messageId: globexOne.body.data.message.messageId });
    const receiptG = await aliceWsG.next((f) => f.type === 'read_receipt', 10_000);
    t.match(receiptG, { roomId: 'general', userId: 'bob', messageId: globexOne.body.data.message.messageId }, 'globex alice gets globex bob\'s receipt, not acme\'s');
    t.equal(aliceWsG.frames.filter((f) => f.type === 'read_receipt').length, 1);
    t.same(contents(aliceWsG), ['hello from globex one']);

    // REST: rooms, room, members, history, me, unread counts
    const room = async (client: Rest) => (await client('GET', '/rooms/general')).body.data;
    t.match(await room(aliceA), { roomId: 'general', name: 'Acme general', memberCount: 2 });
    t.match(await room(aliceG), { roomId: 'general', name: 'Globex general', memberCount: 3 });
    const listed = async (client: Rest) => ((await client('GET', '/rooms')).body.data.rooms as Array<{ roomId: string; name: string; unreadCount: number }>)
      .map((r) => ({ roomId: r.roomId, name: r.name, unreadCount: r.unreadCount }));
    t.same(await listed(bobA), [{ roomId: 'general', name: 'Acme general', unreadCount: 0 }], 'acme bob read acme\'s two');
    t.same(await listed(carolG), [{ roomId: 'general', name: 'Globex general', unreadCount: 1 }], 'globex carol has globex\'s one unread, not three');
    const members = async (client: Rest) => ((await client('GET', '/rooms/general/members')).body.data.members as Array<{ userId: string; displayName: string }>)
      .map((m) => `${m.userId}/${m.displayName}`).sort();
    t.same(await members(bobA), ['alice/alice of acme', 'bob/bob of acme']);
    t.same(await members(bobG), ['alice/alice of globex', 'bob/bob of globex', 'carol/carol of globex']);
    const history = async (client: Rest) => ((await client('GET', '/rooms/general/messages')).body.data.messages as Array<{ content: string; authorName?: string }>)
      .map((m) => m.content).sort();
    t.same(await history(bobA), ['hello from acme one', 'hello from acme two']);
    t.same(await history(bobG), ['hello from globex one']);
    for (const [client, tenant] of [[aliceA, ACME], [aliceG, GLOBEX]] as const) {
      t.match((await client('GET', '/me')).body.data, { userId: 'alice', name: `alice of ${tenant}`, tenant, rooms: ['general'] });
    }

    // alice of globex names acme's messages by id in her own general, where the author check alone
    // (author "alice") would let her: every answer is the one for a message that is not there
    const acmeId = acmeOne.messageId as string;
    const probes: Record<string, string> = {};
    const code = (r: { status: number; body: { error?: { code: string } } }) => `${r.status} ${r.body.error?.code ?? ''}`;
    probes['get'] = code(await aliceG('GET', `/rooms/general/messages/${acmeId}`));
    probes['edit'] = code(await aliceG('PATCH', `/rooms/general/messages/${acmeId}`, { content: 'edited by globex' }));
    probes['react'] = code(await aliceG('POST', `/rooms/general/messages/${acmeId}/reactions`, { emoji: '👍' }));
    probes['pin'] = code(await aliceG('POST', `/rooms/general/messages/${acmeId}/pin`));
    probes['thread'] = code(await aliceG('GET', `/rooms/general/threads/${acmeId}`));
    probes['status'] = code(await aliceG('GET', `/rooms/general/messages/${acmeId}/status`));
    probes['delete'] = code(await aliceG('DELETE', `/rooms/general/messages/${acmeId}`));
    const wsCode = (f: Frame) => (f.type === 'error' ? f.code as string : f.type);
    probes['ws edit'] = wsCode(await aliceWsG.request({ type: 'edit_message', roomId: 'general', messageId: acmeId, content: 'edited over ws' }));
    probes['ws react'] = wsCode(await aliceWsG.request({ type: 'message_reaction', roomId: 'general', messageId: acmeId, emoji: '👍' }));
    probes['ws delete'] = wsCode(await aliceWsG.request({ type: 'delete_message', roomId: 'general', messageId: acmeId }));
    t.same(probes, {
      get: '404 not_found', edit: '404 not_found', react: '404 not_found', pin: '404 not_found', thread: '404 not_found', status: '404 not_found',
      delete: '404 not_found', 'ws edit': 'not_found', 'ws react': 'not_found', 'ws delete': 'not_found',
    }, 'globex alice cannot touch acme alice\'s message');
    const acmeMessage = (await aliceA('GET', `/rooms/general/messages/${acmeId}`)).body.data;
    t.match(acmeMessage, { content: 'hello from acme one', isDeleted: false }, 'acme\'s message is as it was');
    t.notOk(acmeMessage.isEdited, 'not edited');
    t.same((await aliceA('GET', '/rooms/general/pins')).body.data.pins ?? [], [], 'not pinned');
    t.same(bobWsA.frames.filter((f) => ['message_updated', 'message_deleted', 'reaction_updated', 'message_pinned'].includes(f.type as string)), [], 'acme heard nothing of it');

    // search: the same word in both tenants, by word and by room
    const found = async (client: Rest, query: string) => ((await client('GET', `/search?${query}`)).body.data.messages as Array<{ content: string }>)
      .map((m) => m.content).sort();
    t.same(await eventually(async () => {
      const hits = await found(aliceA, 'q=hello');
      return hits.length === 2 ? hits : undefined;
    }, 10_000), ['hello from acme one', 'hello from acme two'], 'acme finds acme\'s');
    t.same(await found(aliceA, 'q=hello&roomId=general'), ['hello from acme one', 'hello from acme two']);
    t.same(await eventually(async () => {
      const hits = await found(bobG, 'q=hello');
      return hits.length > 0 ? hits : undefined;
    }, 10_000), ['hello from globex one'], 'globex finds globex\'s');
    t.same(await found(bobG, 'q=hello&roomId=general'), ['hello from globex one']);
    t.same(await found(bobG, 'q=acme'), [], 'acme\'s words are not found from globex');

    // presence over REST: "alice" is two people
    const presenceOf = async (client: Rest) => (await client('GET', '/presence?userIds=alice')).body.data.presence[0];
    t.match(await presenceOf(bobA), { userId: 'alice', status: 'busy', customStatus: 'acme work', connections: 1 });
    const globexAlice = await presenceOf(bobG);
    t.match(globexAlice, { userId: 'alice', status: 'online', connections: 1 }, 'globex alice is online, not busy');
    t.notOk('customStatus' in globexAlice, 'and has no acme custom status');
    const isOnline = async (client: Rest) => Object.fromEntries(((await client('GET', '/rooms/general/members')).body.data.members as Array<{ userId: string; isOnline: boolean }>)
      .map((m) => [m.userId, m.isOnline]));
    t.match(await isOnline(bobA), { alice: true });

    // globex alice leaves: offline in globex only, and only globex's room is told
    await aliceWsG.close();
    await bobWsG.next((f) => f.type === 'presence_update' && f.userId === 'alice' && f.status === 'offline', 10_000);
    t.match(await presenceOf(bobG), { status: 'offline', connections: 0 });
    t.match(await presenceOf(bobA), { status: 'busy', connections: 1 }, 'acme alice is still busy');
    t.match(await isOnline(bobG), { alice: false, bob: true });
    t.match(await isOnline(bobA), { alice: true, bob: true });
    // acme's alice leaves too; then globex's comes back: acme's stays offline
    await aliceWsA.close();
    await bobWsA.next((f) => f.type === 'presence_update' && f.userId === 'alice' && f.status === 'offline', 10_000);
    const acmeSeen = bobWsA.frames.length;
    const aliceBackG = await ws('alice', GLOBEX);
    await bobWsG.next((f) => f.type === 'presence_update' && f.userId === 'alice' && f.status === 'online', 10_000);
    t.match(await presenceOf(bobA), { status: 'offline', connections: 0 }, 'acme alice offline while globex alice is online');
    t.match(await presenceOf(bobG), { status: 'online', connections: 1 });
    t.same(bobWsA.frames.slice(acmeSeen).filter((f) => f.type === 'presence_update'), [], 'acme never heard globex alice come online');
    await aliceBackG.close();

    // a match's room (seed 004: one per match in a tenant): the same match id and people in both tenants are two rooms
    const matchA = await aliceA('POST', '/rooms', { type: 'direct', name: 'match', matchId: 'match-1', members: ['bob'] });
    const matchG = await aliceG('POST', '/rooms', { type: 'direct', name: 'match', matchId: 'match-1', members: ['bob'] });
    t.equal(matchA.status, 201);
    t.equal(matchG.status, 201, 'globex\'s first call creates globex\'s room, not acme\'s found again');
    t.equal((await aliceA('POST', `/rooms/${matchA.body.data.roomId}/messages`, { content: 'acme match words' })).status, 201);
    t.same(((await bobG('GET', `/rooms/${matchG.body.data.roomId}/messages`)).body.data.messages as unknown[]), [], 'globex bob\'s match room holds none of acme\'s words');
    t.same(((await bobA('GET', `/rooms/${matchA.body.data.roomId}/messages`)).body.data.messages as Array<{ content: string }>).map((m) => m.content), ['acme match words']);

    // notification settings are per tenant too
    const prefs = await aliceA('PUT', '/me/notifications', { level: 'none', mutedRooms: ['general'] });
    t.equal(prefs.status, 200);
    t.same((await aliceG('GET', '/me/notifications')).body.data, { level: 'all', mutedRooms: [] }, 'globex alice keeps the defaults');
    t.same((await aliceA('GET', '/me/notifications')).body.data, { level: 'none', mutedRooms: ['general'] });
  });
}
