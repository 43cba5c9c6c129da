import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { startNatsServer, type NatsServer } from './support/nats-server.ts';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { TestClient } from './support/ws-client.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { testContactPoints } from './support/cassandra-keyspace.ts';

/**
 * The distributed deployment on the Cassandra store: `chat migrate`, then a gateway, a persister
 * and an api as separate processes on a private nats-server, all on one fresh keyspace. Messages
 * sent over WebSocket come back from REST history (paged) and search.
 */
const ROOT = resolve(import.meta.dirname, '..');
const contactPoints = testContactPoints().join(',');

if (!contactPoints) {
  t.test('cassandra e2e - gateway, persister and api on NATS with the Cassandra store', {
    skip: 'neither CHAT_TEST_CASSANDRA nor CASSANDRA_CONTACT_POINTS is set (bash deploy/cassandra/cassandra.sh start, then CASSANDRA_CONTACT_POINTS=127.0.0.1)',
  }, async () => undefined);
} else {
  const keyspace = `chat_e2e_${process.pid}_${Date.now().toString(36)}`;
  let nats: NatsServer;
  let dataDir: string;
  const procs: ChatProcess[] = [];
  let api: ChatProcess;
  let gateway: ChatProcess;
  const clients: TestClient[] = [];

  const env = (nodeId: number): Record<string, string> => ({
    NATS_URL: nats.url, NATS_STREAM: 'CHAT_CASSANDRA_E2E', NODE_ID: String(nodeId), PERSIST_INTERVAL_MS: '50',
    RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000',
    CASSANDRA_CONTACT_POINTS: contactPoints, CASSANDRA_KEYSPACE: keyspace,
    CASSANDRA_LOCAL_DC: process.env.CASSANDRA_LOCAL_DC ?? 'datacenter1',
  });

  t.before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'chat-cassandra-e2e-'));
    nats = await startNatsServer();
    const migrate = await runChat(['migrate'], env(9));
    if (migrate.code !== 0) throw new Error(`chat migrate failed:\n${migrate.output}`);
    const start = async (command: string, nodeId: number) => {
      const p = await startChatProcess({ command, env: env(nodeId), dataDir, timeoutMs: 60_000 });
      procs.push(p);
      return p;
    };
    [api, gateway] = await Promise.all([start('api', 1), start('gateway', 2), start('persister', 3)]);
  });

  t.teardown(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(procs.map((p) => p.stop()));
    await nats?.destroy();
    if (dataDir) removeDir(dataDir);
    const cassandra = (await import('cassandra-driver')).default;
    const admin = new cassandra.Client({ contactPoints: contactPoints.split(','), localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? 'datacenter1' });
    try {
      await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    } finally {
      await admin.shutdown();
    }
  });

  t.test('cassandra e2e - chat migrate reports the schema, a second run changes nothing', async (t) => {
    const again = await runChat(['migrate'], env(9));
    t.equal(again.code, 0);
    t.match(again.output, new RegExp(`cassandra keyspace ${keyspace}: schema is current`));
  });

  t.test('cassandra e2e - messages sent over WebSocket come back from REST history and search', async (t) => {
    const rest = restClient(api.http, await devToken('ada'));
    const created = await rest('POST', '/v1/chat/rooms', { name: 'cassandra e2e', type: 'public' });
    t.equal(created.status, 201, 'room created through the api (control plane, read-your-writes)') || t.comment(JSON.stringify(created.body));
    const roomId = created.body.data.roomId as string;

    const ws = await TestClient.connect(`${gateway.ws}/chat`, { token: await devToken('ada') });
    clients.push(ws);
    await ws.next((f) => f.type === 'welcome');
    t.equal((await ws.request({ type: 'join_room', roomId })).type, 'ack');
    const sent: Array<{ id: string; content: string }> = [];
    for (let i = 0; i < 120; i++) {
      const content = i % 10 === 0 ? `Crème brûlée number ${i}` : `plain message ${i}`;
      const reply = await ws.request({ type: 'send_message', roomId, content });
      if (reply.type !== 'ack') throw new Error(`send failed: ${JSON.stringify(reply)}`);
      sent.push({ id: reply.messageId as string, content });
    }

    const newest = await eventually(async () => {
      const r = await rest('GET', `/v1/chat/rooms/${roomId}/messages?limit=50`);
      return r.status === 200 && r.body.data.messages[0]?.messageId === sent[119]!.id ? r.body.data : undefined;
    }, 15_000);
    t.strictSame(newest.messages.map((m: { messageId: string }) => m.messageId), sent.slice(70).reverse().map((s) => s.id),
      'the newest page, newest first');
    // older pages are the store's: on a loaded machine the persister may still be writing them
    const walkBack = async () => {
      const seen: string[] = [];
      let before: string | undefined;
      for (let page = 0; page < 10; page++) {
        const r = await rest('GET', `/v1/chat/rooms/${roomId}/messages?limit=50${before ? `&before=${before}` : ''}`);
        if (r.status !== 200) throw new Error(`history answered ${r.status}`);
        const ids = r.body.data.messages.map((m: { messageId: string }) => m.messageId) as string[];
        if (ids.length === 0) break;
        seen.push(...ids);
        before = ids[ids.length - 1];
      }
      return seen;
    };
    let seen: string[] = [];
    await eventually(async () => {
      seen = await walkBack();
      return seen.length >= sent.length;
    }, 15_000).catch(() => undefined);
    t.strictSame(seen, sent.map((s) => s.id).reverse(), 'paging back walks every acked message exactly once');
    const contents = (await rest('GET', `/v1/chat/rooms/${roomId}/messages?limit=3`)).body.data.messages.map((m: { content: string }) => m.content);
    t.strictSame(contents, [sent[119]!.content, sent[118]!.content, sent[117]!.content], 'with their content');

    // history's newest page comes from the live window at once; search reads the store, which the
    // persister fills a batch later: wait for it before judging what search returns
    const accented = sent.filter((s) => s.content.startsWith('Crème')).length;
    const found = await eventually(async () => {
      const r = await rest('GET', `/v1/chat/search?q=${encodeURIComponent('CREME brulee')}&roomId=${roomId}&limit=50`);
      return r.status === 200 && r.body.data.messages.length >= accented ? r : undefined;
    }, 15_000);
    t.equal(found.status, 200);
    t.strictSame(found.body.data.messages.map((m: { messageId: string }) => m.messageId),
      sent.filter((s) => s.content.startsWith('Crème')).map((s) => s.id).reverse(), 'search finds the accented words, newest first');
    const mine = await rest('GET', `/v1/chat/search?q=number%20110`);
    t.strictSame(mine.body.data.messages.map((m: { messageId: string }) => m.messageId), [sent[110]!.id], 'search over the rooms the user is in');

    const edited = await ws.request({ type: 'edit_message', roomId, messageId: sent[0]!.id, content: 'rewritten words' });
    t.equal(edited.type, 'ack');
    await eventually(async () => {
      const r = await rest('GET', `/v1/chat/search?q=rewritten&roomId=${roomId}`);
      return r.body.data?.messages?.length === 1;
    }, 10_000);
    const gone = await rest('GET', `/v1/chat/search?q=number%200&roomId=${roomId}`);
    t.strictSame(gone.body.data.messages, [], 'the edited-away words are no longer found');
  });

  t.test('cassandra e2e - a match opened at once through two api processes has one room; archives are per user', async (t) => {
    const api2 = await startChatProcess({ command: 'api', env: env(4), dataDir, timeoutMs: 60_000 });
    procs.push(api2);
    const [adaToken, boToken] = [await devToken('ada'), await devToken('bo')];
    const ada = restClient(api.http, adaToken);
    const adaElsewhere = restClient(api2.http, adaToken);
    const bo = restClient(api2.http, boToken);
    const cy = restClient(api.http, await devToken('cy'));
    const open = (call: typeof ada, other: string) =>
      call('POST', '/v1/chat/rooms', { name: 'match', type: 'direct', matchId: 'match-e2e', members: [other] });

    const replies = await Promise.all([open(ada, 'bo'), open(bo, 'ada'), open(adaElsewhere, 'bo'), open(bo, 'ada')]);
    t.strictSame(replies.map((r) => r.status).sort(), [200, 200, 200, 201], 'one call created the room, the others found it');
    const ids = new Set(replies.map((r) => r.body.data?.roomId));
    t.equal(ids.size, 1, 'every call got the same room');
    const roomId = [...ids][0] as string;
    t.match(replies[0]!.body.data, { matchId: 'match-e2e', memberCount: 2, isJoined: true });

    const listIds = async (call: typeof ada, query = '') =>
      ((await call('GET', `/v1/chat/rooms${query}`)).body.data.rooms as Array<{ roomId: string }>).map((r) => r.roomId);
    t.ok((await listIds(ada)).includes(roomId) && (await listIds(bo)).includes(roomId), 'both members list it');
    t.equal((await ada('POST', `/v1/chat/rooms/${roomId}/archive`)).status, 200);
    t.notOk((await listIds(adaElsewhere)).includes(roomId), 'archived: hidden from ada, whichever api answers');
    t.strictSame(await listIds(adaElsewhere, '?archived=true'), [roomId], '?archived=true lists it');
    t.ok((await listIds(bo)).includes(roomId), 'bo still sees it');
    t.equal((await cy('POST', `/v1/chat/rooms/${roomId}/archive`)).status, 404, 'a non-member gets the missing-room answer');
    t.equal((await adaElsewhere('POST', `/v1/chat/rooms/${roomId}/unarchive`)).status, 200);
    t.ok((await listIds(ada)).includes(roomId), 'unarchived: listed again');
  });
}

function runChat(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bin/chat.ts'), ...args], {
      cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    child.on('exit', (code) => done({ code, output }));
  });
}
