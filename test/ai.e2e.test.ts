import t, { type Test } from 'tap';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { startChatCluster, type ChatCluster } from './support/chat-cluster.ts';
import { startNatsServer } from './support/nats-server.ts';
import { TestClient, type Frame } from './support/ws-client.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { startFakeProvider } from './support/ai-provider-server.ts';
import WebSocket from 'ws';
import { ChatClient } from '../shared/client/index.ts';

/**
 * The assistant end to end, with an OpenAI-compatible provider faked by a local server: embedded
 * (`chat all`), then distributed on NATS with the gateways and the api (where the AI workers run)
 * as separate processes. Two members on different sockets (different gateways when there are
 * several) see the streamed chunks in order, then the stored ai_response message.
 */
const openai = await startFakeProvider('openai');
t.teardown(() => openai.close());
const AI_ENV = {
  AI_PROVIDERS: 'openai,local', OPENAI_BASE_URL: openai.url, OPENAI_API_KEY: 'sk-e2e', OPENAI_MODEL: 'e2e-model',
  AI_RESPONSE_TIMEOUT: '5000', RATE_LIMIT_PER_SECOND: '100', RATE_LIMIT_BURST: '100', PERSIST_INTERVAL_MS: '50',
};
const PIECES = ['Queue ', 'groups ', 'share ', 'the ', 'work.'];

interface Topology { http: string; ws: [string, string] }

async function member(url: string, user: string, roomIds: string[]): Promise<TestClient> {
  const c = await TestClient.connect(`${url}/chat`, { token: await devToken(user) });
  await c.next((f) => f.type === 'welcome');
  for (const roomId of roomIds) {
    const ack = await c.request({ type: 'join_room', roomId });
    if (ack.type !== 'ack') throw new Error(`join failed: ${JSON.stringify(ack)}`);
  }
  return c;
}

