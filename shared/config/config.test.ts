import t from 'tap';
import { loadConfig, ConfigError, DEV_JWT_SECRET, DEFAULTS } from './config.ts';

t.test('config - defaults give the embedded mode with the seed defaults', async (t) => {
  const c = loadConfig({});
  t.equal(c.port, 8080);
  t.equal(c.bus.adapter, 'memory');
  t.equal(c.store.adapter, 'sqlite');
  t.equal(c.presence.adapter, 'memory');
  t.equal(c.limits.maxMessageLength, DEFAULTS.maxMessageLength);
  t.equal(c.ws.typingTimeoutMs, 3000);
  t.equal(c.ws.presenceTtlSec, 300);
  t.equal(c.ws.idleTimeoutSec, 600);
  t.equal(c.rateLimit.perSecond, 10);
  t.equal(c.auth.secret, DEV_JWT_SECRET);
  t.equal(c.auth.devTokens, true);
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.ws), 'frozen');
});

t.test('config - adapters follow the servers that are configured', async (t) => {
  const c = loadConfig({ NATS_URL: 'nats://a:4222, nats://b:4222', REDIS_URL: 'redis://127.0.0.1:6379', CASSANDRA_CONTACT_POINTS: '127.0.0.1' });
  t.same(c.bus, {
    adapter: 'nats', servers: ['nats://a:4222', 'nats://b:4222'], recoveryWindowSec: 86400,
    streamName: 'CHAT', replicas: 1, duplicateWindowSec: 120,
  });
  t.equal(c.presence.adapter, 'redis');
  t.equal(c.store.adapter, 'cassandra');
  t.equal(c.rateLimit.adapter, 'redis');
});

t.test('config - every bad value is reported by name, all at once', async (t) => {
  try {
    loadConfig({ PORT: 'eighty', MAX_MESSAGE_LENGTH: '0', LOG_LEVEL: 'loud', BUS: 'nats' });
    t.fail('should throw');
  } catch (err) {
    t.type(err, ConfigError);
    const msg = (err as Error).message;
    t.match(msg, /PORT: expected an integer, got "eighty"/);
    t.match(msg, /LOG_LEVEL: expected one of/);
    t.equal((err as ConfigError).problems.length, 3, 'PORT, MAX_MESSAGE_LENGTH and LOG_LEVEL (BUS is checked after)');
  }
  t.throws(() => loadConfig({ BUS: 'nats' }), /NATS_URL: required when BUS=nats/);
});

t.test('config - production refuses the development secret', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), /development secret is refused/);
  const c = loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'p'.repeat(40) });
  t.equal(c.auth.devTokens, false);
  t.throws(() => loadConfig({ JWT_SECRET: 'short' }), /at least 32 characters/);
  t.throws(() => loadConfig({ JWT_SECRET: 'p'.repeat(40), JWKS_URL: 'http://x' }), /set only one/);
});

t.test('config - the README documents every variable', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { ENV_SCHEMA } = await import('./config.ts');
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const name of Object.keys(ENV_SCHEMA)) t.match(readme, new RegExp('^\\| `' + name + '` \\|', 'm'), `${name} is in the README's table`);
});

t.test('config - each limit is a rule of its own: N/Ts rates and coalescing windows, bad values named', async (t) => {
  const d = loadConfig({});
  t.same(d.rateLimit.roomCreate, { perSecond: 10 / 60, burst: 10 }, 'room creation: 10/60s by default');
  t.same(d.rateLimit.membership, { perSecond: 3, burst: 30 });
  t.equal(d.ws.resumeMaxEvents, 1000);
  t.equal(d.ws.coalesceTypingMs, 1000);
  const c = loadConfig({ RATE_LIMIT_ROOM_CREATE: '3/60s', RATE_LIMIT_PING: '5/s', COALESCE_READ_MS: '0', RESUME_MAX_EVENTS: '50' });
  t.same(c.rateLimit.roomCreate, { perSecond: 0.05, burst: 3 });
  t.same(c.ws.pingRate, { perSecond: 5, burst: 5 });
  t.equal(c.rateLimit.coalesceReadMs, 0);
  t.equal(c.ws.resumeMaxEvents, 50);
  const err = t.throws(() => loadConfig({ RATE_LIMIT_MEMBERSHIP: 'fast', RATE_LIMIT_RESUME: '0/10s' })) as ConfigError;
  t.match(err.problems, [/RATE_LIMIT_MEMBERSHIP: expected N\/Ts/, /RATE_LIMIT_RESUME: expected N\/Ts/]);
});

