export { createAuthenticator, extractToken, type Authenticator } from './authenticator.ts';
export type { Principal } from './principal.ts';
export { cachingAuthenticator, type TokenCacheOptions } from './token-cache.ts';
