import type { AuthConfig, ChannelsConfig, HistoryConfig, NotifyConfig, TenantsConfig } from '../shared/config/index.ts';
import type { Store } from '../shared/store/index.ts';
import type { Bus } from '../shared/bus/index.ts';
import type { Presence } from '../shared/presence/index.ts';
import type { MessageCommands, RoomCommands, RoomGuard } from '../shared/commands/index.ts';
import type { HttpServer } from '../shared/http/index.ts';
import type { Logger } from '../shared/telemetry/index.ts';
import type { RateLimiter, RateRule } from '../shared/rate-limit/index.ts';
import type { HistoryReads } from './history-reads.ts';
import type { AiConfig } from '../shared/config/index.ts';
import type { AiAsker, Assistant } from '../shared/ai/index.ts';
import type { Objects } from '../shared/objects/index.ts';
import type { Channel, ChannelDirectory, Platform } from '../shared/channels/index.ts';
import type { SecretCipher, TenantSecrets } from '../shared/secrets/index.ts';
import type { SessionStore } from '../shared/sessions/index.ts';

/** What the api tier is built from; `startApi` receives it and hands it to each route group. */
export interface ApiDeps {
  server: HttpServer;
  /** Only the dev-token route reads it (whether the dev secret is in use). */
  auth: AuthConfig;
  store: Store;
  bus: Bus;
  presence: Presence;
  rooms: RoomCommands;
  messages: MessageCommands;
  /** Who may read or act in a room, for routes that are not commands themselves (history, search). */
  guard: RoomGuard;
  log: Logger;
  /** The history windows' bounds (HISTORY_WINDOW_*); the defaults when not given. */
  history?: HistoryConfig;
  /** Per-user presence changes over REST (RATE_LIMIT_PRESENCE); none: unlimited. */
  presenceRate?: { limiter: RateLimiter; rule: RateRule };
  /**
   * The assistant: AI_* config, the provider chain and the limiter of AI requests. With it the
   * process runs AI workers (every api process does); `/v1/chat/ai/ask` is served either way.
   */
  ai?: { config: AiConfig; assistant: Assistant; rateLimiter: RateLimiter };
  /**
   * NOTIFY_*, WEBHOOK_* and VAPID_* config. With it the process runs a notifier (every api process
   * does: they share its durable consumer); the notification, webhook and push routes are served
   * either way (without it no URL may point at a private network and Web Push is off).
   */
  notify?: NotifyConfig;
  /**
   * Attachments: where files are stored, MAX_FILE_SIZE, and how long presigned URLs live (when the
   * objects adapter offers them). Without it the attachment routes are not served. `links`: how
   * links for messaging platforms are made (api/attachment-links.ts); without a secret, the signed
   * download route is not served.
   */
  attachments?: {
    objects: Objects; maxFileSize: number; presignTtlSec?: number;
    links?: { publicUrl: string | undefined; secret: string | undefined; ttlSec: number; now?: () => number };
  };
  /** Tenants' default quotas (TENANT_*); without it every default is 0 (unlimited). */
  tenants?: TenantsConfig;
  /**
   * Messaging platforms (CHANNELS_*, WHATSAPP_*, TELEGRAM_*): `adapters` are the deployment's own
   * credentials, for `tenant`; with `config.perTenant` every tenant's stored credentials are served
   * too. With some, webhooks are served and the process runs a channel sender (api processes share
   * its durable consumer). None: neither.
   */
  channels?: { adapters: Map<Platform, Channel>; tenant: string; config: ChannelsConfig };
  /**
   * What tenant secrets are sealed with at rest (SECRETS_KEY, or the embedded key file). None: no
   * secret can be written (503), and only ones stored before sealing existed can be read.
   */
  secrets?: SecretCipher;
  /**
   * Channel users' sessions (SESSION_TTL), touched by the channel inbox and sender and read by the
   * tenant's staff. None: no sessions, and their routes are not served.
   */
  sessions?: SessionStore;
}

/** What each route group is given: the tier's deps and what `startApi` builds from them once. */
export interface RouteDeps extends ApiDeps {
  reads: HistoryReads;
  /** Tenant records with their secrets opened on read and sealed on write. */
  tenantSecrets: TenantSecrets;
  /** Each tenant's channel adapters, when channels are served. */
  channelDirectory: ChannelDirectory | undefined;
  asking: { asker: AiAsker; maxQuestionLength: number };
}

export const CHAT_PREFIX = '/v1/chat';
