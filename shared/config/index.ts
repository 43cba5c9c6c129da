export { loadConfig, ConfigError, DEFAULTS, ENV_SCHEMA, DEV_JWT_SECRET } from './config.ts';
export type { Config, AuthConfig, BusConfig, StoreConfig, PresenceConfig, RateLimitConfig, WsConfig, PersistConfig, LimitsConfig, HttpConfig, HistoryConfig, RedisTopology, AiConfig, AiProviderChoice, AttachmentsConfig, ObjectsConfig, NotifyConfig, TenantsConfig, ChannelsConfig, SessionsConfig } from './config.ts';
export { parseRate, formatRate, type Rate } from './env-schema.ts';
