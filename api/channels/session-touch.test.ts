import t from 'tap';
import type { Counter } from 'prom-client';
import type { InboundMessage } from '../../shared/channels/index.ts';
import type { MessageCommands, RoomCommands } from '../../shared/commands/index.ts';
import { ChatError } from '../../shared/protocol/index.ts';
import { createMemorySessionStore, type SessionStore } from '../../shared/sessions/index.ts';
import type { Store } from '../../shared/store/index.ts';
import { registry, silentLogger } from '../../shared/telemetry/index.ts';
import { createMemoryBus } from '../../shared/bus/index.ts';
import { ChannelInbox } from './inbox.ts';
import { SessionTouch } from './session-touch.ts';

const TENANT = 'acme';

async function counter(name: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(name) as Counter | undefined;
  if (metric === undefined) return 0;
  return (await metric.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

/** An inbox whose store knows every room and whose message command records what it was given. */
function inboxWith(t: import('tap').Test, sessions: SessionStore, now: () => number) {
  const sent: Array<{ content: string; metadata: Record<string, unknown> }> = [];
  const store = {
    notifiedOf: async () => new Set<string>(),
    markNotified: async () => {},
    getRoom: async () => ({ roomId: 'x' }),
  } as unknown as Store;
  const messages = {
    send: async (_who: unknown, input: { content: string; metadata: Record<string, unknown> }) => {
      sent.push(input);
      return { duplicate: false };
    },
  } as unknown as MessageCommands;
  const bus = createMemoryBus({ recoveryWindowSec: 60, maxMessages: 10 });
  t.teardown(() => bus.close());
  const inbox = new ChannelInbox({
    store, bus, rooms: {} as RoomCommands, messages, tenant: TENANT, log: silentLogger(), receivedRecordTtlMs: 1000, now,
    sessions: new SessionTouch(sessions, silentLogger(), now),
  });
  return { inbox, sent };
}

const msg = (id: string, extra: Partial<InboundMessage> = {}): InboundMessage => ({
  kind: 'message', platformMessageId: id, externalUserId: '15550001', externalUserName: 'Ann', type: 'text', content: id, attachments: [], metadata: {}, ...extra,
});

t.test('sessions - inbox: messages carry their session id; after SESSION_TTL of silence the next one starts a new session, counted', async (t) => {
  let clock = 1_700_000_000_000;
  const now = () => clock;
  const sessions = createMemorySessionStore({ ttlSec: 3600 }, { now });
  t.teardown(() => sessions.close());
  const { inbox, sent } = inboxWith(t, sessions, now);
  const startedBefore = await counter('chat_channel_sessions_started_total', { platform: 'whatsapp' });

  t.equal(await inbox.message('whatsapp', msg('wamid.1', { metadata: { button: { kind: 'button_reply', id: 'refund', title: 'Refund' } } })), 'stored');
  clock += 3_599_000;
  t.equal(await inbox.message('whatsapp', msg('wamid.2')), 'stored');
  const first = sent[0]!.metadata['sessionId'];
  t.type(first, 'string');
  t.equal(sent[1]!.metadata['sessionId'], first, 'within the TTL: the same session');
  t.match(await sessions.get({ tenant: TENANT, platform: 'whatsapp', externalUserId: '15550001' }), {
    sessionId: first, roomId: 'wa_15550001', inbound: 2, context: { lastInboundMessageId: 'wamid.2', lastButton: { id: 'refund', title: 'Refund' } },
  });
  t.equal(await counter('chat_channel_sessions_started_total', { platform: 'whatsapp' }) - startedBefore, 1);

  clock += 3_600_000;
  t.equal(await inbox.message('whatsapp', msg('wamid.3')), 'stored');
  const second = sent[2]!.metadata['sessionId'];
  t.type(second, 'string');
  t.not(second, first, 'an hour of silence later: a new session');
  t.match(await sessions.get({ tenant: TENANT, platform: 'whatsapp', externalUserId: '15550001' }), { sessionId: second, inbound: 1 });
  t.equal(await counter('chat_channel_sessions_started_total', { platform: 'whatsapp' }) - startedBefore, 2, 'each start counted');
});

t.test('sessions - inbox: a failing session store never fails the webhook; the message is stored without a session, the error counted', async (t) => {
  const broken: SessionStore = {
    kind: 'redis', ttlSec: 60,
    touchInbound: async () => { throw new ChatError('unavailable', 'redis down'); },
    touchOutbound: async () => { throw new ChatError('unavailable', 'redis down'); },
    get: async () => undefined, mergeContext: async () => undefined, close: async () => {},
  };
  const { inbox, sent } = inboxWith(t, broken, Date.now);
  const before = await counter('chat_channel_session_errors_total', { direction: 'inbound' });
  t.equal(await inbox.message('telegram', msg('1:1', { externalUserId: '77' })), 'stored');
  t.equal(sent.length, 1);
  t.notOk('sessionId' in sent[0]!.metadata);
  t.equal(await counter('chat_channel_session_errors_total', { direction: 'inbound' }) - before, 1);
  await new SessionTouch(broken, silentLogger()).outbound(TENANT, 'telegram', '77');
  t.equal(await counter('chat_channel_session_errors_total', { direction: 'outbound' }), 1, 'a reply\'s failed touch is counted, not thrown');
});
