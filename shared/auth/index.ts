export { createAuthenticator, extractToken, type Authenticator } from './authenticator.ts';
export type { Principal } from './principal.ts';