async function scenario(t: Test, top: Topology, tag: string): Promise<void> {
  const rest = restClient(top.http, await devToken('alice'));
  const room = (await rest('POST', '/v1/chat/rooms', { name: `ai ${tag}`, type: 'group', members: ['bob'], settings: { enableAI: true } })).body.data;
  const quiet = (await rest('POST', '/v1/chat/rooms', { name: `quiet ${tag}`, type: 'group', members: ['bob'], settings: { enableAI: false } })).body.data;
  const alice = await member(top.ws[0], 'alice', [room.roomId, quiet.roomId]);
  const bob = await member(top.ws[1], 'bob', [room.roomId, quiet.roomId]);
  t.teardown(() => Promise.all([alice.close(), bob.close()]));

  await t.test(`ai e2e (${tag}) - two members get the chunks in order, then the stored ai_response`, async (t) => {
    // 150 ms apart: more than AI_STREAM_FLUSH_MS (100), so the answer comes in several frames
    openai.script({ kind: 'answer', pieces: PIECES, delayMs: 150, usage: { prompt: 40, completion: 5 } });
    const ack = await alice.request({ type: 'send_message', roomId: room.roomId, content: '@ai how do api processes share AI work?' });
    t.equal(ack.type, 'ack');
    for (const [name, c] of [['alice', alice], ['bob', bob]] as const) {
      const done = await c.next((f) => f.type === 'ai_response' && f.done, 15_000);
      const stored = await c.next((f) => f.type === 'new_message' && f.message.type === 'ai_response', 15_000);
      const frames = c.frames.filter((f) => f.type === 'ai_response' && f.roomId === room.roomId && f.requestId === done.requestId);
      const chunks = frames.filter((f) => !f.done).map((f) => f.chunk);
      t.equal(chunks.join(''), PIECES.join(''), `${name}: every piece once, in order`);
      t.ok(chunks.length >= 2 && chunks.length <= PIECES.length, `${name}: streamed in ${chunks.length} frames (pieces gathered per AI_STREAM_FLUSH_MS)`);
      t.equal(done.messageId, stored.message.messageId, `${name}: done names the stored message`);
      const lastChunk = c.frames.lastIndexOf(frames.filter((f) => !f.done).at(-1) as Frame);
      t.ok(lastChunk < c.frames.indexOf(stored), `${name}: the stored message comes after the chunks`);
      t.equal(stored.message.content, PIECES.join(''));
      t.equal(stored.message.replyTo, ack.messageId);
      t.match(stored.message.metadata, { provider: 'openai', model: 'e2e-model', tokens: 45, replyTo: ack.messageId });
    }
    const history = await eventually(async () => {
      const r = await rest('GET', `/v1/chat/rooms/${room.roomId}/messages?limit=10`);
      return r.body.data.messages.find((m: any) => m.type === 'ai_response');
    }, 10_000);
    t.equal(history.content, PIECES.join(''), 'the answer is in history');
  });

  await t.test(`ai e2e (${tag}) - /v1/chat/ai/ask answers in the seed's shape`, async (t) => {
    openai.script({ kind: 'answer', pieces: ['Microservices are ', 'small services.'] });
    const r = await rest('POST', '/v1/chat/ai/ask', { question: 'Can you explain how microservices work?', context: 'software_development', roomId: room.roomId });
    t.equal(r.status, 200);
    t.same(Object.keys(r.body.data).sort(), ['confidence', 'response', 'responseTime', 'sources']);
    t.equal(r.body.data.response, 'Microservices are small services.');
  });

  await t.test(`ai e2e (${tag}) - SDK: ai.ask() streams its deltas; ai_response events carry a room answer`, async (t) => {
    const asker = new ChatClient({ url: top.http, token: await devToken('bob'), WebSocket: WebSocket as never });
    openai.script({ kind: 'answer', pieces: ['a ', 'b ', 'c'] });
    const deltas: string[] = [];
    const answer = await asker.ai.ask('stream please', { onDelta: (d) => deltas.push(d) });
    t.same(deltas, ['a ', 'b ', 'c']);
    t.equal(answer.response, 'a b c');
    t.equal((await asker.ai.ask('no stream')).response, 'a b c');
    const refused = await asker.ai.ask('  ', { onDelta: () => {} }).catch((e: unknown) => e);
    t.match(refused, { code: 'bad_request', status: 400 });

    // the socket side: a gateway (in the cluster it serves no REST, which this part does not need)
    const listener = new ChatClient({ url: top.ws[1].replace(/^ws/, 'http'), token: await devToken('bob'), WebSocket: WebSocket as never });
    t.teardown(() => listener.close());
    await listener.connect();
    await listener.join(room.roomId);
    const pieces: string[] = [];
    const stored: string[] = [];
    listener.on('ai_response', (f) => { if (!f.done) pieces.push(f.chunk); });
    listener.on('message', (f) => { if (f.message.type === 'ai_response') stored.push(f.message.content); });
    openai.script({ kind: 'answer', pieces: ['x ', 'y ', 'z'] });
    await alice.request({ type: 'send_message', roomId: room.roomId, content: '@ai xyz?' });
    await eventually(async () => stored.includes('x y z'), 15_000);
    t.equal(pieces.join(''), 'x y z', 'ai_response events in order, then the stored message');
  });

  await t.test(`ai e2e (${tag}) - a room with enableAI false gets no answer`, async (t) => {
    const calls = openai.seen.length;
    const from = bob.frames.length;
    const ack = await alice.request({ type: 'send_message', roomId: quiet.roomId, content: '@ai are you there?' });
    t.equal(ack.type, 'ack');
    // a message sent after it arrives; an answer, had there been one, would be on its way by then
    await alice.request({ type: 'send_message', roomId: room.roomId, content: 'plain message' });
    await bob.next((f) => f.type === 'new_message' && f.message.content === 'plain message', 10_000, from);
    await new Promise((r) => setTimeout(r, 500));
    const inQuiet = bob.frames.slice(from).filter((f) => f.roomId === quiet.roomId);
    t.equal(inQuiet.filter((f) => f.type === 'ai_response' || f.message?.type === 'ai_response').length, 0, 'no ai_response in that room');
    t.ok(inQuiet.some((f) => f.type === 'new_message' && f.message.content === '@ai are you there?'), 'the message itself was delivered');
    t.equal(openai.seen.length, calls, 'the provider was not asked');
  });
}

t.test('ai e2e - embedded (chat all)', async (t) => {
  let srv: ChatProcess | undefined;
  t.teardown(async () => {
    await srv?.kill();
    if (srv) removeDir(srv.dataDir);
  });
  srv = await startChatProcess({ env: AI_ENV });
  await scenario(t, { http: srv.http, ws: [srv.ws, srv.ws] }, 'embedded');
});

t.test('ai e2e - distributed on NATS: two gateways and the api in separate processes', async (t) => {
  const nats = await startNatsServer();
  let cluster: ChatCluster | undefined;
  t.teardown(async () => {
    await cluster?.stop();
    await nats.destroy();
  });
  cluster = await startChatCluster({ natsUrl: nats.url, gateways: 2, persisters: 1, env: AI_ENV });
  // a second api process: its AI workers join the same queue group
  const second = await cluster.add('api');
  const calls = openai.seen.length;
  await scenario(t, { http: cluster.api.http, ws: [cluster.gateways[0]!.ws, cluster.gateways[1]!.ws] }, 'nats');
  const served = async (http: string) => {
    const text = await (await fetch(`${http}/metrics`)).text();
    return [...text.matchAll(/^chat_ai_requests_total\{provider="openai",outcome="[a-z_]+"\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  };
  const byApi = [await served(cluster.api.http), await served(second.http)];
  t.equal(byApi[0]! + byApi[1]!, openai.seen.length - calls, `each request was served by one worker of the two api processes (${byApi.join(' + ')})`);
});
