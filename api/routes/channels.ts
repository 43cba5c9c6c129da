import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { Channel, Platform } from '../../shared/channels/index.ts';
import { SLACK_SIGNATURE_HEADER, SLACK_TIMESTAMP_HEADER, WHATSAPP_SIGNATURE_HEADER, TELEGRAM_SECRET_HEADER, MESSENGER_SIGNATURE_HEADER, TWILIO_SIGNATURE_HEADER } from '../../shared/channels/index.ts';
import type { RequestBody } from '../../shared/http/index.ts';
import { metrics } from '../../shared/telemetry/index.ts';
import type { Message } from '../../shared/domain/index.ts';
import type { RouteDeps } from '../deps.ts';
import { ChannelInbox } from '../channels/inbox.ts';
import { SessionTouch } from '../channels/session-touch.ts';

export const CHANNELS_PREFIX = '/v1/channels';
/** Platform webhooks are a few KB; a larger body is not one. */
const MAX_WEBHOOK_BYTES = 1024 * 1024;
const HubQuery = Type.Object({
  'hub.mode': Type.Optional(Type.String({ maxLength: 32 })),
  'hub.verify_token': Type.Optional(Type.String({ maxLength: 512 })),
  'hub.challenge': Type.Optional(Type.String({ maxLength: 1024 })),
});
const HEADERS: Record<Platform, string[]> = {
  whatsapp: [WHATSAPP_SIGNATURE_HEADER], telegram: [TELEGRAM_SECRET_HEADER], slack: [SLACK_SIGNATURE_HEADER, SLACK_TIMESTAMP_HEADER],
  messenger: [MESSENGER_SIGNATURE_HEADER], twilio: [TWILIO_SIGNATURE_HEADER],
};
/** Platforms that report what became of a reply through the same webhook. */
const WITH_STATUSES = new Set<Platform>(['whatsapp', 'messenger', 'twilio']);

async function readAll(body: RequestBody | undefined): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body ?? []) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * The platforms' webhooks, one per configured platform: `POST /v1/channels/{platform}/webhook`
 * (and WhatsApp's GET subscription check). They carry no token: the platform's signature or
 * secret header is checked over the raw body first, and a request that fails it is answered 401
 * with nothing parsed or stored. A verified body is answered 200 once its messages are in the
 * stream, so a platform that retries after an error gets them stored once (deduped on its ids).
 */
export function channelRoutes(deps: RouteDeps): void {
  const ch = deps.channels;
  if (!ch || ch.adapters.size === 0) return;
  const inbox = new ChannelInbox({ store: deps.store, receivedRecordTtlMs: ch.config.receivedRecordTtlMs, bus: deps.bus, rooms: deps.rooms, messages: deps.messages, tenant: ch.tenant, log: deps.log.child({ part: 'channels' }),
    // a platform's receipt can come back before the persister wrote the reply; the window has it from its acknowledgement
    history: async (key, q) => (await deps.reads.windows.history(key, q)).map((item) => JSON.parse(item.json) as Message),
    ...(deps.sessions ? { sessions: new SessionTouch(deps.sessions, deps.log.child({ part: 'channels' })) } : {}),
  });
  for (const [platform, channel] of ch.adapters) register(platform, channel);

  function register(platform: Platform, channel: Channel): void {
    const path = `${CHANNELS_PREFIX}/${platform}/webhook`;
    const tags = ['channels'];
    deps.server.binary({
      method: 'post', path, auth: false, tags, operationId: `${platform}Webhook`,
      summary: `${platform} webhook: inbound messages${WITH_STATUSES.has(platform) ? ' and delivery statuses' : ''} (README, Channels)`,
      description: `Verified by ${HEADERS[platform].join(' and ')} before anything is read from it; 401 otherwise.`,
      headers: HEADERS[platform],
      body: { contentType: channel.webhookContentType ?? 'application/json', maxBodyBytes: MAX_WEBHOOK_BYTES },
      errors: ['unauthorized'],
      handler: async ({ headers, body, rawQuery }) => {
        const raw = await readAll(body);
        const target = rawQuery ? `${path}?${rawQuery}` : path;
        try {
          channel.verify(headers, raw, target);
        } catch (err) {
          metrics.channelInbound.inc({ platform, outcome: 'refused' });
          throw err;
        }
        const answer = channel.immediate?.(raw);
        if (answer !== undefined) {
          const bytes = Buffer.from(answer);
          return { kind: 'bytes', status: 200, headers: [['Content-Type', 'text/plain; charset=utf-8']], size: bytes.length, body: Readable.from([bytes]) };
        }
        const counts = { stored: 0, duplicate: 0, status: 0, ignored: 0 };
        for (const event of channel.parse(raw, target)) {
          const outcome = event.kind === 'message' ? await inbox.message(platform, event) : await inbox.status(platform, event);
          if (event.kind === 'message' && event.ackId !== undefined && channel.acknowledge && !(await channel.acknowledge(event))) {
            deps.log.warn({ platform }, 'channel: the platform was not told a button press was taken');
          }
          counts[outcome]++;
          metrics.channelInbound.inc({ platform, outcome });
        }
        if (channel.webhookAnswer) {
          const bytes = Buffer.from(channel.webhookAnswer.body);
          return { kind: 'bytes', status: 200, headers: [['Content-Type', channel.webhookAnswer.contentType]], size: bytes.length, body: Readable.from([bytes]) };
        }
        return { kind: 'json', status: 200, data: counts };
      },
    });
    const handshake = channel.handshake;
    if (handshake === undefined) return;
    deps.server.binary({
      method: 'get', path, auth: false, tags, operationId: `${platform}WebhookVerify`,
      summary: `${platform} webhook subscription check: answers hub.challenge when hub.verify_token matches`,
      contentType: 'text/plain', errors: ['forbidden'],
      query: HubQuery,
      handler: async ({ query }) => {
        const params = new URLSearchParams();
        for (const [k, v] of Object.entries(query)) if (typeof v === 'string') params.set(k, v);
        const challenge = Buffer.from(handshake(params));
        return { kind: 'bytes', status: 200, headers: [['Content-Type', 'text/plain; charset=utf-8']], size: challenge.length, body: Readable.from([challenge]) };
      },
    });
  }
}
