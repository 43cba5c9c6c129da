import t from 'tap';
import { startNatsServer } from './support/nats-server.ts';
import { startChatCluster } from './support/chat-cluster.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { signatureValid, startWebhookReceiver } from './support/webhook-receiver.ts';

/**
 * The notifier on JetStream: `chat api` is the notifier, a durable consumer of its own beside the
 * persister's. A kill -9 of the api while a notification waits in its collapse window: the new api
 * process gets the event once the dead one's ack wait ran out, and sends it once.
 */
const nats = await startNatsServer();
t.teardown(() => nats.destroy());
const hooks = await startWebhookReceiver();
t.teardown(() => hooks.close());
const ENV = { NOTIFY_ALLOW_NETWORKS: '127.0.0.0/8', NOTIFY_COLLAPSE_MS: '2000', NOTIFY_ACK_WAIT_MS: '1500', RATE_LIMIT_PER_SECOND: '100' };
const cluster = await startChatCluster({ natsUrl: nats.url, gateways: 1, persisters: 1, env: ENV });
t.teardown(() => cluster.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('notifications on NATS - one webhook for an offline mention, exactly one across a kill -9 of the notifier', async (t) => {
  const as = async (user: string) => restClient(`${cluster.api.http}/v1/chat`, await devToken(user));
  const alice = await as('alice');
  const bob = await as('bob');
  t.equal((await alice('POST', '/rooms', { roomId: 'dist', name: 'Dist', type: 'public' })).status, 201);
  t.equal((await bob('POST', '/rooms/dist/join')).status, 200);
  const hook = await bob('POST', '/webhooks', { url: hooks.url('/bob') });
  t.equal(hook.status, 201);

  const first = await alice('POST', '/rooms/dist/messages', { content: 'ping @bob' });
  t.equal(first.status, 201);
  await eventually(async () => hooks.received.length >= 1, 15_000);
  t.ok(signatureValid(hook.body.data.secret, hooks.received[0]!));
  t.equal(hooks.received[0]!.body.messages[0].messageId, first.body.data.message.messageId);

  const second = await alice('POST', '/rooms/dist/messages', { content: 'again @bob' });
  t.equal(second.status, 201);
  await sleep(500);
  t.equal(hooks.received.length, 1, 'the second waits in the collapse window');
  await cluster.api.kill();
  const api = await cluster.add('api');
  await eventually(async () => hooks.received.length >= 2, 20_000);
  await sleep(4000);
  t.equal(hooks.received.length, 2, 'exactly one more webhook, from the new api process');
  t.equal(hooks.received[1]!.body.messages[0].messageId, second.body.data.message.messageId);
  t.ok(signatureValid(hook.body.data.secret, hooks.received[1]!));
  t.ok(api.output.some((l) => l.includes('notification sent')), 'sent by the new process');
});
