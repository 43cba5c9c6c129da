import { hkdfSync } from 'node:crypto';
import { join } from 'node:path';
import { readEnv, ConfigError, type Rate, type VarSpec } from './env-schema.ts';
import { parseSecretKey } from '../secrets/secret-key.ts';

/** The development signing secret; start refuses it when NODE_ENV=production. */
export const DEV_JWT_SECRET = 'chat-svc-dev-secret-change-me-0123456789';

/** The embedded mode's secrets key file, in DATA_DIR, when SECRETS_KEY is not set. */
export const SECRETS_KEY_FILE = 'secrets.key';

export const DEFAULTS = {
  port: 8080,
  maxMessageLength: 5000,
  maxPayloadBytes: 64 * 1024,
  maxBackpressureBytes: 1024 * 1024,
  typingTimeoutMs: 3000,
  presenceTtlSec: 300,
  websocketIdleTimeoutSec: 600,
  rateLimitPerSecond: 10,
  rateLimitBurst: 20,
  persistIntervalMs: 100,
  persistBatchMax: 1000,
  persistMaxDeliver: 5,
  /**
   * Short, because a persister keeps the batch it holds in progress every half of it while
   * writing: only a dead or frozen persister's events wait this long for another one.
   */
  persistAckWaitMs: 2000,
  resumeSkewMs: 5000,
  /**
   * Time a draining gateway gives its clients to move on their own after the `reconnect` frame,
   * before it closes the rest with 1001. With the shutdown margin (SHUTDOWN_MARGIN_MS) it stays
   * under Kubernetes' default terminationGracePeriodSeconds of 30 s.
   */
  drainGraceMs: 10_000,
  recoveryWindowSec: 24 * 3600,
  memoryStreamMaxMessages: 200_000,
  /** Bytes of events the in-process stream holds at most, in MiB (events, payload and bookkeeping). */
  memoryStreamMaxMb: 64,
  /** Bytes of a message's metadata as JSON (UTF-8); the repro of issue 12 #5 sent 60 KB on each message. */
  maxMetadataBytes: 8 * 1024,
  natsStream: 'CHAT',
  natsStreamReplicas: 1,
  natsDuplicateWindowSec: 120,
  httpBodyLimitBytes: 256 * 1024,
  historyWindowMessages: 200,
  historyWindowRooms: 10_000,
  historyWindowMb: 64,
  historyWindowIdleSec: 300,
  authCacheTokens: 10_000,
  authCacheTtlSec: 30,
  resumeMaxEvents: 1000,
  /** Per user: rooms created (REST, and `/ws?room=` on first use). */
  roomCreateRate: { perSecond: 10 / 60, burst: 10 },
  /** Per user: joins, leaves and archives (frames and REST). */
  membershipRate: { perSecond: 30 / 10, burst: 30 },
  /** Per user: room settings, invitations, kicks, roles, mutes and bans (REST). */
  roomAdminRate: { perSecond: 30 / 10, burst: 30 },
  /** Per user: `resume` frames (each replays at most RESUME_MAX_EVENTS). */
  resumeRate: { perSecond: 10 / 60, burst: 10 },
  /** Per socket: `ping` frames. */
  pingRate: { perSecond: 30 / 10, burst: 30 },
  /** Per user: presence set over REST (the frame is coalesced instead). */
  presenceRate: { perSecond: 10 / 10, burst: 10 },
  coalesceTypingMs: 1000,
  coalescePresenceMs: 1000,
  coalesceReadMs: 1000,
  aiProviders: ['local'],
  openaiBaseUrl: 'https://api.openai.com/v1',
  openaiModel: 'gpt-4o-mini',
  geminiBaseUrl: 'https://generativelanguage.googleapis.com/v1beta',
  geminiModel: 'gemini-2.0-flash',
  /** Seed 000: AI_RESPONSE_TIMEOUT=10000. */
  aiResponseTimeoutMs: 10_000,
  aiRatePerMinute: 20,
  aiMaxQuestionLength: 4000,
  aiContextTtlSec: 3600,
  aiContextTurns: 10,
  aiRoomContextMessages: 30,
  aiSummaryMessages: 50,
  notifyCollapseMs: 2000,
  notifyAckWaitMs: 30_000,
  notifyMaxAgeSec: 3600,
  notifyMaxAttempts: 5,
  notifyRetryInitialMs: 1000,
  notifyRetryMaxMs: 60_000,
  notifyHttpTimeoutMs: 5000,
  whatsappApiBase: 'https://graph.facebook.com',
  whatsappApiVersion: 'v21.0',
  telegramApiBase: 'https://api.telegram.org',
  slackApiBase: 'https://slack.com',
  messengerApiBase: 'https://graph.facebook.com',
  twilioApiBase: 'https://api.twilio.com',
  teamsOpenIdMetadataUrl: 'https://login.botframework.com/v1/.well-known/openidconfiguration',
  teamsTokenUrl: 'https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token',
  channelsMaxAttempts: 5,
  channelsRetryInitialMs: 1000,
  channelsRetryMaxMs: 60_000,
  channelsHttpTimeoutMs: 10_000,
  channelsAckWaitMs: 30_000,
  /** Seed 003: SESSION_TTL = 3600. */
  sessionTtlSec: 3600,
  webhookDisableAfter: 5,
  pushTtlSec: 86_400,
  /** Pieces of a room answer are gathered this long into one frame: a frame per token would cost every gateway a publish per token. */
  aiStreamFlushMs: 100,
  /** Seed 000: MAX_FILE_SIZE=10485760. */
  maxFileSizeBytes: 10 * 1024 * 1024,
  s3Region: 'us-east-1',
  /** Long enough for a slow upload of MAX_FILE_SIZE to start, short enough that a leaked URL soon stops working. */
  s3PresignTtlSec: 300,
  attachmentLinkTtlSec: 3600,
} as const;

export const AI_PROVIDER_CHOICES = ['openai', 'gemini', 'local'] as const;
export type AiProviderChoice = (typeof AI_PROVIDER_CHOICES)[number];

export const CASSANDRA_CONSISTENCIES = ['ONE', 'LOCAL_ONE', 'QUORUM', 'LOCAL_QUORUM', 'EACH_QUORUM', 'ALL'] as const;
export type CassandraConsistency = (typeof CASSANDRA_CONSISTENCIES)[number];

