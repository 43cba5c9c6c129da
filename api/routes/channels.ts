import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import { PLATFORMS, type Channel, type Platform } from '../../shared/channels/index.ts';
import { SLACK_SIGNATURE_HEADER, SLACK_TIMESTAMP_HEADER, WHATSAPP_SIGNATURE_HEADER, TELEGRAM_SECRET_HEADER, MESSENGER_SIGNATURE_HEADER, TWILIO_SIGNATURE_HEADER, TEAMS_AUTHORIZATION_HEADER } from '../../shared/channels/index.ts';
import { canonicalId, type Message } from '../../shared/domain/index.ts';
import type { RequestBody } from '../../shared/http/index.ts';
import { ChatError } from '../../shared/protocol/index.ts';
import { metrics } from '../../shared/telemetry/index.ts';
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
  messenger: [MESSENGER_SIGNATURE_HEADER], twilio: [TWILIO_SIGNATURE_HEADER], teams: [TEAMS_AUTHORIZATION_HEADER],
};
/** Platforms that report what became of a reply through the same webhook. */
const WITH_STATUSES = new Set<Platform>(['whatsapp', 'messenger', 'twilio']);
/** Platforms whose webhook has a GET subscription check (Meta's `hub.challenge`). */
const SUBSCRIPTION_CHECK: Record<Platform, boolean> = { whatsapp: true, telegram: false, slack: false, messenger: true, twilio: false, teams: false };
/** What each platform's webhook body is (for the OpenAPI document: the adapter is only known per request). */
const BODY_TYPE: Record<Platform, string> = {
  whatsapp: 'application/json', telegram: 'application/json', slack: 'application/json', messenger: 'application/json', twilio: 'application/x-www-form-urlencoded', teams: 'application/json',
};
const TenantParams = Type.Object({ tenantId: Type.String({ minLength: 1, maxLength: 128 }) });

