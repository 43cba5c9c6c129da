import { createHmac, timingSafeEqual } from 'node:crypto';

/** Constant-time equality of two strings (a plain `===` leaks how much of a guess was right). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Meta's `X-Hub-Signature-256` value for a body: `sha256=` and the hex HMAC-SHA256 under the app secret. */
export function metaSignature(appSecret: string, rawBody: Buffer): string {
  return `sha256=${createHmac('sha256', appSecret).update(rawBody).digest('hex')}`;
}
