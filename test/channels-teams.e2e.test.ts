import t, { type Test } from 'tap';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { FAKE_TEAMS_APP_ID, FAKE_TEAMS_PASSWORD, startFakeTeams, teamsActivity, type FakeTeams } from './support/fake-teams.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { TestClient } from './support/ws-client.ts';

/**
 * Issue 15, Microsoft Teams end to end: `chat all` as a real process whose Bot Framework (OpenID
 * metadata, key set, token endpoint and Bot Connector) is one local server; activities are posted
 * as the connector posts them, with a JWT signed by a key the metadata publishes.
 */
const PERSON = 'a1b2c3d4-0000-4000-8000-000000000001';
const ROOM = `mst_${PERSON}`;

const env = (fake: FakeTeams): Record<string, string> => ({
  NODE_ID: '', NATS_URL: '', REDIS_URL: '', BUS: 'memory', STORE: 'sqlite',
  TEAMS_APP_ID: FAKE_TEAMS_APP_ID, TEAMS_APP_PASSWORD: FAKE_TEAMS_PASSWORD, TEAMS_OPENID_METADATA_URL: fake.metadataUrl, TEAMS_TOKEN_URL: fake.tokenUrl,
  TEAMS_ALLOW_HTTP_SERVICE_URL: 'true',
  CHANNELS_RETRY_INITIAL_MS: '20', CHANNELS_RETRY_MAX_MS: '50', CHANNELS_MAX_ATTEMPTS: '3',
});

async function post(srv: ChatProcess, activity: Record<string, unknown>, token: string | undefined) {
  const res = await fetch(`${srv.http}/v1/channels/teams/webhook`, {
    method: 'POST', body: JSON.stringify(activity), headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
  return { status: res.status, body: await res.json() as any };
}

async function historyOf(agent: ReturnType<typeof restClient>, roomId: string, atLeast: number): Promise<any[]> {
  return eventually(async () => {
    const h = await agent('GET', `/rooms/${roomId}/messages?limit=50`);
    return h.body.data?.messages?.length >= atLeast ? h.body.data.messages : undefined;
  });
}

t.test('teams - refused tokens, a message in its room live and once, the reply once to the connector with the bot\'s token, also after a restart', async (t: Test) => {
  const fake = await startFakeTeams();
  let srv = await startChatProcess({ env: env(fake) });
  const dataDir = srv.dataDir;
  t.teardown(async () => {
    await srv.kill();
    removeDir(dataDir);
    await fake.close();
  });
  const doc = await (await fetch(`${srv.http}/v1/openapi.json`)).json() as { paths: Record<string, any> };
  t.same(doc.paths['/v1/channels/teams/webhook']?.post?.security, [], 'documented, without our bearer token');

  const first = teamsActivity(fake.base, { id: '1733360000001', text: 'Where is my order?' });
  const agent = restClient(`${srv.http}/v1/chat`, await devToken('agent', { name: 'Agent Smith' }));
  t.equal((await post(srv, first, undefined)).status, 401, 'no token');
  const wrongAud = await post(srv, first, await fake.sign({ aud: 'another-bot' }));
  t.equal(wrongAud.status, 401, 'a token for another bot');
  t.equal(wrongAud.body.error.code, 'unauthorized');
  t.equal((await post(srv, first, await fake.sign({ serviceurl: 'https://smba.trafficmanager.net/amer/' }))).status, 401, 'a token for another serviceUrl');
  t.equal((await agent('GET', `/rooms/${ROOM}`)).status, 404, 'nothing stored');

  t.same((await post(srv, first, await fake.sign())).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });
  t.match((await agent('GET', `/rooms/${ROOM}`)).body.data, { roomId: ROOM, createdBy: `teams:${PERSON}`, name: 'Teams: Ada Lovelace' });
  t.equal((await agent('POST', `/rooms/${ROOM}/join`)).status, 200);
  const ws = await TestClient.connect(`${srv.ws}/chat`, { token: await devToken('agent') });
  t.teardown(() => ws.close());
  await ws.next((x) => x.type === 'welcome');
  t.equal((await ws.request({ type: 'join_room', roomId: ROOM })).type, 'ack');

  const second = teamsActivity(fake.base, {
    id: '1733360000002', text: '<at>Support Bot</at> it was order 42',
    entities: [{ type: 'mention', text: '<at>Support Bot</at>', mentioned: { id: `28:${FAKE_TEAMS_APP_ID}`, name: 'Support Bot' } }],
  });
  t.same((await post(srv, second, await fake.sign())).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });
  const live = await ws.next((x) => x.type === 'new_message' && x.message.clientMsgId === '1733360000002');
  t.match(live.message, { authorId: `teams:${PERSON}`, content: 'it was order 42', metadata: { channel: 'teams', externalUserId: PERSON } });
  t.same((await post(srv, teamsActivity(fake.base, { type: 'typing' }), await fake.sign())).body.data, { stored: 0, duplicate: 0, status: 0, ignored: 0 }, 'typing is skipped');
  t.same((await post(srv, first, await fake.sign())).body.data, { stored: 0, duplicate: 1, status: 0, ignored: 0 }, 'a replay is a duplicate');
  const history = await historyOf(agent, ROOM, 2);
  t.same(history.map((m: any) => m.clientMsgId).sort(), ['1733360000001', '1733360000002'], 'each activity once');

  const reply = await agent('POST', `/rooms/${ROOM}/messages`, { content: 'It ships today.' });
  t.equal(reply.status, 201);
  const messageId: string = reply.body.data.message.messageId;
  t.match(await ws.next((x) => x.type === 'message_status' && x.status === 'sent' && x.messageId === messageId), { roomId: ROOM, channel: 'teams' });
  const conversationPath = `/v3/conversations/${encodeURIComponent('a:1VeryLongOpaqueConversationIdForThePersonalChatWithTheBot_0123456789')}/activities`;
  t.match(fake.requests, [
    { kind: 'token', body: { grant_type: 'client_credentials', client_id: FAKE_TEAMS_APP_ID, scope: 'https://api.botframework.com/.default' }, status: 200 },
    { kind: 'send', path: conversationPath, authorization: `Bearer ${fake.issued[0]}`, body: { type: 'message', text: 'It ships today.' }, status: 201 },
  ]);
  t.equal(fake.requests.length, 2, 'one token, one send');

  // a new process knows where to answer from what is stored (the room), not from memory
  await ws.close();
  await srv.kill();
  srv = await startChatProcess({ env: env(fake), dataDir });
  fake.failSends(500);
  const agent2 = restClient(`${srv.http}/v1/chat`, await devToken('agent', { name: 'Agent Smith' }));
  const later = await agent2('POST', `/rooms/${ROOM}/messages`, { content: 'Anything else?' });
  t.equal(later.status, 201);
  const sends = await eventually(async () => {
    const s = fake.requests.filter((r) => r.kind === 'send');
    return s.some((r) => r.status === 201 && r.body.text === 'Anything else?') ? s : undefined;
  });
  t.same(sends.map((s) => [s.body.text, s.status]), [['It ships today.', 201], ['Anything else?', 500], ['Anything else?', 201]], 'each reply once; a 500 is retried');
  t.equal(sends.at(-1)!.path, conversationPath);
  t.equal(sends.at(-1)!.authorization, `Bearer ${fake.issued.at(-1)}`, 'the new process got its own token');
});

