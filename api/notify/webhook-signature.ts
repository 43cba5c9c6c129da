import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures (docs/webhooks.md has the receiver's recipe): the body is signed with the
 * webhook's secret as HMAC-SHA256 over `<timestamp>.<body>`, the timestamp being Unix seconds sent
 * in `X-Chat-Timestamp`, so a captured delivery cannot be replayed later with a new timestamp.
 */
export const SIGNATURE_HEADER = 'x-chat-signature';
export const TIMESTAMP_HEADER = 'x-chat-timestamp';
export const DELIVERY_HEADER = 'x-chat-delivery';
/** Scheme version in the header value: `v1=<hex>`. */
const SCHEME = 'v1';

export function signWebhook(secret: string, timestamp: number, body: string | Buffer): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
  return `${SCHEME}=${mac}`;
}

/**
 * What a receiver does: recompute and compare in constant time, and refuse timestamps more than
 * `toleranceSec` away from now. Exported for tests and for receivers written in TypeScript.
 */
export function verifyWebhook(secret: string, header: string, timestamp: string, body: string | Buffer, nowSec: number, toleranceSec = 300): boolean {
  const ts = Number(timestamp);
  if (!Number.isInteger(ts) || Math.abs(nowSec - ts) > toleranceSec) return false;
  const expected = Buffer.from(signWebhook(secret, ts, body));
  return header.split(',').some((part) => {
    const given = Buffer.from(part.trim());
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** A new webhook secret: 32 random bytes, base64url, with a prefix that says what it is. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** How a secret is shown after its creation: enough to tell two apart, never enough to sign. */
export function secretHint(secret: string): string {
  return `whsec_…${secret.slice(-4)}`;
}
