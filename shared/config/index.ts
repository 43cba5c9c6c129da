export { loadConfig, ConfigError, DEFAULTS, ENV_SCHEMA, DEV_JWT_SECRET, SECRETS_KEY_FILE } from './config.ts';
export type { Config, AuthConfig, BusConfig, StoreConfig, PresenceConfig, RateLimitConfig, WsConfig, PersistConfig, LimitsConfig, HttpConfig, HistoryConfig, RedisTopology, AiConfig, AiProviderChoice, AttachmentsConfig, ObjectsConfig, NotifyConfig, TenantsConfig, ChannelsConfig, SecretsConfig, SessionsConfig } from './config.ts';
export { parseRate, formatRate, type Rate } from './env-schema.ts';
