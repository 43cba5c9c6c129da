import t from 'tap';
import { createMemoryBus } from '../../shared/bus/index.ts';
import { createSqliteStore } from '../../shared/store/index.ts';
import { makeMessage } from '../../shared/store/store.contract.ts';
import { pino } from 'pino';
import type { RetryPolicy } from './attempts.ts';
import type { Notification } from './notification.ts';
import type { OutboundRequest, OutboundResponse } from './outbound-http.ts';
import { OutboundError } from './outbound-http.ts';
import { webhookChannel } from './webhook-channel.ts';
import { verifyWebhook } from './webhook-signature.ts';

function setup(t: import('tap').Test, answers: Record<string, Array<number | 'network'>>) {
  const store = createSqliteStore({ file: ':memory:' });
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 1000 });
  t.teardown(async () => { await bus.close(); await store.close(); });
  const requests: OutboundRequest[] = [];
  const sleeps: number[] = [];
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { lines.push(s); } });
  const post = async (req: OutboundRequest): Promise<OutboundResponse> => {
    requests.push(req);
    const next = answers[new URL(req.url).pathname]!.shift() ?? 200;
    if (next === 'network') throw new OutboundError('connect ECONNREFUSED');
    return { status: next, body: next === 200 ? '' : 'nope' };
  };
  const policy: RetryPolicy = {
    maxAttempts: 3, backoff: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0 },
    sleep: async (ms) => { sleeps.push(ms); }, running: () => true,
  };
  const channel = webhookChannel({ store, bus, post, policy, timeoutMs: 1000, disableAfter: 2, log });
  return { store, channel, requests, sleeps, lines };
}

const hook = (id: string, path: string, scope: 'user' | 'tenant' = 'user') => ({
  webhookId: id, tenant: 't1', scope, userId: scope === 'user' ? 'bob' : '', createdBy: 'bob',
  url: `https://93.184.216.34${path}?token=url-secret`, secret: `whsec_secret_of_${id}`, createdAt: new Date(0).toISOString(),
});

const note = (id = '1'): Notification => ({
  notificationId: `${id}.bob`, tenant: 't1', userId: 'bob', roomKey: 't1:general',
  room: { roomId: 'general', name: 'General', type: 'public' }, reason: 'mention',
  messages: [{ message: makeMessage('general', id, { content: 'hi @bob', mentions: ['bob'] }), reason: 'mention' }],
});

t.test('webhook channel - signs every try, retries 5xx and network errors with backoff, then succeeds; the tenant webhook gets it too', async (t) => {
  const f = setup(t, { '/own': [503, 'network', 200], '/tenant': [200] });
  await f.store.putWebhook(hook('wh_own', '/own'));
  await f.store.putWebhook(hook('wh_tenant', '/tenant', 'tenant'));
  await f.channel.send(note());
  const own = f.requests.filter((r) => r.url.includes('/own'));
  t.equal(own.length, 3, 'three tries');
  t.strictSame(f.sleeps, [100, 200], 'the shared backoff between them');
  for (const r of own) {
    t.ok(verifyWebhook('whsec_secret_of_wh_own', r.headers['x-chat-signature']!, r.headers['x-chat-timestamp']!, r.body, Date.now() / 1000), 'signed');
    t.equal(r.headers['x-chat-delivery'], '1.bob');
  }
  t.equal(f.requests.filter((r) => r.url.includes('/tenant')).length, 1, "the tenant's webhook");
  t.match((await f.store.getWebhook('t1', 'bob', 'wh_own'))!.health, { status: 'active', consecutiveFailures: 0, lastSuccessAt: /Z$/ });
});

t.test('webhook channel - a 4xx is not retried; dead letters count up to disabling, logged without secrets', async (t) => {
  const f = setup(t, { '/bad': [400, 500, 500, 500] });
  await f.store.putWebhook(hook('wh_bad', '/bad'));
  await f.channel.send(note('1'));
  t.equal(f.requests.length, 1, 'a 400 is final');
  t.match((await f.store.getWebhook('t1', 'bob', 'wh_bad'))!.health, { status: 'active', consecutiveFailures: 1, lastError: 'HTTP 400: nope' });
  await f.channel.send(note('2'));
  t.equal(f.requests.length, 4, 'then three tries of a 500');
  const health = (await f.store.getWebhook('t1', 'bob', 'wh_bad'))!.health;
  t.match(health, { status: 'disabled', consecutiveFailures: 2, disabledReason: /2 deliveries in a row failed; the last: HTTP 500/ });
  await f.channel.send(note('3'));
  t.equal(f.requests.length, 4, 'a disabled webhook gets nothing');
  const dead = f.lines.filter((l) => l.includes('webhook delivery dead-lettered'));
  t.equal(dead.length, 2);
  t.match(dead[0], /"origin":"https:\/\/93\.184\.216\.34"/);
  t.notOk(f.lines.some((l) => l.includes('whsec_') || l.includes('url-secret')), 'neither the secret nor the URL\'s query in any line');
});
