import { generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { FAKE_TEAMS_APP_ID, FAKE_TEAMS_PASSWORD, startFakeTeams, teamsActivity, type FakeTeams } from '../../test/support/fake-teams.ts';
import type { InboundMessage } from './channel.ts';
import type { ChannelsConfig } from '../config/index.ts';
import { teamsChannel, teamsPersonId, type TeamsConfig } from './teams-channel.ts';
import { credentialProblem, tenantChannel } from './tenant-credentials.ts';
import { errorCodeOf } from '../../test/support/error-code.ts';

const cfg = (fake: FakeTeams, extra: Partial<TeamsConfig> = {}): TeamsConfig => ({
  appId: FAKE_TEAMS_APP_ID, appPassword: FAKE_TEAMS_PASSWORD, openIdMetadataUrl: fake.metadataUrl, tokenUrl: fake.tokenUrl,
  allowHttpServiceUrl: true, httpTimeoutMs: 2000, jwksCooldownMs: 0, ...extra,
});
const code = errorCodeOf;

t.test('teams - verify takes only a Bot Connector token for this app and this serviceUrl', async (t) => {
  const fake = await startFakeTeams();
  t.teardown(() => fake.close());
  const ch = teamsChannel(cfg(fake));
  const body = Buffer.from(JSON.stringify(teamsActivity(fake.base)));
  const verify = async (token: string | undefined, raw = body) => code(ch.verifyAsync!(token === undefined ? {} : { authorization: `Bearer ${token}` }, raw));
  t.equal(await verify(await fake.sign()), 'none', 'good token');
  t.equal(await verify(undefined), 'unauthorized', 'no token');
  t.equal(await verify('not-a-jwt'), 'unauthorized', 'not a JWT');
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  t.equal(await verify(await fake.sign({ key: stranger })), 'unauthorized', 'signed by a key not in the set (same kid)');
  t.equal(await verify(await fake.sign({ aud: 'another-bot' })), 'unauthorized', 'another app\'s audience');
  t.equal(await verify(await fake.sign({ iss: 'https://sts.windows.net/x/' })), 'unauthorized', 'another issuer');
  t.equal(await verify(await fake.sign({ expSec: -600 })), 'unauthorized', 'expired beyond the 5 minutes of skew');
  t.equal(await verify(await fake.sign({ expSec: -120 })), 'none', 'expired within the 5 minutes of skew');
  t.equal(await verify(await fake.sign({ serviceurl: 'https://smba.trafficmanager.net/amer/' })), 'unauthorized', 'serviceurl claim is not the body\'s');
  const moved = Buffer.from(JSON.stringify(teamsActivity('https://evil.example/')));
  t.equal(await verify(await fake.sign(), moved), 'unauthorized', 'the body names another serviceUrl than the token');
  const otherChannel = Buffer.from(JSON.stringify(teamsActivity(fake.base, { channelId: 'webchat' })));
  t.equal(await verify(await fake.sign(), otherChannel), 'unauthorized', 'an activity of a channel the signing key is not endorsed for (the keys endorse msteams)');
  t.equal(ch.platform, 'teams');
  t.throws(() => ch.verify({}, body), 'the synchronous check never passes a Teams activity');
});

t.test('teams - a key the set does not hold yet is fetched once the key set is downloaded again', async (t) => {
  const fake = await startFakeTeams();
  t.teardown(() => fake.close());
  const ch = teamsChannel(cfg(fake));
  const body = Buffer.from(JSON.stringify(teamsActivity(fake.base)));
  t.equal(await code(ch.verifyAsync!({ authorization: `Bearer ${await fake.sign()}` }, body)), 'none');
  t.equal(await code(ch.verifyAsync!({ authorization: `Bearer ${await fake.sign()}` }, body)), 'none');
  t.equal(fake.jwksFetches(), 1, 'the key set is kept');
  fake.rotate(true);
  t.equal(await code(ch.verifyAsync!({ authorization: `Bearer ${await fake.sign()}` }, body)), 'none', 'signed by the new key');
  t.equal(fake.jwksFetches(), 2, 'downloaded again for the unknown kid');
  t.equal(await code(ch.verifyAsync!({ authorization: `Bearer ${await fake.sign({ kid: 'never-published' })}` }, body)), 'unauthorized', 'a kid no download has');
});

t.test('teams - the key set being unreachable is unavailable, not unauthorized', async (t) => {
  const ch = teamsChannel({ appId: FAKE_TEAMS_APP_ID, appPassword: 'x', openIdMetadataUrl: 'http://127.0.0.1:9/openid', tokenUrl: 'http://127.0.0.1:9/token', allowHttpServiceUrl: true, httpTimeoutMs: 500 });
  t.equal(await code(ch.verifyAsync!({ authorization: 'Bearer a.b.c' }, Buffer.from('{}'))), 'unavailable');
});

t.test('teams - parse: messages with the bot mention stripped, files, card submits; other activities skipped', async (t) => {
  const fake = await startFakeTeams();
  t.teardown(() => fake.close());
  const ch = teamsChannel(cfg(fake));
  const parse = (fields: Record<string, unknown>) => ch.parse(Buffer.from(JSON.stringify(teamsActivity(fake.base, fields))));
  const [m] = parse({}) as InboundMessage[];
  t.match(m, {
    kind: 'message', platformMessageId: '1733360000000', externalUserId: 'a1b2c3d4-0000-4000-8000-000000000001', externalUserName: 'Ada Lovelace',
    type: 'text', content: 'Hello from Teams', attachments: [], metadata: { platform: 'teams', conversationType: 'personal' },
  });
  t.type(m!.conversation, 'string');

  const [mention] = parse({
    text: '<at>Support Bot</at> where is my order?',
    entities: [{ type: 'mention', text: '<at>Support Bot</at>', mentioned: { id: `28:${FAKE_TEAMS_APP_ID}`, name: 'Support Bot' } }],
  }) as InboundMessage[];
  t.equal(mention!.content, 'where is my order?');
  const [other] = parse({
    text: 'ask <at>Grace</at> please',
    entities: [{ type: 'mention', text: '<at>Grace</at>', mentioned: { id: '29:grace', name: 'Grace' } }],
  }) as InboundMessage[];
  t.equal(other!.content, 'ask <at>Grace</at> please', 'someone else\'s mention stays');

  const [files] = parse({
    text: '',
    attachments: [
      { contentType: 'image/png', contentUrl: 'https://smba.trafficmanager.net/amer/v3/attachments/x/views/original', name: 'shot.png' },
      { contentType: 'application/vnd.microsoft.teams.file.download.info', name: 'report.pdf', content: { downloadUrl: 'https://contoso.sharepoint.com/report.pdf', uniqueId: 'u1', fileType: 'pdf' } },
      { contentType: 'text/html', content: '<div>hi</div>' },
      { contentType: 'application/vnd.microsoft.card.adaptive', content: {} },
    ],
  }) as InboundMessage[];
  t.equal(files!.type, 'image');
  t.same(files!.attachments, [
    { id: '1733360000000:0', type: 'image', url: 'https://smba.trafficmanager.net/amer/v3/attachments/x/views/original', mimeType: 'image/png', fileName: 'shot.png' },
    { id: '1733360000000:1', type: 'file', url: 'https://contoso.sharepoint.com/report.pdf', fileName: 'report.pdf' },
  ]);

  const [submit] = parse({ text: undefined, value: { action: 'confirm', orderId: 42 } }) as InboundMessage[];
  t.match(submit!.metadata, { platformType: 'card_submit', button: { kind: 'card_submit', payload: { action: 'confirm', orderId: 42 } } });
  t.equal(submit!.content, '{"action":"confirm","orderId":42}');

  t.same(parse({ type: 'conversationUpdate', membersAdded: [{ id: 'x' }] }), []);
  t.same(parse({ type: 'typing' }), []);
  t.same(parse({ type: 'messageReaction', reactionsAdded: [{ type: 'like' }] }), []);
  t.same(parse({ text: '' }), [], 'nothing to show');
  t.throws(() => ch.parse(Buffer.from('not json')), { code: 'bad_request' });
  t.throws(() => ch.parse(Buffer.from('{"hello":1}')), { code: 'bad_request' });

  t.equal(teamsPersonId({ id: '29:1abc:def' })!.length, 42, 'a Teams id that cannot name a room is digested');
  t.equal(teamsPersonId({ id: '29:1abc:def' }), teamsPersonId({ id: '29:1abc:def' }), 'the same person, the same room');
});

t.test('teams - send: one token for many sends, a 401 renews it once, 429 and 5xx retryable, other 4xx final', async (t) => {
  const fake = await startFakeTeams();
  t.teardown(() => fake.close());
  const ch = teamsChannel(cfg(fake));
  const [m] = ch.parse(Buffer.from(JSON.stringify(teamsActivity(fake.base)))) as InboundMessage[];
  const out = { externalUserId: m!.externalUserId, content: 'Hi Ada', messageId: '100', conversation: m!.conversation! };

  t.match(await ch.send(out), { kind: 'sent', platformMessageId: '1:out-2' });
  t.match(await ch.send({ ...out, media: [{ type: 'image', url: 'https://files.example/a.png', mimeType: 'image/png', fileName: 'a.png' }] }), { kind: 'sent' });
  const sends = fake.requests.filter((r) => r.kind === 'send');
  t.equal(fake.requests.filter((r) => r.kind === 'token').length, 1, 'the token is kept');
  t.equal(sends[0]!.path, `/v3/conversations/${encodeURIComponent('a:1VeryLongOpaqueConversationIdForThePersonalChatWithTheBot_0123456789')}/activities`);
  t.equal(sends[0]!.authorization, `Bearer ${fake.issued[0]}`);
  t.same(sends[0]!.body, { type: 'message', text: 'Hi Ada', textFormat: 'plain' });
  t.same(sends[1]!.body.attachments, [{ contentType: 'image/png', contentUrl: 'https://files.example/a.png', name: 'a.png' }]);
  t.match(fake.requests[0]!.body, { grant_type: 'client_credentials', client_id: FAKE_TEAMS_APP_ID, scope: 'https://api.botframework.com/.default' });

  fake.failSends(401);
  t.match(await ch.send(out), { kind: 'sent' }, 'renewed after a 401');
  t.equal(fake.issued.length, 2, 'a new token');
  t.equal(fake.requests.at(-1)!.authorization, `Bearer ${fake.issued[1]}`);

  fake.failSends(401, 401);
  t.match(await ch.send(out), { kind: 'failed', retryable: false }, 'a second 401 is final');
  fake.failSends(429);
  t.match(await ch.send(out), { kind: 'failed', retryable: true, retryAfterMs: 0 });
  fake.failSends(500);
  t.match(await ch.send(out), { kind: 'failed', retryable: true });
  fake.failSends(404);
  t.match(await ch.send(out), { kind: 'failed', retryable: false, error: /ConversationNotFound/ });
});

t.test('teams - send refuses a forged, missing or plain-http conversation and reports token failures', async (t) => {
  const fake = await startFakeTeams();
  t.teardown(() => fake.close());
  const [m] = teamsChannel(cfg(fake)).parse(Buffer.from(JSON.stringify(teamsActivity(fake.base)))) as InboundMessage[];
  const out = { externalUserId: m!.externalUserId, content: 'Hi', messageId: '1', conversation: m!.conversation! };

  const strict = teamsChannel(cfg(fake, { allowHttpServiceUrl: false }));
  t.match(await strict.send(out), { kind: 'failed', retryable: false, error: /https/ });
  const ch = teamsChannel(cfg(fake));
  t.match(await ch.send({ ...out, conversation: undefined }), { kind: 'failed', retryable: false, error: /no conversation/ });
  const forged = Buffer.from(JSON.stringify({ s: 'https://attacker.example', c: 'x' })).toString('base64url');
  t.match(await ch.send({ ...out, conversation: `${forged}.${out.conversation.split('.')[1]}` }), { kind: 'failed', retryable: false }, 'a reference not sealed by us');
  t.match(await teamsChannel(cfg(fake, { appPassword: 'another' })).send(out), { kind: 'failed', retryable: false }, 'sealed under another password');
  t.equal(fake.requests.length, 0, 'nothing was sent');

  fake.failTokens(503);
  t.match(await ch.send(out), { kind: 'failed', retryable: true, error: /token endpoint/ });
  const wrongPassword = teamsChannel({ ...cfg(fake), appPassword: 'wrong' });
  const [m2] = wrongPassword.parse(Buffer.from(JSON.stringify(teamsActivity(fake.base)))) as InboundMessage[];
  t.match(await wrongPassword.send({ ...out, conversation: m2!.conversation! }), { kind: 'failed', retryable: false, error: /invalid_client/ });
});

t.test('teams - adapters rebuilt for the same bot (a tenant\'s, every directory TTL) share its token and the key set', async (t) => {
  const fake = await startFakeTeams();
  t.teardown(() => fake.close());
  const secrets = { 'teams.appId': FAKE_TEAMS_APP_ID, 'teams.appPassword': FAKE_TEAMS_PASSWORD };
  const channels = { endpoints: { teams: { openIdMetadataUrl: fake.metadataUrl, tokenUrl: fake.tokenUrl, allowHttpServiceUrl: true } }, httpTimeoutMs: 2000 } as unknown as ChannelsConfig;
  const a = tenantChannel('teams', secrets, channels)!;
  const b = tenantChannel('teams', secrets, channels)!;
  t.equal(a.platform, 'teams');
  t.equal(tenantChannel('teams', { 'teams.appId': FAKE_TEAMS_APP_ID }, channels), undefined, 'the password is required');
  t.equal(tenantChannel('teams', { ...secrets, 'teams.appId': 'not an id!' }, channels), undefined, 'an app id of another form is not one');
  t.match(credentialProblem('teams.appId', 'not an id!'), /teams.appId/);
  const body = Buffer.from(JSON.stringify(teamsActivity(fake.base)));
  const [m] = a.parse(body) as InboundMessage[];
  for (const ch of [a, b]) {
    t.equal(await code(ch.verifyAsync!({ authorization: `Bearer ${await fake.sign()}` }, body)), 'none');
    t.match(await ch.send({ externalUserId: m!.externalUserId, content: 'hi', messageId: '1', conversation: m!.conversation! }), { kind: 'sent' });
  }
  t.equal(fake.requests.filter((r) => r.kind === 'token').length, 1, 'one token for both');
  t.equal(fake.jwksFetches(), 1, 'one key set download for both');
});