export const ENV_SCHEMA = {
  NODE_ENV: { kind: 'enum', values: ['development', 'production', 'test'], default: 'development', doc: 'production refuses the dev JWT secret' },
  HOST: { kind: 'string', default: '0.0.0.0', doc: 'address to listen on' },
  PORT: { kind: 'int', default: DEFAULTS.port, min: 0, max: 65535, doc: 'HTTP + WebSocket port (0 picks a free one)' },
  LOG_LEVEL: { kind: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], default: 'info', doc: 'pino log level' },
  DATA_DIR: { kind: 'string', default: './data', doc: 'where the embedded SQLite store lives' },
  NODE_ID: { kind: 'int', min: 0, max: 1023, doc: 'snowflake node id 0-1023, unique among live processes (default: leased in NATS KV on the NATS bus, else 0)' },

  JWT_SECRET: { kind: 'string', doc: 'HS256 secret (at least 32 characters)' },
  JWT_PUBLIC_KEY: { kind: 'string', doc: 'RS256 public key (SPKI PEM)' },
  JWKS_URL: { kind: 'string', doc: 'RS256 key set URL' },
  JWT_ISSUER: { kind: 'string', doc: 'required iss claim' },
  JWT_AUDIENCE: { kind: 'string', doc: 'required aud claim' },
  JWT_ALLOW_NO_EXP: { kind: 'bool', default: false, doc: 'accept tokens without an exp claim (they never expire; off: refused)' },
  DEFAULT_TENANT: { kind: 'string', default: 'default', doc: 'tenant of tokens without a tenant claim' },

  MAX_MESSAGE_LENGTH: { kind: 'int', default: DEFAULTS.maxMessageLength, min: 1, max: 1_000_000, doc: 'characters per message' },
  MAX_PAYLOAD_BYTES: { kind: 'int', default: DEFAULTS.maxPayloadBytes, min: 1024, max: 16 * 1024 * 1024, doc: 'largest WebSocket frame accepted' },
  MAX_BACKPRESSURE_BYTES: { kind: 'int', default: DEFAULTS.maxBackpressureBytes, min: 16 * 1024, doc: 'send buffer per socket before it is closed as a slow consumer' },
  HTTP_BODY_LIMIT_BYTES: { kind: 'int', default: DEFAULTS.httpBodyLimitBytes, min: 1024, doc: 'largest REST request body' },
  TYPING_TIMEOUT: { kind: 'int', default: DEFAULTS.typingTimeoutMs, min: 100, doc: 'ms after which typing stops without typing_stop' },
  PRESENCE_TTL: { kind: 'int', default: DEFAULTS.presenceTtlSec, min: 1, doc: 'seconds a presence entry lives without heartbeat' },
  WEBSOCKET_IDLE_TIMEOUT: { kind: 'int', default: DEFAULTS.websocketIdleTimeoutSec, min: 8, max: 960, doc: 'seconds without traffic before a socket is closed (pings keep it alive)' },
  RATE_LIMIT_PER_SECOND: { kind: 'int', default: DEFAULTS.rateLimitPerSecond, min: 1, doc: 'messages per second per user' },
  RATE_LIMIT_BURST: { kind: 'int', default: DEFAULTS.rateLimitBurst, min: 1, doc: 'bucket size per user' },
  TENANT_RATE_LIMIT_PER_SECOND: { kind: 'int', default: 0, min: 0, doc: 'messages per second per tenant (0 = unlimited)' },
  TENANT_MAX_ROOMS: { kind: 'int', default: 0, min: 0, doc: 'rooms a tenant may hold, unless its quotas say otherwise (0 = unlimited)' },
  TENANT_MAX_MEMBERS_PER_ROOM: { kind: 'int', default: 0, min: 0, doc: "members one of a tenant's rooms may hold, unless its quotas say otherwise (0 = unlimited)" },
  TENANT_METRIC_LABELS: { kind: 'list', default: [], doc: 'tenants whose metrics carry their own tenant label; every other tenant is counted as "other"' },
  PERSIST_INTERVAL_MS: { kind: 'int', default: DEFAULTS.persistIntervalMs, min: 1, max: 10_000, doc: 'persister batch interval' },
  PERSIST_BATCH_MAX: { kind: 'int', default: DEFAULTS.persistBatchMax, min: 1, max: 100_000, doc: 'events per batch before writing early' },
  PERSIST_MAX_DELIVER: { kind: 'int', default: DEFAULTS.persistMaxDeliver, min: 1, doc: 'tries before an event goes to the dead-letter subject' },
  PERSIST_ACK_WAIT_MS: { kind: 'int', default: DEFAULTS.persistAckWaitMs, min: 100, max: 3_600_000, doc: 'ms a dead persister keeps the events handed to it before another persister gets them (a live one marks its batch in progress every half of it)' },
  RESUME_SKEW: { kind: 'int', default: DEFAULTS.resumeSkewMs, min: 0, doc: 'ms replayed before the last seen id on resume' },
  DRAIN_GRACE_MS: { kind: 'int', default: DEFAULTS.drainGraceMs, min: 0, max: 600_000, doc: 'ms a gateway on SIGTERM gives its clients to reconnect elsewhere (after the reconnect frame) before closing the rest with 1001' },
  RECOVERY_WINDOW: { kind: 'int', default: DEFAULTS.recoveryWindowSec, min: 60, doc: 'seconds the stream keeps events for resume' },
  MEMORY_STREAM_MAX_MESSAGES: { kind: 'int', default: DEFAULTS.memoryStreamMaxMessages, min: 1000, doc: 'events the in-process stream keeps for resume' },
  MEMORY_STREAM_MAX_MB: { kind: 'int', default: DEFAULTS.memoryStreamMaxMb, min: 1, doc: 'MiB of events the in-process stream holds: past it the oldest events already written to the store leave first (resume then reads REST history); while events not yet written fill it, sends fail with unavailable (503, retryable)' },
  MEMORY_STREAM_JOURNAL: { kind: 'enum', values: ['sqlite', 'off'], default: 'sqlite', doc: 'in-process stream journal: sqlite (a table in DATA_DIR/chat.db; a send is acked once written there, so a crash loses no acked message and seq and clientMsgId dedupe carry over a restart) or off (nothing survives a restart)' },
  MEMORY_STREAM_JOURNAL_SYNC: { kind: 'enum', values: ['normal', 'full'], default: 'normal', doc: 'normal: acked events survive a crash of the process (not of the machine); full: one fsync per group commit, they survive power loss too' },
  MAX_METADATA_BYTES: { kind: 'int', default: DEFAULTS.maxMetadataBytes, min: 2, max: 1024 * 1024, doc: 'largest message metadata, as JSON in UTF-8 bytes (larger: too_large, 413)' },
  CORS_ORIGINS: { kind: 'list', default: ['*'], doc: 'allowed Origin values for REST' },
  REUSE_PORT: { kind: 'bool', default: false, doc: 'share PORT with other processes (SO_REUSEPORT); off: a port already in use is an error' },
  HISTORY_WINDOW_MESSAGES: { kind: 'int', default: DEFAULTS.historyWindowMessages, min: 0, max: 100_000, doc: 'newest messages per room the api keeps in memory for REST history, read-your-writes (0: history reads the store)' },
  HISTORY_WINDOW_ROOMS: { kind: 'int', default: DEFAULTS.historyWindowRooms, min: 1, doc: 'rooms with a history window at once (least recently read dropped first)' },
  HISTORY_WINDOW_MB: { kind: 'int', default: DEFAULTS.historyWindowMb, min: 1, doc: 'memory all history windows may hold, in MiB (approximate)' },
  HISTORY_WINDOW_IDLE: { kind: 'int', default: DEFAULTS.historyWindowIdleSec, min: 1, doc: 'seconds after its last history read that a room\'s window is dropped' },
  AUTH_CACHE_TOKENS: { kind: 'int', default: DEFAULTS.authCacheTokens, min: 0, doc: 'verified tokens remembered, so a repeated token is not verified again (0: verify every time)' },
  AUTH_CACHE_TTL: { kind: 'int', default: DEFAULTS.authCacheTtlSec, min: 1, max: 300, doc: 'seconds a verified token is remembered (never past its exp)' },
  RESUME_MAX_EVENTS: { kind: 'int', default: DEFAULTS.resumeMaxEvents, min: 1, max: 1_000_000, doc: 'events one resume request replays at most, over all its rooms (the rest: recovered false, page REST history)' },
  RATE_LIMIT_ROOM_CREATE: { kind: 'rate', default: DEFAULTS.roomCreateRate, doc: 'rooms a user creates (REST, and /ws?room= on first use)' },
  RATE_LIMIT_MEMBERSHIP: { kind: 'rate', default: DEFAULTS.membershipRate, doc: 'joins, leaves and archives per user (frames and REST)' },
  RATE_LIMIT_ROOM_ADMIN: { kind: 'rate', default: DEFAULTS.roomAdminRate, doc: 'room updates, invitations, kicks, role, mute and ban changes per user (REST)' },
  RATE_LIMIT_RESUME: { kind: 'rate', default: DEFAULTS.resumeRate, doc: 'resume frames per user that replay (past it: no replay, recovered false)' },
  RATE_LIMIT_PING: { kind: 'rate', default: DEFAULTS.pingRate, doc: 'ping frames per socket' },
  RATE_LIMIT_PRESENCE: { kind: 'rate', default: DEFAULTS.presenceRate, doc: 'presence changes per user over REST (the set_presence frame is coalesced instead)' },
  COALESCE_TYPING_MS: { kind: 'int', default: DEFAULTS.coalesceTypingMs, min: 0, max: 60_000, doc: 'typing frames of a user in a room take effect at most once per this many ms; the last state wins (0: every frame)' },
  COALESCE_PRESENCE_MS: { kind: 'int', default: DEFAULTS.coalescePresenceMs, min: 0, max: 60_000, doc: 'set_presence frames of a user take effect at most once per this many ms; the last wins (0: every frame)' },
  COALESCE_READ_MS: { kind: 'int', default: DEFAULTS.coalesceReadMs, min: 0, max: 60_000, doc: 'read marks of a user in a room (frame and REST) are stored at most once per this many ms; the last wins (0: every mark)' },

  AI_PROVIDERS: { kind: 'list', default: [...DEFAULTS.aiProviders], doc: 'AI providers in fallback order: openai, gemini, local (local works offline with no model)' },
  OPENAI_API_KEY: { kind: 'string', doc: 'key for the openai provider (vLLM, Ollama and llama.cpp servers usually need none); never logged' },
  OPENAI_BASE_URL: { kind: 'string', default: DEFAULTS.openaiBaseUrl, pattern: /^https?:\/\/\S+$/, doc: 'OpenAI-compatible API base, up to the version (http://localhost:11434/v1 for Ollama)' },
  OPENAI_MODEL: { kind: 'string', default: DEFAULTS.openaiModel, doc: 'model for the openai provider' },
  GEMINI_API_KEY: { kind: 'string', doc: 'key for the gemini provider (sent in x-goog-api-key); never logged' },
  GEMINI_BASE_URL: { kind: 'string', default: DEFAULTS.geminiBaseUrl, pattern: /^https?:\/\/\S+$/, doc: 'Gemini API base, up to the version' },
  GEMINI_MODEL: { kind: 'string', default: DEFAULTS.geminiModel, doc: 'model for the gemini provider' },
  AI_RESPONSE_TIMEOUT: { kind: 'int', default: DEFAULTS.aiResponseTimeoutMs, min: 100, max: 600_000, doc: 'ms each AI provider has for a whole answer (Retry-After waits included) before the next is tried' },
  AI_RATE_LIMIT_PER_MINUTE: { kind: 'int', default: DEFAULTS.aiRatePerMinute, min: 1, doc: 'AI requests per minute per user' },
  AI_TENANT_RATE_LIMIT_PER_MINUTE: { kind: 'int', default: 0, min: 0, doc: 'AI requests per minute per tenant (0 = unlimited)' },
  AI_MAX_QUESTION_LENGTH: { kind: 'int', default: DEFAULTS.aiMaxQuestionLength, min: 1, max: 100_000, doc: 'characters of a question to the assistant' },
  AI_CONTEXT_TTL: { kind: 'int', default: DEFAULTS.aiContextTtlSec, min: 60, doc: 'seconds a user\'s own AI context (questions asked without a room) lives after its last use' },
  AI_CONTEXT_TURNS: { kind: 'int', default: DEFAULTS.aiContextTurns, min: 0, max: 200, doc: 'turns of a user\'s own AI context kept and sent with the next question' },
  AI_ROOM_CONTEXT_MESSAGES: { kind: 'int', default: DEFAULTS.aiRoomContextMessages, min: 0, max: 500, doc: 'recent room messages sent as context with a question in a room' },
  AI_STREAM_FLUSH_MS: { kind: 'int', default: DEFAULTS.aiStreamFlushMs, min: 0, max: 5000, doc: 'ms the pieces of an answer streamed into a room are gathered into one ai_response frame (0: one frame per piece)' },
  AI_SUMMARY_MESSAGES: { kind: 'int', default: DEFAULTS.aiSummaryMessages, min: 1, max: 500, doc: 'messages `@ai summarize` covers at most' },

  NOTIFY_COLLAPSE_MS: { kind: 'int', default: DEFAULTS.notifyCollapseMs, min: 0, max: 600_000, doc: 'ms offline notifications wait so that those of one room for one user go out as one' },
  NOTIFY_ACK_WAIT_MS: { kind: 'int', default: DEFAULTS.notifyAckWaitMs, min: 300, max: 3_600_000, doc: 'ms the events a dead notifier (api process) held wait before another one gets them (a live one keeps them while it delivers)' },
  NOTIFY_MAX_AGE: { kind: 'int', default: DEFAULTS.notifyMaxAgeSec, min: 1, doc: 'seconds after which a message no longer notifies (a new notifier starting on an old stream stays quiet)' },
  NOTIFY_MAX_ATTEMPTS: { kind: 'int', default: DEFAULTS.notifyMaxAttempts, min: 1, max: 50, doc: 'tries of one webhook or Web Push delivery before it is dead-lettered' },
  NOTIFY_RETRY_INITIAL_MS: { kind: 'int', default: DEFAULTS.notifyRetryInitialMs, min: 1, doc: 'ms before the first retry of a delivery; doubles each time' },
  NOTIFY_RETRY_MAX_MS: { kind: 'int', default: DEFAULTS.notifyRetryMaxMs, min: 1, doc: 'longest wait between two tries of a delivery, ms' },
  NOTIFY_HTTP_TIMEOUT_MS: { kind: 'int', default: DEFAULTS.notifyHttpTimeoutMs, min: 100, max: 120_000, doc: 'ms one webhook or push request may take' },
  NOTIFY_ALLOW_NETWORKS: { kind: 'list', default: [], doc: 'CIDRs that webhook and push URLs may point at although private, loopback or link-local (refused otherwise), e.g. 127.0.0.0/8 for local tests' },
  WEBHOOK_DISABLE_AFTER: { kind: 'int', default: DEFAULTS.webhookDisableAfter, min: 1, doc: 'dead-lettered deliveries in a row after which a webhook is disabled' },
  VAPID_PUBLIC_KEY: { kind: 'string', doc: 'Web Push VAPID public key, base64url (`chat vapid` prints a pair); Web Push is off without it' },
  VAPID_PRIVATE_KEY: { kind: 'string', doc: 'Web Push VAPID private key, base64url; never logged' },
  VAPID_SUBJECT: { kind: 'string', pattern: /^(mailto:|https:\/\/)\S+$/, doc: 'contact the push services see in the VAPID token (mailto: or https:)' },
  PUSH_TTL: { kind: 'int', default: DEFAULTS.pushTtlSec, min: 0, max: 2_419_200, doc: 'seconds a push service keeps a notification for an unreachable device' },
  CHANNELS_TENANT: { kind: 'string', doc: 'tenant the deployment\'s own channel credentials (WHATSAPP_*, TELEGRAM_*, SLACK_*) and the webhooks without a tenant in the path serve (default: DEFAULT_TENANT)' },
  WHATSAPP_APP_SECRET: { kind: 'string', doc: 'Meta app secret: the key of X-Hub-Signature-256 on WhatsApp webhooks; the WhatsApp channel is off without it; never logged' },
  WHATSAPP_VERIFY_TOKEN: { kind: 'string', doc: 'the verify token Meta sends as hub.verify_token when the webhook is subscribed' },
  WHATSAPP_ACCESS_TOKEN: { kind: 'string', doc: 'Cloud API access token (Bearer) for sending replies; never logged' },
  WHATSAPP_PHONE_NUMBER_ID: { kind: 'string', pattern: /^[0-9]{1,32}$/, doc: 'the business phone number id replies are sent from (POST /{version}/{id}/messages)' },
  WHATSAPP_API_BASE: { kind: 'string', default: DEFAULTS.whatsappApiBase, pattern: /^https?:\/\/\S+$/, doc: 'Graph API base URL (tests point it at a local server)' },
  WHATSAPP_API_VERSION: { kind: 'string', default: DEFAULTS.whatsappApiVersion, pattern: /^v[0-9]+\.[0-9]+$/, doc: 'Graph API version in the send path' },
  TELEGRAM_BOT_TOKEN: { kind: 'string', doc: 'bot token for sendMessage; the Telegram channel is off without it; never logged' },
  TELEGRAM_SECRET_TOKEN: { kind: 'string', pattern: /^[A-Za-z0-9_-]{1,256}$/, doc: 'the secret_token given to setWebhook, checked against X-Telegram-Bot-Api-Secret-Token (required with TELEGRAM_BOT_TOKEN)' },
  TELEGRAM_API_BASE: { kind: 'string', default: DEFAULTS.telegramApiBase, pattern: /^https?:\/\/\S+$/, doc: 'Bot API base URL (tests point it at a local server)' },
  SLACK_SIGNING_SECRET: { kind: 'string', doc: 'Slack app signing secret: the key of X-Slack-Signature; the Slack channel is off without it; never logged' },
  SLACK_BOT_TOKEN: { kind: 'string', doc: 'Slack bot token (xoxb-...) for chat.postMessage; never logged' },
  SLACK_API_BASE: { kind: 'string', default: DEFAULTS.slackApiBase, pattern: /^https?:\/\/\S+$/, doc: 'Slack Web API base URL, without /api (tests point it at a local server)' },
  MESSENGER_APP_SECRET: { kind: 'string', doc: 'Meta app secret: the key of X-Hub-Signature-256 on Messenger webhooks; the Messenger channel is off without it; never logged' },
  MESSENGER_VERIFY_TOKEN: { kind: 'string', doc: 'the verify token Meta sends as hub.verify_token when the Messenger webhook is subscribed' },
  MESSENGER_PAGE_ACCESS_TOKEN: { kind: 'string', doc: 'page access token for the Send API (POST /{version}/me/messages?access_token=...); never logged' },
  MESSENGER_API_BASE: { kind: 'string', default: DEFAULTS.messengerApiBase, pattern: /^https?:\/\/\S+$/, doc: 'Graph API base URL for Messenger (tests point it at a local server)' },
  MESSENGER_API_VERSION: { kind: 'string', default: DEFAULTS.whatsappApiVersion, pattern: /^v[0-9]+\.[0-9]+$/, doc: 'Graph API version in the Messenger send path' },
  TWILIO_AUTH_TOKEN: { kind: 'string', doc: 'Twilio auth token: the key of X-Twilio-Signature and the password of the Messages API; the SMS channel is off without it; never logged' },
  TWILIO_ACCOUNT_SID: { kind: 'string', pattern: /^AC[0-9a-fA-F]{32}$/, doc: 'Twilio account SID (AC...), the Messages API user' },
  TWILIO_FROM_NUMBER: { kind: 'string', pattern: /^\+[0-9]{3,15}$/, doc: 'E.164 number SMS replies are sent from' },
  TWILIO_MESSAGING_SERVICE_SID: { kind: 'string', pattern: /^MG[0-9a-fA-F]{32}$/, doc: 'Messaging Service (MG...) that sends replies instead of TWILIO_FROM_NUMBER' },
  TWILIO_WEBHOOK_URL: { kind: 'string', pattern: /^https?:\/\/\S+$/, doc: 'the public URL Twilio calls for this webhook, as set on the number (it signs it); also the StatusCallback of replies; required with TWILIO_AUTH_TOKEN' },
  TWILIO_API_BASE: { kind: 'string', default: DEFAULTS.twilioApiBase, pattern: /^https?:\/\/\S+$/, doc: 'Twilio REST API base URL (tests point it at a local server)' },
  TEAMS_APP_ID: { kind: 'string', pattern: /^[A-Za-z0-9-]{1,64}$/, doc: 'Microsoft App ID of the Azure Bot: the audience of the Bot Connector\'s tokens and the client id of the bot\'s own (required with TEAMS_APP_PASSWORD)' },
  TEAMS_APP_PASSWORD: { kind: 'string', doc: 'the Azure Bot\'s client secret (app password), for the bot\'s token to the Bot Connector; the Teams channel is off without it; never logged' },
  TEAMS_OPENID_METADATA_URL: { kind: 'string', default: DEFAULTS.teamsOpenIdMetadataUrl, pattern: /^https?:\/\/\S+$/, doc: 'Bot Framework OpenID metadata, whose jwks_uri holds the keys the Bot Connector signs with (tests point it at a local server)' },
  TEAMS_TOKEN_URL: { kind: 'string', default: DEFAULTS.teamsTokenUrl, pattern: /^https?:\/\/\S+$/, doc: 'OAuth 2 token endpoint the bot gets its Bot Connector token from by client credentials (tests point it at a local server)' },
  TEAMS_ALLOW_HTTP_SERVICE_URL: { kind: 'bool', default: false, doc: 'let replies go to a plain-http serviceUrl (a local fake Bot Connector in tests); off: only https serviceUrls are answered' },
  CHANNELS_MAX_ATTEMPTS: { kind: 'int', default: DEFAULTS.channelsMaxAttempts, min: 1, max: 50, doc: 'tries of one outbound channel message before it is dead-lettered' },
  CHANNELS_RETRY_INITIAL_MS: { kind: 'int', default: DEFAULTS.channelsRetryInitialMs, min: 1, doc: 'ms before the first retry of an outbound channel message; doubles each time (a Retry-After is honoured when longer)' },
  CHANNELS_RETRY_MAX_MS: { kind: 'int', default: DEFAULTS.channelsRetryMaxMs, min: 1, doc: 'longest wait between two tries of an outbound channel message, ms' },
  CHANNELS_ACK_WAIT_MS: { kind: 'int', default: DEFAULTS.channelsAckWaitMs, min: 300, max: 3_600_000, doc: 'ms the replies a dead channel sender (api process) held wait before another one gets them (a live one keeps them while it retries)' },
  CHANNELS_PER_TENANT: { kind: 'bool', default: false, doc: 'serve every tenant\'s own channel credentials (its stored secrets) on /v1/channels/{platform}/webhook/{tenantId}, and run the channel sender in every api process even without *_APP_SECRET / *_BOT_TOKEN variables' },
  SECRETS_KEY: { kind: 'string', doc: 'key tenant secrets are encrypted with at rest (AES-256-GCM): 32 bytes as base64 or 64 hex digits (`openssl rand -base64 32`); the same on every api process; embedded default: a key file made once in DATA_DIR; never logged' },
  SECRETS_KEY_PREVIOUS: { kind: 'list', default: [], doc: 'former SECRETS_KEY values (comma-separated), still read after a rotation; each secret is encrypted again under SECRETS_KEY when its tenant\'s settings are next written; never logged' },
  CHANNELS_HTTP_TIMEOUT_MS: { kind: 'int', default: DEFAULTS.channelsHttpTimeoutMs, min: 100, max: 120_000, doc: 'ms one platform send request may take' },
  SESSION_TTL: { kind: 'int', default: DEFAULTS.sessionTtlSec, min: 1, max: 30 * 86_400, doc: 'seconds a channel user\'s session lives after its last message either way (in Redis when REDIS_URL is set, else in memory)' },
  MAX_FILE_SIZE: { kind: 'int', default: DEFAULTS.maxFileSizeBytes, min: 1, max: 5 * 1024 * 1024 * 1024, doc: 'largest attachment upload in bytes (a room\'s maxFileSize may lower it)' },
  OBJECTS: { kind: 'enum', values: ['disk', 's3'], doc: 'where attachments are stored (default: s3 when S3_BUCKET_ATTACHMENTS is set, else disk under DATA_DIR/attachments)' },
  S3_BUCKET_ATTACHMENTS: { kind: 'string', doc: 'S3 bucket of attachments' },
  S3_ENDPOINT: { kind: 'string', pattern: /^https?:\/\/\S+$/, doc: 'S3-compatible endpoint URL (default: AWS for S3_REGION)' },
  S3_REGION: { kind: 'string', default: DEFAULTS.s3Region, doc: 'S3 region' },
  S3_ACCESS_KEY_ID: { kind: 'string', doc: 'S3 access key (with S3_SECRET_ACCESS_KEY; unset: the AWS SDK\'s default credential chain)' },
  S3_SECRET_ACCESS_KEY: { kind: 'string', doc: 'S3 secret key; never logged' },
  S3_FORCE_PATH_STYLE: { kind: 'bool', default: false, doc: 'address the bucket in the path (most S3-compatible servers) rather than as a subdomain' },
  S3_PRESIGN_TTL: { kind: 'int', default: DEFAULTS.s3PresignTtlSec, min: 10, max: 7 * 24 * 3600, doc: 'seconds a presigned upload or download URL stays valid' },
  PUBLIC_URL: { kind: 'string', pattern: /^https?:\/\/[^\s?#]+$/, doc: 'the URL this deployment is reached at from outside (https://chat.example.com): the base of the attachment links messaging platforms fetch a reply\'s files from (disk storage); unset: replies carry no files of ours unless S3 holds them' },
  ATTACHMENT_LINK_SECRET: { kind: 'string', doc: 'key (at least 32 characters) that signs attachment links; default: derived from JWT_SECRET (none with JWT_PUBLIC_KEY or JWKS_URL: no links from disk storage); never logged' },
  ATTACHMENT_LINK_TTL: { kind: 'int', default: DEFAULTS.attachmentLinkTtlSec, min: 60, max: 7 * 24 * 3600, doc: 'seconds an attachment link given to a messaging platform (signed here, or presigned by S3) stays valid' },

  BUS: { kind: 'enum', values: ['memory', 'nats'], doc: 'bus adapter (default: nats when NATS_URL is set)' },
  NATS_URL: { kind: 'list', doc: 'comma-separated NATS servers' },
  NATS_STREAM: { kind: 'string', default: DEFAULTS.natsStream, pattern: /^[A-Za-z0-9_-]{1,64}$/, doc: 'JetStream stream holding chat.durable.> (created or updated at start)' },
  NATS_STREAM_REPLICAS: { kind: 'int', default: DEFAULTS.natsStreamReplicas, min: 1, max: 5, doc: 'replicas of the stream (3 on a 3-node cluster)' },
  NATS_DUPLICATE_WINDOW: { kind: 'int', default: DEFAULTS.natsDuplicateWindowSec, min: 1, doc: 'seconds a message id is remembered for dedupe (at most RECOVERY_WINDOW)' },
  STORE: { kind: 'enum', values: ['sqlite', 'cassandra'], doc: 'store adapter (default: cassandra when CASSANDRA_CONTACT_POINTS is set)' },
  CASSANDRA_CONTACT_POINTS: { kind: 'list', doc: 'Cassandra hosts (host or host:port)' },
  CASSANDRA_KEYSPACE: { kind: 'string', default: 'chat', pattern: /^[A-Za-z][A-Za-z0-9_]{0,47}$/, doc: 'keyspace of the store (chat migrate creates it)' },
  CASSANDRA_LOCAL_DC: { kind: 'string', default: 'datacenter1', doc: 'datacenter the driver talks to; LOCAL_* consistency is counted there' },
  CASSANDRA_CONSISTENCY: { kind: 'enum', values: CASSANDRA_CONSISTENCIES, default: 'LOCAL_QUORUM', doc: 'consistency of reads and writes' },
  CASSANDRA_USERNAME: { kind: 'string', doc: 'user for PasswordAuthenticator (with CASSANDRA_PASSWORD)' },
  CASSANDRA_PASSWORD: { kind: 'string', doc: 'password for PasswordAuthenticator' },
  CASSANDRA_REPLICATION: { kind: 'int', default: 1, min: 1, max: 9, doc: 'replication factor in CASSANDRA_LOCAL_DC when chat migrate creates the keyspace' },
  PRESENCE: { kind: 'enum', values: ['memory', 'redis'], doc: 'presence adapter (default: redis when REDIS_URL is set)' },
  REDIS_URL: { kind: 'string', doc: 'Redis URL' },
  REDIS_CLUSTER_NODES: { kind: 'list', doc: 'host:port seed nodes of a Redis Cluster (REDIS_URL then gives only user, password and TLS)' },
  REDIS_SENTINELS: { kind: 'list', doc: 'host:port Sentinels that know the master REDIS_SENTINEL_NAME (REDIS_URL then gives user, password, db and TLS)' },
  REDIS_SENTINEL_NAME: { kind: 'string', doc: 'name of the master the Sentinels watch' },
} as const satisfies Record<string, VarSpec>;

export interface Config {
  env: 'development' | 'production' | 'test';
  host: string;
  port: number;
  logLevel: string;
  nodeId: number | undefined;
  defaultTenant: string;
  auth: AuthConfig;
  limits: LimitsConfig;
  ws: WsConfig;
  persist: PersistConfig;
  bus: BusConfig;
  store: StoreConfig;
  presence: PresenceConfig;
  rateLimit: RateLimitConfig;
  http: HttpConfig;
  history: HistoryConfig;
  ai: AiConfig;
  attachments: AttachmentsConfig;
  notify: NotifyConfig;
  tenants: TenantsConfig;
  channels: ChannelsConfig;
  secrets: SecretsConfig;
  sessions: SessionsConfig;
}

/**
 * Where the key tenant secrets are sealed with comes from (shared/secrets): SECRETS_KEY; a key
 * file made once in DATA_DIR (embedded store, no SECRETS_KEY); or none (distributed without
 * SECRETS_KEY: secrets can be neither written nor read once sealed). Keys are text here (the
 * config is frozen, and never holds a Buffer): shared/secrets decodes them.
 */
export type SecretsConfig =
  | { source: 'env'; key: string; previousKeys: string[] }
  | { source: 'file'; path: string; previousKeys: string[] }
  | { source: 'none'; previousKeys: string[] };

/**
 * Messaging platforms (shared/channels): each platform's credentials, off when its secret is unset,
 * and the tenant their rooms belong to. One set of credentials per deployment for now.
 */
export interface ChannelsConfig {
  tenant: string;
  whatsapp: { appSecret: string; verifyToken: string | undefined; accessToken: string | undefined; phoneNumberId: string | undefined; apiBase: string; apiVersion: string } | undefined;
  telegram: { botToken: string; secretToken: string; apiBase: string } | undefined;
  slack: { signingSecret: string; botToken: string | undefined; apiBase: string } | undefined;
  messenger: { appSecret: string; verifyToken: string | undefined; pageAccessToken: string | undefined; apiBase: string; apiVersion: string } | undefined;
  twilio: {
    authToken: string; accountSid: string | undefined; fromNumber: string | undefined; messagingServiceSid: string | undefined; webhookUrl: string; apiBase: string;
  } | undefined;
  teams: { appId: string; appPassword: string; openIdMetadataUrl: string; tokenUrl: string; allowHttpServiceUrl: boolean } | undefined;
  /** Whether tenants' stored credentials are served (CHANNELS_PER_TENANT). */
  perTenant: boolean;
  /** Where each platform's API is, for every tenant's credentials: a tenant sets secrets, never where they are sent. */
  endpoints: {
    whatsapp: { apiBase: string; apiVersion: string }; telegram: { apiBase: string }; slack: { apiBase: string };
    messenger: { apiBase: string; apiVersion: string }; twilio: { apiBase: string };
    teams: { openIdMetadataUrl: string; tokenUrl: string; allowHttpServiceUrl: boolean };
  };
  maxAttempts: number;
  retry: { initialDelayMs: number; maxDelayMs: number };
  httpTimeoutMs: number;
  /** How long a dead sender's events wait before another one gets them. */
  ackWaitMs: number;
  /** How long a sent-record is kept: longer than the stream can redeliver an event. */
  sentRecordTtlMs: number;
  /** How long an inbound platform message id is remembered: longer than platforms retry a webhook. */
  receivedRecordTtlMs: number;
}

/** Per-tenant quotas' defaults (a tenant's own quotas override them) and the tenants metrics name. */
export interface TenantsConfig {
  /** 0: unlimited. messagesPerSecond is TENANT_RATE_LIMIT_PER_SECOND, aiRequestsPerMinute AI_TENANT_RATE_LIMIT_PER_MINUTE. */
  defaultQuotas: { rooms: number; membersPerRoom: number; messagesPerSecond: number; aiRequestsPerMinute: number };
  metricLabels: string[];
}

/** The offline notifier (api/notify): collapsing, retries, where URLs may point, Web Push keys. */
export interface NotifyConfig {
  collapseMs: number;
  /** How long a dead notifier's events wait before another one gets them. */
  ackWaitMs: number;
  maxAgeMs: number;
  /** How long a sent-record is kept: longer than the stream can redeliver an event. */
  sentRecordTtlMs: number;
  maxAttempts: number;
  retry: { initialDelayMs: number; maxDelayMs: number };
  httpTimeoutMs: number;
  allowNetworks: string[];
  webhookDisableAfter: number;
  /** Off (undefined) without VAPID keys. */
  vapid: { publicKey: string; privateKey: string; subject: string } | undefined;
  pushTtlSec: number;
}

/** Attachments: the largest upload and where files are stored (shared/objects). */
export interface AttachmentsConfig {
  maxFileSize: number;
  objects: ObjectsConfig;
  /**
   * Links to a room's file that work without a token until they expire, for messaging platforms
   * to fetch a reply's files from. `publicUrl` and `secret` make them for disk storage (S3 presigns
   * its own): without both, only S3 has them.
   */
  links: { publicUrl: string | undefined; secret: string | undefined; ttlSec: number };
}
export type ObjectsConfig =
  | { adapter: 'disk'; dir: string }
  | {
    adapter: 's3'; bucket: string; endpoint: string | undefined; region: string; forcePathStyle: boolean; presignTtlSec: number;
    credentials?: { accessKeyId: string; secretAccessKey: string };
  };

/** The assistant (shared/ai): providers in fallback order and each one's section, limits, context sizes. */
export interface AiConfig {
  providers: AiProviderChoice[];
  openai: { apiKey: string | undefined; baseUrl: string; model: string };
  gemini: { apiKey: string | undefined; baseUrl: string; model: string };
  timeoutMs: number;
  userRate: { perSecond: number; burst: number };
  tenantRate: { perSecond: number; burst: number } | undefined;
  maxQuestionLength: number;
  contextTtlMs: number;
  contextTurns: number;
  roomContextMessages: number;
  summaryMessages: number;
  streamFlushMs: number;
}

export interface AuthConfig {
  secret: string | undefined;
  publicKeyPem: string | undefined;
  jwksUrl: string | undefined;
  issuer: string | undefined;
  audience: string | undefined;
  defaultTenant: string;
  /** True when running with DEV_JWT_SECRET: `chat token` and the web page may mint tokens. */
  devTokens: boolean;
  /** Accept tokens that never expire (no `exp`); off by default. */
  allowNoExp?: boolean;
  /** Verified tokens remembered (0: none) and for how long at most (never past their exp). */
  cacheTokens?: number;
  cacheTtlMs?: number;
}
export interface LimitsConfig {
  maxMessageLength: number;
  /** Bytes of a message's metadata as JSON; absent: DEFAULTS.maxMetadataBytes. */
  maxMetadataBytes?: number;
}
export interface WsConfig {
  maxPayloadBytes: number; maxBackpressureBytes: number; idleTimeoutSec: number;
  typingTimeoutMs: number; presenceTtlSec: number; resumeSkewMs: number;
  /** Events one resume request replays at most (default DEFAULTS.resumeMaxEvents). */
  resumeMaxEvents?: number;
  /** Per-user `resume` frames and per-socket `ping` frames (none: unlimited). */
  resumeRate?: Rate;
  pingRate?: Rate;
  /** Windows within which typing and set_presence frames coalesce (0 or none: every frame takes effect). */
  coalesceTypingMs?: number;
  coalescePresenceMs?: number;
  /** How long a draining gateway waits for its clients to move before closing them with 1001. */
  drainGraceMs: number;
}
export interface PersistConfig {
  intervalMs: number; batchMax: number; maxDeliver: number;
  /** How long an unacked event stays with one persister (one that died) before redelivery; the bus default when unset. */
  ackWaitMs?: number;
}
export type BusConfig =
  | {
    adapter: 'memory'; recoveryWindowSec: number; maxMessages: number;
    /** Bytes of events the stream holds (default DEFAULTS.memoryStreamMaxMb MiB). */
    maxBytes?: number;
    /** Where the stream's journal is (absent or off: nothing survives a restart). */
    journal?: MemoryJournalConfig;
  }
  | {
    adapter: 'nats'; servers: string[]; recoveryWindowSec: number;
    /** JetStream stream name (default CHAT). */
    streamName?: string;
    /** Stream replicas (default 1). */
    replicas?: number;
    /** Seconds a dedupe id is remembered (default 120, at most recoveryWindowSec). */
    duplicateWindowSec?: number;
  };
export type MemoryJournalConfig =
  | { adapter: 'sqlite'; dataDir: string; synchronous: 'normal' | 'full' }
  | { adapter: 'off' };
export type StoreConfig =
  | { adapter: 'sqlite'; dataDir: string }
  | {
    adapter: 'cassandra'; contactPoints: string[]; keyspace: string; localDataCenter: string;
    consistency: CassandraConsistency; replicationFactor: number; credentials?: { username: string; password: string };
  };
/** Channel users' sessions (shared/sessions): in Redis when REDIS_URL is set, else in this process. */
export type SessionsConfig =
  | { adapter: 'memory'; ttlSec: number }
  | { adapter: 'redis'; url: string; topology?: RedisTopology; ttlSec: number };
export type PresenceConfig =
  | { adapter: 'memory'; ttlSec: number; typingTimeoutMs: number }
  | { adapter: 'redis'; url: string; topology?: RedisTopology; ttlSec: number; typingTimeoutMs: number };
export interface RateLimitConfig {
  adapter: 'memory' | 'redis'; redisUrl: string | undefined; redisTopology?: RedisTopology;
  perSecond: number; burst: number; tenantPerSecond: number;
  /** The rules of the other writes (see ENV_SCHEMA); none: unlimited. */
  roomCreate?: Rate; membership?: Rate; roomAdmin?: Rate; presence?: Rate;
  /** Read marks of a user in a room are stored at most once per this many ms (0 or none: every mark). */
  coalesceReadMs?: number;
}
/** Where Redis is when it is not the single server of the URL. Nodes are `host:port`. */
export type RedisTopology =
  | { kind: 'cluster'; nodes: string[] }
  | { kind: 'sentinel'; sentinels: string[]; name: string };
export interface HttpConfig {
  bodyLimitBytes: number; corsOrigins: string[];
  /** Listen with SO_REUSEPORT so that several processes share the port (off: the port must be free). */
  reusePort: boolean;
}
/** The api's history windows (shared/history): per-room messages (0: off), rooms, bytes, idle time. */
export interface HistoryConfig { maxMessages: number; maxRooms: number; maxBytes: number; idleMs: number }

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Reads and validates the whole configuration once; the result is frozen. Throws ConfigError. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const v = readEnv(ENV_SCHEMA, env);
  const teamsEndpoints = { openIdMetadataUrl: v.TEAMS_OPENID_METADATA_URL, tokenUrl: v.TEAMS_TOKEN_URL, allowHttpServiceUrl: v.TEAMS_ALLOW_HTTP_SERVICE_URL };
  const problems: string[] = [];

  const authSources = [v.JWT_SECRET, v.JWT_PUBLIC_KEY, v.JWKS_URL].filter(Boolean).length;
  if (authSources > 1) problems.push('JWT_SECRET, JWT_PUBLIC_KEY and JWKS_URL: set only one');
  if (v.JWT_SECRET !== undefined && v.JWT_SECRET.length < 32) problems.push('JWT_SECRET: must be at least 32 characters');
  const secret = authSources === 0 ? DEV_JWT_SECRET : v.JWT_SECRET;
  const devTokens = secret === DEV_JWT_SECRET;
  if (devTokens && v.NODE_ENV === 'production') {
    problems.push('JWT_SECRET: the development secret is refused when NODE_ENV=production; set JWT_SECRET, JWT_PUBLIC_KEY or JWKS_URL');
  }

  const busAdapter = v.BUS ?? (v.NATS_URL?.length ? 'nats' : 'memory');
  if (busAdapter === 'nats' && !v.NATS_URL?.length) problems.push('NATS_URL: required when BUS=nats');
  if (busAdapter === 'nats' && v.NATS_DUPLICATE_WINDOW > v.RECOVERY_WINDOW) {
    problems.push(`NATS_DUPLICATE_WINDOW: must be <= RECOVERY_WINDOW (${v.RECOVERY_WINDOW}), got ${v.NATS_DUPLICATE_WINDOW}`);
  }
  const storeAdapter = v.STORE ?? (v.CASSANDRA_CONTACT_POINTS?.length ? 'cassandra' : 'sqlite');
  if (storeAdapter === 'cassandra' && !v.CASSANDRA_CONTACT_POINTS?.length) problems.push('CASSANDRA_CONTACT_POINTS: required when STORE=cassandra');
  if ((v.CASSANDRA_USERNAME === undefined) !== (v.CASSANDRA_PASSWORD === undefined)) problems.push('CASSANDRA_USERNAME and CASSANDRA_PASSWORD: set both or neither');
  const presenceAdapter = v.PRESENCE ?? (v.REDIS_URL ? 'redis' : 'memory');
  if (presenceAdapter === 'redis' && !v.REDIS_URL) problems.push('REDIS_URL: required when PRESENCE=redis');
  const redisTopology = readRedisTopology(v.REDIS_CLUSTER_NODES, v.REDIS_SENTINELS, v.REDIS_SENTINEL_NAME, problems);
  if (redisTopology !== undefined && !v.REDIS_URL) problems.push('REDIS_URL: required with REDIS_CLUSTER_NODES or REDIS_SENTINELS (redis://host gives none of user, password or TLS)');
  const aiProviders = readAiProviders(v.AI_PROVIDERS, problems);
  if (aiProviders.includes('gemini') && !v.GEMINI_API_KEY) problems.push('GEMINI_API_KEY: required when AI_PROVIDERS includes gemini');
  const vapidSet = [v.VAPID_PUBLIC_KEY, v.VAPID_PRIVATE_KEY, v.VAPID_SUBJECT].filter((x) => x !== undefined).length;
  if (vapidSet !== 0 && vapidSet !== 3) problems.push('VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY and VAPID_SUBJECT: set all three or none');
  if ((v.TELEGRAM_BOT_TOKEN === undefined) !== (v.TELEGRAM_SECRET_TOKEN === undefined)) {
    problems.push('TELEGRAM_BOT_TOKEN and TELEGRAM_SECRET_TOKEN: set both (an unchecked webhook would take anyone\'s updates) or neither');
  }
  if (v.TEAMS_APP_PASSWORD !== undefined && v.TEAMS_APP_ID === undefined) {
    problems.push('TEAMS_APP_ID: required with TEAMS_APP_PASSWORD (it is the audience every Bot Connector token is checked for)');
  }
  if (v.TWILIO_AUTH_TOKEN !== undefined && v.TWILIO_WEBHOOK_URL === undefined) {
    problems.push('TWILIO_WEBHOOK_URL: required with TWILIO_AUTH_TOKEN (Twilio signs the public URL it calls, which a process behind a proxy cannot see)');
  }
  if (v.VAPID_PUBLIC_KEY !== undefined && base64UrlBytes(v.VAPID_PUBLIC_KEY) !== 65) problems.push('VAPID_PUBLIC_KEY: expected an uncompressed P-256 public key (65 bytes), base64url, as `chat vapid` prints');
  if (v.VAPID_PRIVATE_KEY !== undefined && base64UrlBytes(v.VAPID_PRIVATE_KEY) !== 32) problems.push('VAPID_PRIVATE_KEY: expected a P-256 private key (32 bytes), base64url, as `chat vapid` prints');
  for (const cidr of v.NOTIFY_ALLOW_NETWORKS) if (!CIDR.test(cidr)) problems.push(`NOTIFY_ALLOW_NETWORKS: expected CIDRs such as 127.0.0.0/8, got "${cidr}"`);
  const objectsAdapter = v.OBJECTS ?? (v.S3_BUCKET_ATTACHMENTS ? 's3' : 'disk');
  if (objectsAdapter === 's3' && !v.S3_BUCKET_ATTACHMENTS) problems.push('S3_BUCKET_ATTACHMENTS: required when OBJECTS=s3');
  if ((v.S3_ACCESS_KEY_ID === undefined) !== (v.S3_SECRET_ACCESS_KEY === undefined)) problems.push('S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY: set both or neither');
  for (const [name, value] of [['SECRETS_KEY', v.SECRETS_KEY], ...v.SECRETS_KEY_PREVIOUS.map((k) => ['SECRETS_KEY_PREVIOUS', k] as const)] as const) {
    if (value === undefined) continue;
    try {
      parseSecretKey(value);
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
    }
  }
  if (storeAdapter === 'cassandra' && v.SECRETS_KEY === undefined && v.SECRETS_KEY_PREVIOUS.length) problems.push('SECRETS_KEY: required with SECRETS_KEY_PREVIOUS');
  if (v.ATTACHMENT_LINK_SECRET !== undefined && v.ATTACHMENT_LINK_SECRET.length < 32) problems.push('ATTACHMENT_LINK_SECRET: must be at least 32 characters');
  if (problems.length) throw new ConfigError(problems);

  const config: Config = {
    env: v.NODE_ENV,
    host: v.HOST,
    port: v.PORT,
    logLevel: v.LOG_LEVEL,
    nodeId: v.NODE_ID,
    defaultTenant: v.DEFAULT_TENANT,
    auth: {
      secret, publicKeyPem: v.JWT_PUBLIC_KEY, jwksUrl: v.JWKS_URL, issuer: v.JWT_ISSUER, audience: v.JWT_AUDIENCE,
      defaultTenant: v.DEFAULT_TENANT, devTokens, allowNoExp: v.JWT_ALLOW_NO_EXP, cacheTokens: v.AUTH_CACHE_TOKENS, cacheTtlMs: v.AUTH_CACHE_TTL * 1000,
    },
    limits: { maxMessageLength: v.MAX_MESSAGE_LENGTH, maxMetadataBytes: v.MAX_METADATA_BYTES },
    ws: {
      maxPayloadBytes: v.MAX_PAYLOAD_BYTES, maxBackpressureBytes: v.MAX_BACKPRESSURE_BYTES, idleTimeoutSec: v.WEBSOCKET_IDLE_TIMEOUT,
      typingTimeoutMs: v.TYPING_TIMEOUT, presenceTtlSec: v.PRESENCE_TTL, resumeSkewMs: v.RESUME_SKEW,
      resumeMaxEvents: v.RESUME_MAX_EVENTS, resumeRate: v.RATE_LIMIT_RESUME, pingRate: v.RATE_LIMIT_PING,
      coalesceTypingMs: v.COALESCE_TYPING_MS, coalescePresenceMs: v.COALESCE_PRESENCE_MS,
      drainGraceMs: v.DRAIN_GRACE_MS,
    },
    persist: { intervalMs: v.PERSIST_INTERVAL_MS, batchMax: v.PERSIST_BATCH_MAX, maxDeliver: v.PERSIST_MAX_DELIVER, ackWaitMs: v.PERSIST_ACK_WAIT_MS },
    bus: busAdapter === 'nats'
      ? {
        adapter: 'nats', servers: v.NATS_URL ?? [], recoveryWindowSec: v.RECOVERY_WINDOW,
        streamName: v.NATS_STREAM, replicas: v.NATS_STREAM_REPLICAS, duplicateWindowSec: v.NATS_DUPLICATE_WINDOW,
      }
      : {
        adapter: 'memory', recoveryWindowSec: v.RECOVERY_WINDOW, maxMessages: v.MEMORY_STREAM_MAX_MESSAGES,
        maxBytes: v.MEMORY_STREAM_MAX_MB * 1024 * 1024,
        journal: v.MEMORY_STREAM_JOURNAL === 'sqlite'
          ? { adapter: 'sqlite', dataDir: v.DATA_DIR, synchronous: v.MEMORY_STREAM_JOURNAL_SYNC }
          : { adapter: 'off' },
      },
    store: storeAdapter === 'cassandra'
      ? {
        adapter: 'cassandra', contactPoints: v.CASSANDRA_CONTACT_POINTS ?? [], keyspace: v.CASSANDRA_KEYSPACE,
        localDataCenter: v.CASSANDRA_LOCAL_DC, consistency: v.CASSANDRA_CONSISTENCY, replicationFactor: v.CASSANDRA_REPLICATION,
        ...(v.CASSANDRA_USERNAME !== undefined && v.CASSANDRA_PASSWORD !== undefined
          ? { credentials: { username: v.CASSANDRA_USERNAME, password: v.CASSANDRA_PASSWORD } } : {}),
      }
      : { adapter: 'sqlite', dataDir: v.DATA_DIR },
    presence: presenceAdapter === 'redis'
      ? { adapter: 'redis', url: v.REDIS_URL ?? '', ...(redisTopology ? { topology: redisTopology } : {}), ttlSec: v.PRESENCE_TTL, typingTimeoutMs: v.TYPING_TIMEOUT }
      : { adapter: 'memory', ttlSec: v.PRESENCE_TTL, typingTimeoutMs: v.TYPING_TIMEOUT },
    rateLimit: {
      adapter: v.REDIS_URL ? 'redis' : 'memory', redisUrl: v.REDIS_URL, ...(redisTopology ? { redisTopology } : {}),
      perSecond: v.RATE_LIMIT_PER_SECOND, burst: v.RATE_LIMIT_BURST, tenantPerSecond: v.TENANT_RATE_LIMIT_PER_SECOND,
      roomCreate: v.RATE_LIMIT_ROOM_CREATE, membership: v.RATE_LIMIT_MEMBERSHIP, roomAdmin: v.RATE_LIMIT_ROOM_ADMIN,
      presence: v.RATE_LIMIT_PRESENCE, coalesceReadMs: v.COALESCE_READ_MS,
    },
    http: { bodyLimitBytes: v.HTTP_BODY_LIMIT_BYTES, corsOrigins: v.CORS_ORIGINS, reusePort: v.REUSE_PORT },
    history: {
      maxMessages: v.HISTORY_WINDOW_MESSAGES, maxRooms: v.HISTORY_WINDOW_ROOMS,
      maxBytes: v.HISTORY_WINDOW_MB * 1024 * 1024, idleMs: v.HISTORY_WINDOW_IDLE * 1000,
    },
    ai: {
      providers: aiProviders,
      openai: { apiKey: v.OPENAI_API_KEY, baseUrl: v.OPENAI_BASE_URL, model: v.OPENAI_MODEL },
      gemini: { apiKey: v.GEMINI_API_KEY, baseUrl: v.GEMINI_BASE_URL, model: v.GEMINI_MODEL },
      timeoutMs: v.AI_RESPONSE_TIMEOUT,
      userRate: { perSecond: v.AI_RATE_LIMIT_PER_MINUTE / 60, burst: v.AI_RATE_LIMIT_PER_MINUTE },
      tenantRate: v.AI_TENANT_RATE_LIMIT_PER_MINUTE > 0
        ? { perSecond: v.AI_TENANT_RATE_LIMIT_PER_MINUTE / 60, burst: v.AI_TENANT_RATE_LIMIT_PER_MINUTE } : undefined,
      maxQuestionLength: v.AI_MAX_QUESTION_LENGTH,
      contextTtlMs: v.AI_CONTEXT_TTL * 1000,
      contextTurns: v.AI_CONTEXT_TURNS,
      roomContextMessages: v.AI_ROOM_CONTEXT_MESSAGES,
      summaryMessages: v.AI_SUMMARY_MESSAGES,
      streamFlushMs: v.AI_STREAM_FLUSH_MS,
    },
    attachments: {
      maxFileSize: v.MAX_FILE_SIZE,
      objects: objectsAdapter === 's3'
        ? {
          adapter: 's3', bucket: v.S3_BUCKET_ATTACHMENTS ?? '', endpoint: v.S3_ENDPOINT, region: v.S3_REGION,
          forcePathStyle: v.S3_FORCE_PATH_STYLE, presignTtlSec: v.S3_PRESIGN_TTL,
          ...(v.S3_ACCESS_KEY_ID !== undefined && v.S3_SECRET_ACCESS_KEY !== undefined
            ? { credentials: { accessKeyId: v.S3_ACCESS_KEY_ID, secretAccessKey: v.S3_SECRET_ACCESS_KEY } } : {}),
        }
        : { adapter: 'disk', dir: join(v.DATA_DIR, 'attachments') },
      links: {
        publicUrl: v.PUBLIC_URL?.replace(/\/+$/, ''),
        // its own key, so that a link's signature can never be taken for a token's, nor the other way round
        secret: v.ATTACHMENT_LINK_SECRET ?? (secret === undefined ? undefined : Buffer.from(hkdfSync('sha256', secret, '', 'chat-svc attachment links v1', 32)).toString('base64url')),
        ttlSec: v.ATTACHMENT_LINK_TTL,
      },
    },
    notify: {
      collapseMs: v.NOTIFY_COLLAPSE_MS,
      ackWaitMs: v.NOTIFY_ACK_WAIT_MS,
      maxAgeMs: v.NOTIFY_MAX_AGE * 1000,
      // the stream redelivers for at most its recovery window; a day more covers a slow consumer
      sentRecordTtlMs: (v.RECOVERY_WINDOW + 86_400) * 1000,
      maxAttempts: v.NOTIFY_MAX_ATTEMPTS,
      retry: { initialDelayMs: v.NOTIFY_RETRY_INITIAL_MS, maxDelayMs: Math.max(v.NOTIFY_RETRY_INITIAL_MS, v.NOTIFY_RETRY_MAX_MS) },
      httpTimeoutMs: v.NOTIFY_HTTP_TIMEOUT_MS,
      allowNetworks: v.NOTIFY_ALLOW_NETWORKS,
      webhookDisableAfter: v.WEBHOOK_DISABLE_AFTER,
      vapid: v.VAPID_PUBLIC_KEY !== undefined && v.VAPID_PRIVATE_KEY !== undefined && v.VAPID_SUBJECT !== undefined
        ? { publicKey: v.VAPID_PUBLIC_KEY, privateKey: v.VAPID_PRIVATE_KEY, subject: v.VAPID_SUBJECT } : undefined,
      pushTtlSec: v.PUSH_TTL,
    },
    tenants: {
      defaultQuotas: {
        rooms: v.TENANT_MAX_ROOMS, membersPerRoom: v.TENANT_MAX_MEMBERS_PER_ROOM,
        messagesPerSecond: v.TENANT_RATE_LIMIT_PER_SECOND, aiRequestsPerMinute: v.AI_TENANT_RATE_LIMIT_PER_MINUTE,
      },
      metricLabels: v.TENANT_METRIC_LABELS,
    },
    channels: {
      tenant: v.CHANNELS_TENANT ?? v.DEFAULT_TENANT,
      whatsapp: v.WHATSAPP_APP_SECRET === undefined ? undefined : {
        appSecret: v.WHATSAPP_APP_SECRET, verifyToken: v.WHATSAPP_VERIFY_TOKEN, accessToken: v.WHATSAPP_ACCESS_TOKEN,
        phoneNumberId: v.WHATSAPP_PHONE_NUMBER_ID, apiBase: v.WHATSAPP_API_BASE, apiVersion: v.WHATSAPP_API_VERSION,
      },
      telegram: v.TELEGRAM_BOT_TOKEN === undefined || v.TELEGRAM_SECRET_TOKEN === undefined ? undefined : {
        botToken: v.TELEGRAM_BOT_TOKEN, secretToken: v.TELEGRAM_SECRET_TOKEN, apiBase: v.TELEGRAM_API_BASE,
      },
      slack: v.SLACK_SIGNING_SECRET === undefined ? undefined : { signingSecret: v.SLACK_SIGNING_SECRET, botToken: v.SLACK_BOT_TOKEN, apiBase: v.SLACK_API_BASE },
      messenger: v.MESSENGER_APP_SECRET === undefined ? undefined : {
        appSecret: v.MESSENGER_APP_SECRET, verifyToken: v.MESSENGER_VERIFY_TOKEN, pageAccessToken: v.MESSENGER_PAGE_ACCESS_TOKEN,
        apiBase: v.MESSENGER_API_BASE, apiVersion: v.MESSENGER_API_VERSION,
      },
      twilio: v.TWILIO_AUTH_TOKEN === undefined || v.TWILIO_WEBHOOK_URL === undefined ? undefined : {
        authToken: v.TWILIO_AUTH_TOKEN, accountSid: v.TWILIO_ACCOUNT_SID, fromNumber: v.TWILIO_FROM_NUMBER, messagingServiceSid: v.TWILIO_MESSAGING_SERVICE_SID,
        webhookUrl: v.TWILIO_WEBHOOK_URL, apiBase: v.TWILIO_API_BASE,
      },
      teams: v.TEAMS_APP_PASSWORD === undefined || v.TEAMS_APP_ID === undefined ? undefined : {
        appId: v.TEAMS_APP_ID, appPassword: v.TEAMS_APP_PASSWORD, ...teamsEndpoints,
      },
      perTenant: v.CHANNELS_PER_TENANT,
      endpoints: {
        whatsapp: { apiBase: v.WHATSAPP_API_BASE, apiVersion: v.WHATSAPP_API_VERSION }, telegram: { apiBase: v.TELEGRAM_API_BASE }, slack: { apiBase: v.SLACK_API_BASE },
        messenger: { apiBase: v.MESSENGER_API_BASE, apiVersion: v.MESSENGER_API_VERSION }, twilio: { apiBase: v.TWILIO_API_BASE }, teams: teamsEndpoints,
      },
      maxAttempts: v.CHANNELS_MAX_ATTEMPTS,
      retry: { initialDelayMs: v.CHANNELS_RETRY_INITIAL_MS, maxDelayMs: Math.max(v.CHANNELS_RETRY_INITIAL_MS, v.CHANNELS_RETRY_MAX_MS) },
      httpTimeoutMs: v.CHANNELS_HTTP_TIMEOUT_MS,
      ackWaitMs: v.CHANNELS_ACK_WAIT_MS,
      sentRecordTtlMs: (v.RECOVERY_WINDOW + 86_400) * 1000,
      // Meta retries an unanswered webhook for up to 7 days
      receivedRecordTtlMs: 8 * 86_400 * 1000,
    },
    // the embedded store's own directory holds its key by default; processes sharing a remote
    // store must share a key, which only the environment can give them all
    secrets: v.SECRETS_KEY !== undefined
      ? { source: 'env', key: v.SECRETS_KEY, previousKeys: v.SECRETS_KEY_PREVIOUS }
      : storeAdapter === 'sqlite'
        ? { source: 'file', path: join(v.DATA_DIR, SECRETS_KEY_FILE), previousKeys: v.SECRETS_KEY_PREVIOUS }
        : { source: 'none', previousKeys: [] },
    sessions: v.REDIS_URL
      ? { adapter: 'redis', url: v.REDIS_URL, ...(redisTopology ? { topology: redisTopology } : {}), ttlSec: v.SESSION_TTL }
      : { adapter: 'memory', ttlSec: v.SESSION_TTL },
  };
  return deepFreeze(config);
}

