import t from 'tap';
import { startNatsServer } from './support/nats-server.ts';
import { startChatProcess, removeDir } from './support/chat-process.ts';
import { restClient } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { TestClient, type Frame } from './support/ws-client.ts';

/**
 * Fail fast for real (issue 17): when the NATS connection drops, every send a socket has queued
 * or in flight fails with `unavailable` within 100 ms, and a new send fails at once, instead of
 * each waiting out the publish timeout behind the one before it.
 *
 * nats-server is paused first (SIGSTOP: it takes the gateway's publishes and answers nothing), so
 * the sends pile up unconfirmed; then it is killed, which drops the connection.
 */
const nats = await startNatsServer();
t.teardown(() => nats.destroy());
const srv = await startChatProcess({ env: { NATS_URL: nats.url, RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000' } });
t.teardown(async () => { await srv.kill(); removeDir(srv.dataDir); });

t.test('fail fast - sends queued when NATS drops fail with unavailable within 100 ms; new ones at once', async (t) => {
  const token = await devToken('alice');
  const created = await restClient(srv.http, token)('POST', '/v1/chat/rooms', { name: 'fail fast', type: 'public' });
  t.equal(created.status, 201);
  const roomId = created.body.data.roomId as string;
  const alice = await TestClient.connect(`${srv.ws}/chat`, { token });
  t.teardown(() => alice.close());
  await alice.next((f) => f.type === 'welcome');
  t.equal((await alice.request({ type: 'send_message', roomId, content: 'before', clientMsgId: 'before' })).type, 'ack', 'sends work before the fault');

  nats.pause();
  await new Promise((r) => setTimeout(r, 100)); // SIGSTOP takes effect when the kernel next schedules it
  const answers = new Map<string, { frame: Frame; at: number }>();
  const refs: string[] = [];
  const from = alice.frames.length;
  for (let i = 0; i < 40; i++) {
    const ref = alice.send({ type: 'send_message', roomId, content: `queued ${i}`, clientMsgId: `q${i}` });
    refs.push(ref);
    void alice.next((f) => (f.type === 'ack' || f.type === 'error') && f.ref === ref, 10_000, from).then((frame) => answers.set(ref, { frame, at: Date.now() }), () => {});
  }
  await new Promise((r) => setTimeout(r, 400));
  t.equal(answers.size, 0, 'while NATS hangs, nothing is answered');

  const dropped = Date.now();
  await nats.kill();
  const deadline = Date.now() + 5000;
  while (answers.size < refs.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const results = refs.map((ref) => answers.get(ref));
  t.equal(results.filter(Boolean).length, refs.length, 'every queued send was answered');
  t.same([...new Set(results.map((r) => (r?.frame.type === 'error' ? r.frame.code : r?.frame.type)))], ['unavailable'], 'each with unavailable');
  const slowest = Math.max(...results.map((r) => r!.at)) - dropped;
  t.ok(slowest <= 100, `the last one within 100 ms of the drop (${slowest} ms), not after the 2.5 s publish timeout`);

  const started = Date.now();
  const now = await alice.request({ type: 'send_message', roomId, content: 'while down', clientMsgId: 'down' });
  t.match(now, { type: 'error', code: 'unavailable' });
  t.ok(Date.now() - started <= 100, `a send while NATS is down fails at once (${Date.now() - started} ms)`);
});
