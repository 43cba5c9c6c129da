import { SignJWT } from 'jose';
import { DEV_JWT_SECRET } from '../../shared/config/config.ts';

const key = new TextEncoder().encode(DEV_JWT_SECRET);

/**
 * An HS256 token with the development secret: chat-svc in the bench runs with it, and the peers
 * verify the same token at connect so every server pays for authentication alike.
 */
export function benchToken(userId: string): Promise<string> {
  return new SignJWT({ name: userId })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime('6h')
    .sign(key);
}

export { key as benchTokenKey };