function readAiProviders(list: string[], problems: string[]): AiProviderChoice[] {
  const bad = list.filter((p) => !(AI_PROVIDER_CHOICES as readonly string[]).includes(p));
  if (bad.length) problems.push(`AI_PROVIDERS: expected a list of ${AI_PROVIDER_CHOICES.join(', ')}, got ${bad.map((b) => `"${b}"`).join(', ')}`);
  if (new Set(list).size !== list.length) problems.push('AI_PROVIDERS: a provider is listed twice');
  if (list.length === 0) problems.push('AI_PROVIDERS: name at least one provider (local needs no model)');
  return list.filter((p): p is AiProviderChoice => (AI_PROVIDER_CHOICES as readonly string[]).includes(p));
}

/** Bytes a base64url string holds, or -1 when it is not base64url. */
function base64UrlBytes(s: string): number {
  return /^[A-Za-z0-9_-]+$/.test(s) ? Buffer.from(s, 'base64url').length : -1;
}

const CIDR = /^([0-9.]+\/\d{1,2}|[0-9A-Fa-f:.]+\/\d{1,3})$/;

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):\d{1,5}$/;

function readRedisTopology(cluster: string[] | undefined, sentinels: string[] | undefined, name: string | undefined, problems: string[]): RedisTopology | undefined {
  for (const [variable, nodes] of [['REDIS_CLUSTER_NODES', cluster], ['REDIS_SENTINELS', sentinels]] as const) {
    const bad = nodes?.filter((n) => !HOST_PORT.test(n)) ?? [];
    if (bad.length) problems.push(`${variable}: expected host:port entries, got ${bad.map((b) => `"${b}"`).join(', ')}`);
  }
  if (cluster?.length && sentinels?.length) problems.push('REDIS_CLUSTER_NODES and REDIS_SENTINELS: set only one');
  if (sentinels?.length && !name) problems.push('REDIS_SENTINEL_NAME: required with REDIS_SENTINELS');
  if (name && !sentinels?.length) problems.push('REDIS_SENTINELS: required with REDIS_SENTINEL_NAME');
  if (cluster?.length) return { kind: 'cluster', nodes: cluster };
  if (sentinels?.length && name) return { kind: 'sentinel', sentinels, name };
  return undefined;
}

export { ConfigError };
