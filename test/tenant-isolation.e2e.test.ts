import t from 'tap';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { startNatsServer } from './support/nats-server.ts';
import { TestClient, type Frame } from './support/ws-client.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * Issue 12, finding 9: room ids are the tenant's own. A user of another tenant who names an
 * existing private room's id learns nothing of it: every probe (create, get, join, history, send,
 * search, SSE, WebSocket join, send, typing and resume) answers exactly as for an id nobody uses,
 * and creating it makes their own room, which shares nothing with the first: not its members,
 * messages, frames, search or subscriptions. Against `chat all`, embedded and on NATS.
 */
const ACME = 'acme';
const GLOBEX = 'globex.example';
const ENV = { RATE_LIMIT_PER_SECOND: '200', RATE_LIMIT_BURST: '200', PERSIST_INTERVAL_MS: '50', REDIS_URL: '', CASSANDRA_CONTACT_POINTS: '', NODE_ID: '' };

const nats = await startNatsServer();
t.teardown(() => nats.destroy());

for (const mode of ['embedded', 'nats'] as const) {
  t.test(`tenants (${mode}) - the same room id in two tenants: two rooms, no probe, nothing crosses`, async (t) => {
    const srv: ChatProcess = await startChatProcess({ env: { ...ENV, NATS_URL: mode === 'nats' ? nats.url : '' } });
    const clients: TestClient[] = [];
    t.teardown(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await srv.kill();
      removeDir(srv.dataDir);
    });
    t.equal(srv.output.some((l) => l.includes('nats bus: connected')), mode === 'nats', `the ${mode} bus`);
    const token = (user: string, tenant: string) => devToken(user, { tenant });
    const rest = async (user: string, tenant: string) => restClient(srv.http, await token(user, tenant));
    const ws = async (user: string, tenant: string) => {
      const c = await TestClient.connect(`${srv.ws}/chat`, { token: await token(user, tenant) });
      clients.push(c);
      await c.next((f) => f.type === 'welcome');
      return c;
    };

    // acme's private room, with a message in it
    const alice = await rest('alice', ACME);
    t.equal((await alice('POST', '/v1/chat/rooms', { roomId: 'vault', name: 'Acme vault', type: 'private' })).status, 201);
    t.equal((await alice('POST', '/v1/chat/rooms/vault/messages', { content: 'acme secret words' })).status, 201);

    // globex probes it: every answer is the one for an id nobody has
    const eve = await rest('eve', GLOBEX);
    const probe = async (roomId: string) => {
      const codes: Record<string, unknown> = {};
      const code = (r: { status: number; body: { error?: { code: string } } }) => `${r.status} ${r.body.error?.code ?? ''}`;
      codes['get'] = code(await eve('GET', `/v1/chat/rooms/${roomId}`));
      codes['join'] = code(await eve('POST', `/v1/chat/rooms/${roomId}/join`));
      codes['history'] = code(await eve('GET', `/v1/chat/rooms/${roomId}/messages`));
      codes['send'] = code(await eve('POST', `/v1/chat/rooms/${roomId}/messages`, { content: 'hi' }));
      codes['members'] = code(await eve('GET', `/v1/chat/rooms/${roomId}/members`));
      codes['search'] = code(await eve('GET', `/v1/chat/search?q=words&roomId=${roomId}`));
      const sse = await fetch(`${srv.http}/v1/chat/stream?token=${encodeURIComponent(await token('eve', GLOBEX))}&rooms=${roomId}`);
      codes['sse'] = sse.status;
      await sse.body?.cancel();
      const poll = await fetch(`${srv.http}/v1/chat/poll?rooms=${roomId}`, { headers: { authorization: `Bearer ${await token('eve', GLOBEX)}` } });
      codes['poll'] = poll.status;
      await poll.body?.cancel();
      const c = await ws('eve', GLOBEX);
      const reply = (f: Frame) => (f.type === 'error' ? f.code : f.type);
      codes['ws join'] = reply(await c.request({ type: 'join_room', roomId }));
      codes['ws send'] = reply(await c.request({ type: 'send_message', roomId, content: 'hi' }));
      codes['ws typing'] = reply(await c.request({ type: 'typing_start', roomId }));
      codes['ws resume'] = (await c.request({ type: 'resume', rooms: [{ roomId, lastMessageId: '1' }] })).rooms;
      return codes;
    };
    const forVault = await probe('vault');
    t.same(forVault, await probe('nosuchroom').then((c) => ({ ...c, 'ws resume': [{ ...(c['ws resume'] as object[])[0], roomId: 'vault' }] })),
      'acme\'s room answers globex exactly as a room that does not exist');
    t.match(forVault, { get: '404 not_found', join: '404 not_found', history: '404 not_found', send: '404 not_found', sse: 404, 'ws join': 'not_found' });
    t.same(forVault['ws resume'], [{ roomId: 'vault', recovered: false, replayed: 0 }]);

    // the reproduction: creating it is no conflict, it is globex's own room
    const created = await eve('POST', '/v1/chat/rooms', { roomId: 'vault', name: 'Globex vault', type: 'public' });
    t.equal(created.status, 201, 'no 409 across tenants');
    t.match(created.body.data, { roomId: 'vault', name: 'Globex vault' });
    t.notOk('tenant' in created.body.data, 'clients never see a tenant or a key');
    t.match((await alice('GET', '/v1/chat/rooms/vault')).body.data, { roomId: 'vault', name: 'Acme vault', type: 'private', memberCount: 1 });
    t.match((await eve('GET', '/v1/chat/rooms/vault')).body.data, { roomId: 'vault', name: 'Globex vault', type: 'public', memberCount: 1 });
    t.equal((await (await rest('bob', ACME))('POST', '/v1/chat/rooms', { roomId: 'vault', name: 'again', type: 'public' })).status, 409,
      'within a tenant an id is taken once (docs/protocol.md says what that reveals)');

    // live: each tenant's room on WebSockets, one JSON and one msgpack client each
    const aliceWs = await ws('alice', ACME);
    const eveWs = await ws('eve', GLOBEX);
    const carolWs = await ws('carol', GLOBEX);
    t.equal((await carolWs.request({ type: 'join_room', roomId: 'vault' })).type, 'ack', 'globex\'s carol joins globex\'s public vault');
    for (const c of [aliceWs, eveWs]) t.equal((await c.request({ type: 'join_room', roomId: 'vault' })).type, 'ack');
    await eveWs.request({ type: 'typing_start', roomId: 'vault' });
    t.equal((await eveWs.request({ type: 'set_presence', status: 'busy' })).type, 'ack');
    for (const [c, text] of [[aliceWs, 'acme 1'], [eveWs, 'globex 1'], [aliceWs, 'acme 2'], [eveWs, 'globex 2']] as const) {
      t.equal((await c.request({ type: 'send_message', roomId: 'vault', content: text })).type, 'ack');
    }
    await aliceWs.next((f) => f.type === 'new_message' && f.message.content === 'acme 2', 10_000);
    await carolWs.next((f) => f.type === 'new_message' && f.message.content === 'globex 2', 10_000);
    const contents = (c: TestClient) => c.frames.filter((f) => f.type === 'new_message').map((f) => f.message.content as string);
    t.same(contents(aliceWs), ['acme 1', 'acme 2'], 'acme hears only acme\'s room');
    t.same(contents(carolWs), ['globex 1', 'globex 2'], 'globex hears only globex\'s room');
    t.same(aliceWs.frames.filter((f) => f.type === 'typing_indicator' || f.type === 'user_joined'), [], 'no typing or joins of the other room either');
    t.same(aliceWs.frames.filter((f) => f.type === 'presence_update' && f.userId === 'eve'), [], 'nor globex\'s presence');
    t.ok(carolWs.frames.some((f) => f.type === 'typing_indicator' && f.user.userId === 'eve'), 'while globex\'s own room got them');
    t.ok(carolWs.frames.some((f) => f.type === 'presence_update' && f.userId === 'eve' && f.status === 'busy'), 'presence too');
    t.ok([...aliceWs.frames, ...carolWs.frames].filter((f) => 'roomId' in f).every((f) => f.roomId === 'vault'), 'frames show the id, never a key');

    // REST history and search: each their own
    const history = async (client: typeof alice) => ((await client('GET', '/v1/chat/rooms/vault/messages')).body.data.messages as Array<{ content: string }>)
      .map((m) => m.content).sort();
    t.same(await history(alice), ['acme 1', 'acme 2', 'acme secret words']);
    t.same(await history(eve), ['globex 1', 'globex 2']);
    const found = await eventually(async () => {
      const r = await alice('GET', '/v1/chat/search?q=acme');
      return r.body.data.messages.length === 3 ? r.body.data.messages : undefined;
    }, 10_000);
    t.same(found.map((m: { roomId: string }) => m.roomId), ['vault', 'vault', 'vault']);
    t.same((await eve('GET', '/v1/chat/search?q=acme')).body.data.messages, [], 'acme\'s words are not found from globex');
    t.same((await eve('GET', '/v1/chat/search?q=words&roomId=vault')).body.data.messages, [], 'not even naming the id');
    t.same((await eve('GET', '/v1/chat/me')).body.data.rooms, ['vault']);
  });
}
