export { createAuthenticator, extractToken, type Authenticator } from './authenticator.ts';
export type { Principal } from './principal.ts';
export { cachingAuthenticator, type TokenCacheOptions } from './token-cache.ts';
export {
  API_KEY_PREFIX, TENANT_SERVICE_ROLE, createApiKeyVerifier, hashApiKey, isApiKey, newApiKey, serviceUserId,
  type ApiKeyLookup, type ApiKeyVerifier,
} from './api-keys.ts';
