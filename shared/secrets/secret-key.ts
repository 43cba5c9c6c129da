import { createHash } from 'node:crypto';

/** AES-256: the key is 32 bytes. */
export const SECRET_KEY_BYTES = 32;

/**
 * A secrets key as an operator writes it: 64 hex digits, or 32 bytes in base64 / base64url
 * (`openssl rand -base64 32`). Throws an Error saying what was expected; never repeats the value.
 */
export function parseSecretKey(text: string): Buffer {
  const s = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(s)
    ? Buffer.from(s, 'hex')
    : /^[A-Za-z0-9+/_-]{43}=?$/.test(s) ? Buffer.from(s, 'base64') : undefined;
  if (bytes?.length !== SECRET_KEY_BYTES) throw new Error(`expected ${SECRET_KEY_BYTES} bytes as 64 hex digits or base64 (openssl rand -base64 32)`);
  return bytes;
}

/**
 * The id a sealed value names its key by: 8 hex digits of the key's SHA-256. It lets a reader pick
 * the current or a previous key without trying each, and tells nothing usable about the key.
 */
export function secretKeyId(key: Buffer): string {
  return createHash('sha256').update('chat-svc secrets key id\0').update(key).digest('hex').slice(0, 8);
}
