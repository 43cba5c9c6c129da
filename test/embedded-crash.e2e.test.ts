import t from 'tap';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { TestClient, type Frame } from './support/ws-client.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { readHistory } from './support/exactly-once.ts';

/**
 * Issue 12, finding 12: in embedded mode an acknowledgement means stored, even across kill -9.
 * `chat all` runs as a real process; clients send with clientMsgIds under load (several sends in
 * flight each); the process is killed with SIGKILL at a random point; a new process on the same
 * data dir must hold every acknowledged message exactly once, continue the sequence, and dedupe
 * a retried clientMsgId to the first message.
 */
const ENV = {
  NODE_ID: '', NATS_URL: '', REDIS_URL: '', BUS: 'memory', STORE: 'sqlite',
  RATE_LIMIT_PER_SECOND: '100000', RATE_LIMIT_BURST: '100000',
  // a wide persister batch: without the journal, everything acked in the last 500 ms is lost
  PERSIST_INTERVAL_MS: '500',
};
const CLIENTS = 6;
const IN_FLIGHT = 8;

interface Ack { clientMsgId: string; messageId: string; seq: number }

/** Sends numbered messages with IN_FLIGHT outstanding until the socket dies; records every ack. */
async function sendUntilClosed(c: TestClient, user: string, roomId: string, acks: Ack[], sent: string[]): Promise<void> {
  let n = 0;
  const one = async (): Promise<void> => {
    while (!c.closed) {
      const clientMsgId = `${user}-${n++}`;
      sent.push(clientMsgId);
      let reply: Frame;
      try {
        reply = await c.request({ type: 'send_message', roomId, content: `${clientMsgId} body`, clientMsgId }, 10_000);
      } catch {
        return; // no reply: the process died with it in flight (retried after the restart)
      }
      if (reply.type !== 'ack') throw new Error(`send refused: ${JSON.stringify(reply)}`);
      acks.push({ clientMsgId, messageId: reply.messageId, seq: reply.seq });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, one));
}

t.test('embedded crash - every acked message survives kill -9 exactly once; seq and clientMsgId dedupe carry over the restart', async (t) => {
  const users = Array.from({ length: CLIENTS }, (_, i) => `crash-u${i}`);
  const tokens = await Promise.all(users.map((u) => devToken(u, { expiresIn: '1h' })));
  let srv: ChatProcess = await startChatProcess({ env: ENV });
  const dataDir = srv.dataDir;
  t.teardown(async () => {
    await srv.kill();
    removeDir(dataDir);
  });
  const rest = restClient(srv.http, tokens[0]);
  const created = await rest('POST', '/v1/chat/rooms', { name: 'crash room', type: 'public' });
  t.equal(created.status, 201);
  const roomId = created.body.data.roomId as string;
  const clients = await Promise.all(users.map(async (u, i) => {
    const c = await TestClient.connect(`${srv.ws}/chat`, { token: tokens[i]!, format: i % 2 === 0 ? 'json' : 'msgpack' });
    await c.next((f) => f.type === 'welcome');
    const joined = await c.request({ type: 'join_room', roomId });
    if (joined.type !== 'ack') throw new Error(`join: ${JSON.stringify(joined)}`);
    return c;
  }));

  const acks: Ack[] = [];
  const sent: string[] = [];
  const sending = Promise.all(clients.map((c, i) => sendUntilClosed(c, users[i]!, roomId, acks, sent)));
  const killAt = 150 + Math.floor(Math.random() * 300);
  await eventually(async () => acks.length >= killAt, 60_000, 5);
  srv.child.kill('SIGKILL');
  await srv.exited;
  await sending;
  t.ok(acks.length >= killAt, `killed with SIGKILL after ${acks.length} acks (aimed at ${killAt}), ${sent.length - acks.length} sends unanswered`);
  const maxSeq = Math.max(...acks.map((a) => a.seq));

  srv = await startChatProcess({ env: ENV, dataDir });
  const after = restClient(srv.http, tokens[0]);

  // every acked message is in history, under the id it was acked with
  const ackedById = new Map(acks.map((a) => [a.clientMsgId, a.messageId]));
  let history: Awaited<ReturnType<typeof readHistory>> = [];
  await eventually(async () => {
    history = await readHistory(srv.http, tokens[0]!, roomId);
    const ids = new Set(history.map((m) => m.messageId));
    return [...ackedById.values()].every((id) => ids.has(id));
  }, 20_000, 200).catch(() => undefined);
  const stored = new Map<string, string[]>();
  for (const m of history) if (m.clientMsgId) stored.set(m.clientMsgId, [...(stored.get(m.clientMsgId) ?? []), m.messageId]);
  const missing = [...ackedById].filter(([cid]) => !stored.has(cid)).map(([cid]) => cid);
  const wrongId = [...ackedById].filter(([cid, id]) => stored.has(cid) && !stored.get(cid)!.includes(id)).map(([cid]) => cid);
  const twice = [...stored].filter(([, ids]) => ids.length > 1).map(([cid]) => cid);
  t.same(missing.slice(0, 20), [], `every acked message is in REST history after the crash (${missing.length} of ${acks.length} missing)`);
  t.same(wrongId.slice(0, 20), [], 'under the id it was acked with');
  t.same(twice.slice(0, 20), [], 'each exactly once');

  // the sequence continues, and a retried clientMsgId is deduplicated to the first message
  const c = await TestClient.connect(`${srv.ws}/chat`, { token: tokens[1]!, format: 'msgpack' });
  t.teardown(() => c.close());
  await c.next((f) => f.type === 'welcome');
  const fresh = await c.request({ type: 'send_message', roomId, content: 'after the restart', clientMsgId: 'after-restart' });
  t.equal(fresh.type, 'ack');
  t.ok(fresh.seq > maxSeq, `a new message's seq ${fresh.seq} continues after the last acked before the crash (${maxSeq})`);
  const earlier = acks.filter((a) => a.clientMsgId.startsWith(`${users[1]}-`));
  const retried = earlier.at(-1)!;
  const retry = await c.request({ type: 'send_message', roomId, content: 'retried', clientMsgId: retried.clientMsgId });
  t.match(retry, { type: 'ack', duplicate: true, messageId: retried.messageId, seq: retried.seq }, 'a retry of an acked clientMsgId returns the first message');

  // the sends that never got an answer are retried, as a client does: each ends up stored once
  const unanswered = sent.filter((cid) => !ackedById.has(cid) && cid.startsWith(`${users[1]}-`));
  for (const cid of unanswered) {
    const reply = await c.request({ type: 'send_message', roomId, content: `${cid} body`, clientMsgId: cid });
    t.equal(reply.type, 'ack', `the retry of unanswered ${cid} is acked (${reply.duplicate ? 'it had been stored' : 'it had not'})`);
  }
  await eventually(async () => {
    const h = await readHistory(srv.http, tokens[0]!, roomId);
    const counts = new Map<string, number>();
    for (const m of h) if (m.clientMsgId) counts.set(m.clientMsgId, (counts.get(m.clientMsgId) ?? 0) + 1);
    return [...unanswered, 'after-restart'].every((cid) => counts.get(cid) === 1) && [...counts.values()].every((n) => n === 1);
  }, 20_000, 200);
  const final = await after('GET', `/v1/chat/rooms/${roomId}/messages?limit=1`);
  t.equal(final.status, 200);
});
