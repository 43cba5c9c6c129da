import t, { type Test } from 'tap';
import webpush from 'web-push';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { startPushService, type PushService } from './support/push-service.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { signatureValid, startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.ts';
import { TestClient } from './support/ws-client.ts';

/**
 * Issue 16, offline notifications end to end: `chat all` as a real process, a local webhook
 * receiver that checks the HMAC as docs/notifications.md tells receivers to, and a local push
 * service that checks the VAPID token and decrypts the aes128gcm body with node:crypto.
 */
const vapid = webpush.generateVAPIDKeys();
const ENV = {
  NODE_ID: '', NATS_URL: '', REDIS_URL: '', BUS: 'memory', STORE: 'sqlite',
  NOTIFY_ALLOW_NETWORKS: '127.0.0.0/8',
  NOTIFY_COLLAPSE_MS: '1000',
  NOTIFY_RETRY_INITIAL_MS: '50', NOTIFY_RETRY_MAX_MS: '100', NOTIFY_MAX_ATTEMPTS: '2', WEBHOOK_DISABLE_AFTER: '2',
  VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey, VAPID_SUBJECT: 'mailto:ops@example.com',
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Fixture {
  srv: ChatProcess;
  hooks: WebhookReceiver;
  push: PushService;
  as: (user: string) => Promise<ReturnType<typeof restClient>>;
}

async function fixture(t: Test, env: Record<string, string> = {}): Promise<Fixture> {
  const hooks = await startWebhookReceiver();
  const push = await startPushService(vapid.publicKey);
  const srv = await startChatProcess({ env: { ...ENV, ...env } });
  t.teardown(async () => {
    await srv.kill();
    removeDir(srv.dataDir);
    await hooks.close();
    await push.close();
  });
  return { srv, hooks, push, as: async (user) => restClient(`${srv.http}/v1/chat`, await devToken(user)) };
}

/** `user` registers a webhook at /hook/<user> and a push subscription named after them; returns the webhook's secret. */
async function register(f: Fixture, user: string): Promise<string> {
  const rest = await f.as(user);
  const hook = await rest('POST', '/webhooks', { url: f.hooks.url(`/hook/${user}`) });
  if (hook.status !== 201) throw new Error(`webhook for ${user}: ${JSON.stringify(hook.body)}`);
  const sub = await rest('POST', '/push/subscriptions', f.push.subscribe(user));
  if (sub.status !== 201) throw new Error(`push subscription for ${user}: ${JSON.stringify(sub.body)}`);
  return hook.body.data.secret as string;
}

const hooksOf = (f: Fixture, user: string) => f.hooks.received.filter((h) => h.path === `/hook/${user}`);
const pushesOf = (f: Fixture, user: string) => f.push.received.filter((p) => p.name === user);

async function room(f: Fixture, roomId: string, members: string[]): Promise<void> {
  const owner = await f.as(members[0]!);
  const made = await owner('POST', '/rooms', { roomId, name: `Room ${roomId}`, type: 'public' });
  if (made.status !== 201) throw new Error(JSON.stringify(made.body));
  for (const m of members.slice(1)) {
    const joined = await (await f.as(m))('POST', `/rooms/${roomId}/join`);
    if (joined.status !== 200) throw new Error(JSON.stringify(joined.body));
  }
}

t.test('notifications e2e - an offline user who is mentioned gets one signed webhook and one Web Push message; an online user gets neither', async (t) => {
  const f = await fixture(t);
  await room(f, 'plans', ['alice', 'bob', 'carol']);
  const bobSecret = await register(f, 'bob');
  await register(f, 'carol');
  // carol is online: a WebSocket in the room
  const carol = await TestClient.connect(`${f.srv.ws}/chat`, { token: await devToken('carol') });
  t.teardown(() => carol.close());
  t.equal((await carol.request({ type: 'join_room', roomId: 'plans' })).type, 'ack');

  const alice = await f.as('alice');
  const m1 = await alice('POST', '/rooms/plans/messages', { content: 'hey @bob and @carol, lunch?' });
  const m2 = await alice('POST', '/rooms/plans/messages', { content: '@bob at noon' });
  t.equal(m1.status, 201);
  t.equal(m2.status, 201);

  await eventually(async () => hooksOf(f, 'bob').length >= 1 && pushesOf(f, 'bob').length >= 1, 10_000);
  await sleep(2500); // two more collapse windows: nothing else may come
  const [hook, ...moreHooks] = hooksOf(f, 'bob');
  t.equal(moreHooks.length, 0, 'exactly one webhook for bob: both mentions collapsed into it');
  t.ok(signatureValid(bobSecret, hook!), 'the HMAC over timestamp.body checks out with bob\'s secret');
  t.notOk(signatureValid(`${bobSecret}x`, hook!), 'and fails with another secret');
  t.match(hook!.body, {
    type: 'notification', userId: 'bob', reason: 'mention', count: 2, room: { roomId: 'plans', name: 'Room plans' },
    messages: [{ messageId: m1.body.data.message.messageId, authorId: 'alice', content: 'hey @bob and @carol, lunch?' }, { messageId: m2.body.data.message.messageId, content: '@bob at noon' }],
  });
  t.equal(hook!.headers['x-chat-delivery'], hook!.body.notificationId);

  const [push, ...morePushes] = pushesOf(f, 'bob');
  t.equal(morePushes.length, 0, 'exactly one push for bob');
  t.match(push!.vapid, { ok: true, claims: { aud: new URL(f.push.subscribe('probe').endpoint).origin, sub: 'mailto:ops@example.com' } }, 'the VAPID JWT verifies with the server\'s key');
  t.equal(push!.headers['content-encoding'], 'aes128gcm');
  t.equal(push!.payload.ok, true, push!.payload.ok ? 'decrypted' : push!.payload.error);
  const payload = JSON.parse(push!.payload.ok ? push!.payload.text : '{}');
  t.match(payload, { type: 'notification', title: 'alice in Room plans', roomId: 'plans', messageId: m2.body.data.message.messageId, count: 2, reason: 'mention' });
  t.match(payload.body, /^@bob at noon \(\+1 more\)$/);

  t.equal(hooksOf(f, 'carol').length, 0, 'carol is online: no webhook');
  t.equal(pushesOf(f, 'carol').length, 0, 'carol is online: no push');
});

t.test('notifications e2e - a restart of the notifier between receipt and send gives exactly one notification', async (t) => {
  const f = await fixture(t, { NOTIFY_COLLAPSE_MS: '3000' });
  await room(f, 'ops', ['alice', 'bob']);
  const secret = await register(f, 'bob');
  const sent = await (await f.as('alice'))('POST', '/rooms/ops/messages', { content: 'deploy done, @bob' });
  t.equal(sent.status, 201, 'acknowledged: in the stream and its journal');
  await sleep(700);
  t.equal(hooksOf(f, 'bob').length + pushesOf(f, 'bob').length, 0, 'still waiting in the collapse window');
  await f.srv.kill(); // SIGKILL: nothing is flushed

  const again = await startChatProcess({ env: { ...ENV, NOTIFY_COLLAPSE_MS: '3000' }, dataDir: f.srv.dataDir });
  t.teardown(() => again.kill());
  await eventually(async () => hooksOf(f, 'bob').length >= 1 && pushesOf(f, 'bob').length >= 1, 15_000);
  await sleep(4000);
  t.equal(hooksOf(f, 'bob').length, 1, 'one webhook after the restart');
  t.equal(pushesOf(f, 'bob').length, 1, 'one push after the restart');
  t.ok(signatureValid(secret, hooksOf(f, 'bob')[0]!));
  t.equal(hooksOf(f, 'bob')[0]!.body.messages[0].messageId, sent.body.data.message.messageId);

  // and once sent and acknowledged, another restart sends nothing again
  await again.stop();
  const third = await startChatProcess({ env: { ...ENV, NOTIFY_COLLAPSE_MS: '3000' }, dataDir: f.srv.dataDir });
  t.teardown(() => third.kill());
  await sleep(4500);
  t.equal(hooksOf(f, 'bob').length, 1, 'still one webhook');
  t.equal(pushesOf(f, 'bob').length, 1, 'still one push');
});

t.test('notifications e2e - a webhook that keeps failing is dead-lettered, then disabled with the reason; a 410 push subscription is removed', async (t) => {
  const f = await fixture(t);
  await room(f, 'alerts', ['alice', 'dave']);
  f.hooks.answer('/hook/dave', 500);
  await register(f, 'dave');
  f.push.answer('dave', 410);
  const dave = await f.as('dave');
  const [hook] = (await dave('GET', '/webhooks')).body.data.webhooks;
  const alice = await f.as('alice');

  await alice('POST', '/rooms/alerts/messages', { content: 'first @dave' });
  await eventually(async () => (await dave('GET', `/webhooks/${hook.webhookId}`)).body.data.consecutiveFailures === 1, 10_000);
  t.equal(hooksOf(f, 'dave').length, 2, 'NOTIFY_MAX_ATTEMPTS tries');
  const after1 = (await dave('GET', `/webhooks/${hook.webhookId}`)).body.data;
  t.match(after1, { status: 'active', consecutiveFailures: 1, lastError: /^HTTP 500/ });
  await eventually(async () => (await dave('GET', '/push/subscriptions')).body.data.subscriptions.length === 0, 5000);
  t.pass('the push service said 410: the subscription is gone');

  await alice('POST', '/rooms/alerts/messages', { content: 'second @dave' });
  await eventually(async () => (await dave('GET', `/webhooks/${hook.webhookId}`)).body.data.status === 'disabled', 10_000);
  const disabled = (await dave('GET', `/webhooks/${hook.webhookId}`)).body.data;
  t.match(disabled, { status: 'disabled', consecutiveFailures: 2, disabledReason: /2 deliveries in a row failed.*HTTP 500/, disabledAt: /Z$/ });
  t.notOk('secret' in disabled, 'the secret is not shown');

  await alice('POST', '/rooms/alerts/messages', { content: 'third @dave' });
  await sleep(2500);
  t.equal(hooksOf(f, 'dave').length, 4, 'a disabled webhook gets nothing more');

  const metrics = await (await fetch(`${f.srv.http}/metrics`)).text();
  t.match(metrics, /chat_notify_dead_letters_total\{channel="webhook"\} 2/);
  t.match(metrics, /chat_webhooks_disabled_total 1/);
  const logs = f.srv.output.filter((l) => l.includes('webhook delivery dead-lettered'));
  t.equal(logs.length, 2, 'a log line per dead letter');
  t.notOk(f.srv.output.some((l) => l.includes('whsec_')), 'no secret in any log line');

  const enabled = await dave('POST', `/webhooks/${hook.webhookId}/enable`);
  t.match(enabled.body.data, { status: 'active', consecutiveFailures: 0 });
});

t.test('notifications e2e - SSRF and malformed keys are refused with 400 by a real process; loopback only where config allows it', async (t) => {
  const f = await fixture(t);
  const bob = await f.as('bob');
  for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://10.0.0.1/hook', 'http://[fe80::1]/', 'ftp://93.184.216.34/x', 'file:///etc/passwd']) {
    const r = await bob('POST', '/webhooks', { url });
    t.equal(r.status, 400, `refused: ${url}`);
    t.equal(r.body.error?.code, 'bad_request');
  }
  t.equal((await bob('POST', '/webhooks', { url: f.hooks.url('/ok') })).status, 201, 'loopback: NOTIFY_ALLOW_NETWORKS allows it here');
  const sub = f.push.subscribe('bob');
  const bad = await bob('POST', '/push/subscriptions', { ...sub, keys: { ...sub.keys, p256dh: sub.keys.p256dh.slice(0, 40) } });
  t.equal(bad.status, 400, 'a truncated p256dh');
  t.equal(bad.body.error?.code, 'bad_request');
  t.equal((await bob('POST', '/push/subscriptions', { ...sub, keys: { ...sub.keys, auth: 'AAAA' } })).status, 400, 'a short auth');
  t.strictSame((await bob('GET', '/push/subscriptions')).body.data.subscriptions, [], 'nothing stored');

  const strict = await startChatProcess({ env: { ...ENV, NOTIFY_ALLOW_NETWORKS: '' } });
  t.teardown(async () => {
    await strict.kill();
    removeDir(strict.dataDir);
  });
  const bob2 = restClient(`${strict.http}/v1/chat`, await devToken('bob'));
  const loop = await bob2('POST', '/webhooks', { url: f.hooks.url('/ok') });
  t.equal(loop.status, 400, 'without the allow-list, loopback is refused');
  t.match(loop.body.error?.message, /127\.0\.0\.1/);
  t.equal((await bob2('POST', '/push/subscriptions', sub)).status, 400, 'a push endpoint on loopback too');
  t.equal(f.hooks.received.length, 0, 'no request reached the receiver');
});