async function readAll(body: RequestBody | undefined): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body ?? []) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * The platforms' webhooks: `POST /v1/channels/{platform}/webhook` for CHANNELS_TENANT (the
 * deployment's own credentials), and with CHANNELS_PER_TENANT `POST
 * /v1/channels/{platform}/webhook/{tenantId}` for each tenant's stored ones (and WhatsApp's GET
 * subscription check on both). They carry no token: the platform's signature or secret header is
 * checked over the raw body with the credentials of the tenant the path names, and a request that
 * fails it is answered 401 with nothing parsed or stored. A tenant that is unknown and one without
 * credentials for the platform are the same 404, so the path tells nothing more about a tenant. A
 * verified body is answered 200 once its messages are in the stream of that tenant's rooms, so a
 * platform that retries after an error gets them stored once (deduped on its ids).
 */
export function channelRoutes(deps: RouteDeps): void {
  const ch = deps.channels;
  if (!ch || !deps.channelDirectory) return;
  const directory = deps.channelDirectory;
  const envTenant = ch.tenant;
  const log = deps.log.child({ part: 'channels' });
  const sessions = deps.sessions && new SessionTouch(deps.sessions, log);
  const inbox = (tenant: string) => new ChannelInbox({
    store: deps.store, receivedRecordTtlMs: ch.config.receivedRecordTtlMs, bus: deps.bus, rooms: deps.rooms, messages: deps.messages, tenant, log,
    // a platform's receipt can come back before the persister wrote the reply; the window has it from its acknowledgement
    history: async (key, q) => (await deps.reads.windows.history(key, q)).map((item) => JSON.parse(item.json) as Message),
    ...(sessions ? { sessions } : {}),
  });

  /** The tenant the path names (CHANNELS_TENANT without one) and its adapter; 404 when it has none. */
  async function channelOf(platform: Platform, tenantId: string | undefined): Promise<{ tenant: string; channel: Channel }> {
    let tenant = envTenant;
    if (tenantId !== undefined) {
      try {
        tenant = canonicalId(tenantId, 'tenantId');
      } catch (err) {
        throw new ChatError('not_found', 'no such webhook', { cause: err });
      }
    }
    const channel = await directory.get(tenant, platform);
    if (channel === undefined) throw new ChatError('not_found', 'no such webhook');
    return { tenant, channel };
  }

  const platforms = ch.config.perTenant ? PLATFORMS : PLATFORMS.filter((p) => ch.adapters.has(p));
  for (const platform of platforms) {
    register(platform, false);
    if (ch.config.perTenant) register(platform, true);
  }

  function register(platform: Platform, perTenant: boolean): void {
    const path = `${CHANNELS_PREFIX}/${platform}/webhook${perTenant ? '/:tenantId' : ''}`;
    const whose = perTenant ? "the tenant's" : "the deployment's (CHANNELS_TENANT)";
    const id = perTenant ? `${platform}TenantWebhook` : `${platform}Webhook`;
    const tags = ['channels'];
    const tenantOfRequest = (params: object) => (perTenant ? (params as { tenantId: string }).tenantId : undefined);
    // what the adapter may check the request's own URL by (Twilio signs its query)
    const targetOf = (params: object, rawQuery: string) => {
      const own = perTenant ? `${CHANNELS_PREFIX}/${platform}/webhook/${encodeURIComponent((params as { tenantId: string }).tenantId)}` : path;
      return rawQuery ? `${own}?${rawQuery}` : own;
    };
    deps.server.binary({
      method: 'post', path, auth: false, tags, operationId: id,
      ...(perTenant ? { params: TenantParams } : {}),
      summary: `${platform} webhook${perTenant ? ' of a tenant' : ''}: inbound messages${WITH_STATUSES.has(platform) ? ' and delivery statuses' : ''} (README, Channels)`,
      description: `Verified by ${HEADERS[platform].join(' and ')} under ${whose} credentials before anything is read from it; 401 otherwise. 404 for a tenant without ${platform} credentials.`,
      headers: HEADERS[platform],
      body: { contentType: BODY_TYPE[platform], maxBodyBytes: MAX_WEBHOOK_BYTES },
      errors: ['unauthorized', 'not_found'],
      handler: async ({ params, headers, body, rawQuery }) => {
        const { tenant, channel } = await channelOf(platform, tenantOfRequest(params));
        const raw = await readAll(body);
        const target = targetOf(params, rawQuery);
        try {
          if (channel.verifyAsync) await channel.verifyAsync(headers, raw, target);
          else channel.verify(headers, raw, target);
        } catch (err) {
          // a key set that could not be read (Teams) is ours to fix, not a forged request
          if (err instanceof ChatError && err.code !== 'unauthorized') throw err;
          metrics.channelInbound.inc({ platform, outcome: 'refused' });
          throw err;
        }
        const answer = channel.immediate?.(raw);
        if (answer !== undefined) {
          const bytes = Buffer.from(answer);
          return { kind: 'bytes', status: 200, headers: [['Content-Type', 'text/plain; charset=utf-8']], size: bytes.length, body: Readable.from([bytes]) };
        }
        const counts = { stored: 0, duplicate: 0, status: 0, ignored: 0 };
        const into = inbox(tenant);
        for (const event of channel.parse(raw, target)) {
          const outcome = event.kind === 'message' ? await into.message(platform, event) : await into.status(platform, event);
          if (event.kind === 'message' && event.ackId !== undefined && channel.acknowledge && !(await channel.acknowledge(event))) {
            log.warn({ platform, tenant }, 'channel: the platform was not told a button press was taken');
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
    if (!SUBSCRIPTION_CHECK[platform]) return;
    deps.server.binary({
      method: 'get', path, auth: false, tags, operationId: `${id}Verify`,
      ...(perTenant ? { params: TenantParams } : {}),
      summary: `${platform} webhook subscription check${perTenant ? ' of a tenant' : ''}: answers hub.challenge when hub.verify_token matches`,
      contentType: 'text/plain', errors: ['forbidden', 'not_found'],
      query: HubQuery,
      handler: async ({ params, query }) => {
        const { channel } = await channelOf(platform, tenantOfRequest(params));
        if (channel.handshake === undefined) throw new ChatError('not_found', 'no such webhook');
        const search = new URLSearchParams();
        for (const [k, v] of Object.entries(query)) if (typeof v === 'string') search.set(k, v);
        const challenge = Buffer.from(channel.handshake(search));
        return { kind: 'bytes', status: 200, headers: [['Content-Type', 'text/plain; charset=utf-8']], size: challenge.length, body: Readable.from([challenge]) };
      },
    });
  }
}