t.test('config - tenant secrets: SECRETS_KEY, else a key file beside the embedded store, else none; bad keys named', async (t) => {
  const key = 'A'.repeat(43) + '=';
  t.same(loadConfig({ DATA_DIR: '/var/chat' }).secrets, { source: 'file', path: '/var/chat/secrets.key', previousKeys: [] });
  t.same(loadConfig({ SECRETS_KEY: key }).secrets, { source: 'env', key, previousKeys: [] });
  t.same(loadConfig({ CASSANDRA_CONTACT_POINTS: '127.0.0.1' }).secrets, { source: 'none', previousKeys: [] }, 'processes sharing a store cannot each make a key');
  const hex = 'ab'.repeat(32);
  t.same(loadConfig({ CASSANDRA_CONTACT_POINTS: '127.0.0.1', SECRETS_KEY: hex, SECRETS_KEY_PREVIOUS: key }).secrets, { source: 'env', key: hex, previousKeys: [key] });
  const err = t.throws(() => loadConfig({ SECRETS_KEY: 'too-short-a-key', SECRETS_KEY_PREVIOUS: `${key},nope` })) as ConfigError;
  t.match(err.problems, [/SECRETS_KEY: expected 32 bytes/, /SECRETS_KEY_PREVIOUS: expected 32 bytes/]);
  t.notOk(err.message.includes('too-short-a-key'), 'the value is not repeated');
  t.throws(() => loadConfig({ CASSANDRA_CONTACT_POINTS: '127.0.0.1', SECRETS_KEY_PREVIOUS: key }), /SECRETS_KEY: required with SECRETS_KEY_PREVIOUS/);
  t.equal(loadConfig({}).channels.perTenant, false, 'tenants\' stored channel credentials are opt-in');
  t.same(loadConfig({ TELEGRAM_API_BASE: 'http://127.0.0.1:9' }).channels.endpoints.telegram, { apiBase: 'http://127.0.0.1:9' }, 'endpoints without credentials');
});

t.test('config - Messenger and Twilio are on with their secret; Twilio needs the public webhook URL it signs', async (t) => {
  const off = loadConfig({});
  t.equal(off.channels.messenger, undefined);
  t.equal(off.channels.twilio, undefined);
  const on = loadConfig({
    MESSENGER_APP_SECRET: 's', TWILIO_AUTH_TOKEN: 'tok', TWILIO_WEBHOOK_URL: 'https://chat.example.com/v1/channels/twilio/webhook',
    TWILIO_ACCOUNT_SID: 'AC0123456789abcdef0123456789abcdef', TWILIO_FROM_NUMBER: '+15005550006',
  });
  t.match(on.channels.messenger, { appSecret: 's', apiBase: 'https://graph.facebook.com', apiVersion: DEFAULTS.whatsappApiVersion, pageAccessToken: undefined });
  t.match(on.channels.twilio, { authToken: 'tok', apiBase: 'https://api.twilio.com', fromNumber: '+15005550006', webhookUrl: 'https://chat.example.com/v1/channels/twilio/webhook' });
  t.throws(() => loadConfig({ TWILIO_AUTH_TOKEN: 'tok' }), /TWILIO_WEBHOOK_URL: required with TWILIO_AUTH_TOKEN/);
  t.throws(() => loadConfig({ TWILIO_AUTH_TOKEN: 'tok', TWILIO_WEBHOOK_URL: 'https://x/y', TWILIO_FROM_NUMBER: '15005550006' }), /TWILIO_FROM_NUMBER/);
});

t.test('config - Teams is on with its app password and needs its app id; Microsoft\'s endpoints by default', async (t) => {
  t.equal(loadConfig({}).channels.teams, undefined);
  t.equal(loadConfig({ TEAMS_APP_ID: 'abc' }).channels.teams, undefined, 'the id alone sends nothing');
  const on = loadConfig({ TEAMS_APP_ID: '00000000-1111-2222-3333-444444444444', TEAMS_APP_PASSWORD: 'pw' });
  t.same(on.channels.teams, {
    appId: '00000000-1111-2222-3333-444444444444', appPassword: 'pw', allowHttpServiceUrl: false,
    openIdMetadataUrl: 'https://login.botframework.com/v1/.well-known/openidconfiguration',
    tokenUrl: 'https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token',
  });
  t.same(on.channels.endpoints.teams, { openIdMetadataUrl: on.channels.teams!.openIdMetadataUrl, tokenUrl: on.channels.teams!.tokenUrl, allowHttpServiceUrl: false });
  t.throws(() => loadConfig({ TEAMS_APP_PASSWORD: 'pw' }), /TEAMS_APP_ID: required with TEAMS_APP_PASSWORD/);
  t.throws(() => loadConfig({ TEAMS_APP_ID: 'not an id!', TEAMS_APP_PASSWORD: 'pw' }), /TEAMS_APP_ID/);
});

t.test('config - attachment links: their own key, derived from JWT_SECRET unless set; PUBLIC_URL without a trailing slash', async (t) => {
  const jwt = 'j'.repeat(40);
  const derived = loadConfig({ JWT_SECRET: jwt, PUBLIC_URL: 'https://chat.example.com/' }).attachments.links;
  t.equal(derived.publicUrl, 'https://chat.example.com');
  t.equal(derived.ttlSec, 3600);
  t.ok(derived.secret && derived.secret !== jwt, 'a key of its own, not the token secret');
  t.equal(loadConfig({ JWT_SECRET: jwt }).attachments.links.secret, derived.secret, 'the same in every process with that JWT_SECRET');
  t.equal(loadConfig({ JWT_SECRET: jwt, ATTACHMENT_LINK_SECRET: 'k'.repeat(32) }).attachments.links.secret, 'k'.repeat(32));
  t.equal(loadConfig({ JWKS_URL: 'https://id.example.com/jwks' }).attachments.links.secret, undefined, 'no secret to derive it from');
  t.throws(() => loadConfig({ ATTACHMENT_LINK_SECRET: 'short' }), /ATTACHMENT_LINK_SECRET: must be at least 32/);
  t.throws(() => loadConfig({ PUBLIC_URL: 'chat.example.com' }), /PUBLIC_URL/);
});