t.test('teams per tenant - the tenant\'s app id and password, set through the admin API, serve its own path; the reply goes out with its token', async (t: Test) => {
  const fake = await startFakeTeams();
  const srv = await startChatProcess({
    env: {
      NODE_ID: '', NATS_URL: '', REDIS_URL: '', CASSANDRA_CONTACT_POINTS: '', BUS: 'memory', STORE: 'sqlite', CHANNELS_PER_TENANT: 'true',
      TEAMS_OPENID_METADATA_URL: fake.metadataUrl, TEAMS_TOKEN_URL: fake.tokenUrl, TEAMS_ALLOW_HTTP_SERVICE_URL: 'true',
    },
  });
  t.teardown(async () => {
    await srv.kill();
    removeDir(srv.dataDir);
    await fake.close();
  });
  const admin = restClient(srv.http, await devToken('boss', { tenant: 'acme', roles: ['tenant_admin'] }));
  const bad = await admin('PUT', '/v1/tenants/acme/settings', { secrets: { 'teams.appId': 'not an app id!' } });
  t.equal(bad.status, 400, 'an app id of another form is refused when written');
  const put = await admin('PUT', '/v1/tenants/acme/settings', { secrets: { 'teams.appId': FAKE_TEAMS_APP_ID, 'teams.appPassword': FAKE_TEAMS_PASSWORD } });
  t.equal(put.status, 200, JSON.stringify(put.body));

  const activity = teamsActivity(fake.base, { id: '1733360000101', text: 'Hello Acme' });
  const to = async (tenant: string, token: string) => {
    const res = await fetch(`${srv.http}/v1/channels/teams/webhook/${tenant}`, {
      method: 'POST', body: JSON.stringify(activity), headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    });
    return { status: res.status, body: await res.json() as any };
  };
  t.equal((await to('globex', await fake.sign())).status, 404, 'a tenant without Teams credentials');
  t.equal((await to('acme', await fake.sign({ aud: 'globex-bot' }))).status, 401, 'a token for another bot');
  t.same((await to('acme', await fake.sign())).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });

  const agent = restClient(`${srv.http}/v1/chat`, await devToken('agent', { tenant: 'acme' }));
  t.equal((await agent('POST', `/rooms/${ROOM}/join`)).status, 200, 'the room is acme\'s');
  await historyOf(agent, ROOM, 1);
  t.equal((await agent('POST', `/rooms/${ROOM}/messages`, { content: 'Hi from Acme' })).status, 201);
  const sent = await eventually(async () => fake.requests.find((r) => r.kind === 'send' && r.status === 201));
  t.match(sent, { body: { type: 'message', text: 'Hi from Acme' }, authorization: `Bearer ${fake.issued[0]}` });
  t.equal(fake.requests.filter((r) => r.kind === 'send').length, 1, 'once');
});
