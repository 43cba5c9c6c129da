import { SignJWT } from 'jose';
import { DEV_JWT_SECRET } from '../../shared/config/config.ts';

const key = new TextEncoder().encode(DEV_JWT_SECRET);

/** A token the embedded server accepts (it runs with the development secret in tests). */
export function devToken(sub: string, opts: { name?: string; tenant?: string; expiresIn?: string; roles?: string[] } = {}): Promise<string> {
  return new SignJWT({ name: opts.name ?? sub, ...(opts.tenant ? { tenant: opts.tenant } : {}), ...(opts.roles ? { roles: opts.roles } : {}) })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(opts.expiresIn ?? '1h')
    .sign(key);
}
