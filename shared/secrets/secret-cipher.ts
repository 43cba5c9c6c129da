import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ChatError } from '../protocol/index.ts';
import { secretKeyId } from './secret-key.ts';

/** What went wrong with a sealed value; the ChatError code follows from it. */
export type SecretsFailure = 'no_key' | 'unknown_key' | 'tampered' | 'malformed';

/**
 * A secret that could not be sealed or opened. `no_key` and `unknown_key` are the deployment's
 * configuration (SECRETS_KEY unset, or the key a value was sealed under is neither SECRETS_KEY nor
 * one of SECRETS_KEY_PREVIOUS): 503 until an operator fixes it. `tampered` and `malformed` are a
 * value the store hands back that this key did not seal as it is: 500, never read as plain text.
 */
export class SecretsError extends ChatError {
  readonly reason: SecretsFailure;
  constructor(reason: SecretsFailure, message: string, options?: { cause?: unknown }) {
    super(reason === 'no_key' || reason === 'unknown_key' ? 'unavailable' : 'internal', message, options);
    this.name = 'SecretsError';
    this.reason = reason;
  }
}

/**
 * Seals secrets for storage and opens them again. The contract:
 * - `seal` returns a new, self-describing string (`v1:<key id>:<base64url of IV, ciphertext, tag>`)
 *   under the current key, a fresh random IV each time; it throws SecretsError('no_key') when the
 *   deployment has no key.
 * - `open` returns the plain value. A value without the `v1:` prefix was stored before secrets were
 *   sealed and is returned as it is (it is sealed on its next write). Anything else it cannot
 *   authenticate throws SecretsError: never a wrong plain value.
 * - `context` (which tenant, which secret) is bound to the ciphertext as associated data: a sealed
 *   value copied to another tenant or another name does not open.
 */
export interface SecretCipher {
  /** Whether `seal` works: false when the deployment has no key (SECRETS_KEY unset in distributed mode). */
  readonly canSeal: boolean;
  seal(plain: string, context: string): string;
  open(stored: string, context: string): string;
}

const PREFIX = 'v1:';
const SEALED = /^v1:([0-9a-f]{8}):([A-Za-z0-9_-]+)$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * AES-256-GCM (node:crypto) under `current`, opening values sealed under `current` or any of
 * `previous` (a rotation: the new key current, the old one previous until every value was written
 * again). Without `current` nothing is sealed and only values of `previous` keys and plain ones open.
 */
export function aesGcmCipher(keys: { current: Buffer | undefined; previous: Buffer[] }): SecretCipher {
  const byId = new Map<string, Buffer>();
  for (const key of keys.previous) byId.set(secretKeyId(key), key);
  const current = keys.current;
  const currentId = current === undefined ? undefined : secretKeyId(current);
  if (current !== undefined && currentId !== undefined) byId.set(currentId, current);

  return {
    canSeal: current !== undefined,

    seal(plain, context) {
      if (current === undefined || currentId === undefined) throw new SecretsError('no_key', 'SECRETS_KEY is not set: tenant secrets cannot be stored');
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current, iv);
      cipher.setAAD(Buffer.from(context));
      const body = Buffer.concat([iv, cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `${PREFIX}${currentId}:${body.toString('base64url')}`;
    },

    open(stored, context) {
      if (!stored.startsWith(PREFIX)) return stored;
      const m = SEALED.exec(stored);
      if (!m) throw new SecretsError('malformed', 'a sealed secret is not in the v1 format');
      const key = byId.get(m[1]!);
      if (key === undefined) {
        throw new SecretsError('unknown_key', `a secret is sealed under key ${m[1]}, which is neither SECRETS_KEY nor in SECRETS_KEY_PREVIOUS`);
      }
      const body = Buffer.from(m[2]!, 'base64url');
      if (body.length < IV_BYTES + TAG_BYTES) throw new SecretsError('malformed', 'a sealed secret is too short');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, body.subarray(0, IV_BYTES));
        decipher.setAAD(Buffer.from(context));
        decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
        return Buffer.concat([decipher.update(body.subarray(IV_BYTES, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
      } catch (err) {
        throw new SecretsError('tampered', 'a sealed secret does not authenticate (changed, or moved from another tenant or name)', { cause: err });
      }
    },
  };
}
