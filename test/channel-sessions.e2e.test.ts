import t from 'tap';
import { Redis } from 'ioredis';
import { startChatProcess, removeDir } from './support/chat-process.ts';
import { FAKE_BOT_TOKEN, startFakePlatforms, telegramMessageUpdate } from './support/fake-platforms.ts';
import { startRedisServer } from './support/redis-server.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * Issue 15, sessions end to end: `chat all` with Telegram pointed at a local fake and sessions in
 * a private Redis. A person's messages carry their session's id; the agents' replies count in it;
 * the tenant's staff read it and set its context; when it is gone (expired) the next message
 * starts a new one; and a Redis outage costs the webhook nothing.
 */
const TG_SECRET = 'tg_secret-sessions';
const SESSION_TTL = 120;

t.test('sessions - a Telegram conversation\'s session over its life, in Redis', async (t) => {
  const fake = await startFakePlatforms();
  const redis = await startRedisServer();
  const srv = await startChatProcess({
    env: {
      NODE_ID: '', NATS_URL: '', BUS: 'memory', STORE: 'sqlite', REDIS_URL: redis.url, SESSION_TTL: String(SESSION_TTL),
      TELEGRAM_BOT_TOKEN: FAKE_BOT_TOKEN, TELEGRAM_SECRET_TOKEN: TG_SECRET, TELEGRAM_API_BASE: fake.base,
      CHANNELS_RETRY_INITIAL_MS: '20', CHANNELS_RETRY_MAX_MS: '50',
    },
  });
  const raw = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
  raw.on('error', () => {}); // the outage below drops this connection too; its commands report their own errors
  await raw.connect();
  t.teardown(async () => {
    raw.disconnect();
    await srv.kill();
    removeDir(srv.dataDir);
    await fake.close();
    await redis.stop();
  });
  const telegram = async (messageId: number, text: string) => {
    const res = await fetch(`${srv.http}/v1/channels/telegram/webhook`, {
      method: 'POST', body: telegramMessageUpdate(messageId, 501, messageId, { text }), headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': TG_SECRET },
    });
    return { status: res.status, body: await res.json() as any };
  };
  const staff = restClient(`${srv.http}`, await devToken('ann', { roles: ['agent'] }));
  const member = restClient(`${srv.http}/v1/chat`, await devToken('ann', { roles: ['agent'] }));
  const session = () => staff('GET', '/v1/channels/sessions/telegram/501');
  const metadataOf = async (content: string) => eventually(async () => {
    const h = await member('GET', '/rooms/tg_501/messages?limit=50');
    return (h.body.data?.messages as Array<{ content: string; metadata?: Record<string, unknown> }> | undefined)?.find((m) => m.content === content)?.metadata;
  }, 10_000);
  // one sample by name and labels, read off the text format (the strict OpenMetrics reader refuses
  // the NaN an idle process's event-loop gauges may show)
  const metric = async (name: string, labels: Record<string, string>) => {
    const text = await (await fetch(`${srv.http}/metrics`)).text();
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${want}}`));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  };

  t.same((await telegram(1, 'hello')).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });
  const first = (await session()).body.data;
  t.match(first, { platform: 'telegram', externalUserId: '501', roomId: 'tg_501', inbound: 1, outbound: 0, context: { lastInboundMessageId: '501:1' } });
  t.equal((await metadataOf('hello'))?.['sessionId'], first.sessionId, 'the stored message carries its session id');
  const keys = await raw.keys('cs:*');
  t.same(keys, ['cs:{default:telegram:501}'], 'one hash, in the tenant the webhooks feed');
  const pttl = await raw.pttl(keys[0]!);
  t.ok(pttl > (SESSION_TTL - 10) * 1000 && pttl <= SESSION_TTL * 1000, `expires SESSION_TTL after the message (${pttl} ms)`);

  // an agent answers: the reply goes out and counts in the session
  t.equal((await member('POST', '/rooms/tg_501/join')).status, 200);
  t.equal((await member('POST', '/rooms/tg_501/messages', { content: 'hi, how can I help?' })).status, 201);
  await eventually(async () => (await session()).body.data?.outbound === 1, 10_000);
  t.equal(fake.sends.filter((s) => s.body?.text === 'hi, how can I help?').length, 1);

  // the staff's context; another tenant's agent finds nothing under the same ids
  t.same((await staff('PATCH', '/v1/channels/sessions/telegram/501', { context: { intent: 'support' } })).body.data?.context,
    { lastInboundMessageId: '501:1', intent: 'support' });
  t.match((await member('GET', '/rooms/tg_501/session')).body.data, { sessionId: first.sessionId, inbound: 1, outbound: 1, context: { intent: 'support' } });
  const globex = restClient(`${srv.http}`, await devToken('ann', { tenant: 'globex', roles: ['agent'] }));
  t.equal((await globex('GET', '/v1/channels/sessions/telegram/501')).status, 404, 'globex\'s agent: no such session');
  t.equal((await restClient(`${srv.http}`, await devToken('bob'))('GET', '/v1/channels/sessions/telegram/501')).status, 403, 'a user without a staff role');

  // the session expires (its key is gone, as after SESSION_TTL): the next message starts another
  const startedBefore = await metric('chat_channel_sessions_started_total', { platform: 'telegram' });
  await raw.del(keys[0]!);
  t.equal((await session()).status, 404);
  t.same((await telegram(2, 'back again')).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });
  const second = (await session()).body.data;
  t.not(second.sessionId, first.sessionId, 'a new session');
  t.match(second, { inbound: 1, outbound: 0 });
  t.same(second.context, { lastInboundMessageId: '501:2' }, 'the old context went with the old session');
  t.equal((await metadataOf('back again'))?.['sessionId'], second.sessionId);
  t.equal(await metric('chat_channel_sessions_started_total', { platform: 'telegram' }) - startedBefore, 1, 'counted');

  // Redis goes away: the webhook is still answered 200 and the message stored, without a session
  const errorsBefore = await metric('chat_channel_session_errors_total', { direction: 'inbound' });
  await redis.kill();
  t.same((await telegram(3, 'while redis is down')).body.data, { stored: 1, duplicate: 0, status: 0, ignored: 0 });
  const during = await metadataOf('while redis is down');
  t.ok(during, 'stored');
  t.notOk(during && 'sessionId' in during, 'without a session id');
  t.equal(await metric('chat_channel_session_errors_total', { direction: 'inbound' }) - errorsBefore, 1, 'the failed touch is counted');
  t.match(await session(), { status: 503, body: { error: { code: 'unavailable' } } }, 'the staff read says so');

  // Redis is back (empty): the next message starts a session again
  await redis.restart();
  const back = await eventually(async () => {
    const r = await telegram(4 + Math.floor(Math.random() * 1e6), 'after the outage');
    return r.status === 200 && (await session()).body.data;
  }, 15_000);
  t.match(back, { roomId: 'tg_501' }, 'sessions work again without a restart');
});
