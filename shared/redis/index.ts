export { openRedis, waitReady, closeRedis, DEFAULT_COMMAND_TIMEOUT_MS, type RedisClient, type RedisConnectionConfig, type RedisClientOptions } from './redis-client.ts';
export { RedisFallback, DEFAULT_PROBE_INTERVAL_MS, type RedisFallbackOptions } from './redis-fallback.ts';
export { escapeKeyPart } from './key-part.ts';
