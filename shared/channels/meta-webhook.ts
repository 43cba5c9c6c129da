import { ChatError } from '../protocol/errors.ts';
import type { WebhookHeaders } from './channel.ts';
import { metaSignature, sameSecret } from './signatures.ts';

/** The header Meta signs every webhook with (WhatsApp Cloud API and Messenger alike). */
export const META_SIGNATURE_HEADER = 'x-hub-signature-256';

/** What Meta's subscription check needs (WhatsApp Cloud API and Messenger share the check, the signature and the envelope). */
export interface MetaHandshakeConfig {
  verifyToken: string | undefined;
  /** How the refusal names the verify token's two sources (env variable and tenant secret). */
  product: string;
  verifyTokenEnv: string;
  verifyTokenSecret: string;
}

/** Throws ChatError('unauthorized') unless the raw bytes carry the app secret's signature. */
export function verifyMetaSignature(appSecret: string, headers: WebhookHeaders, rawBody: Buffer): void {
  const given = headers[META_SIGNATURE_HEADER];
  if (!given) throw new ChatError('unauthorized', 'missing X-Hub-Signature-256');
  if (!sameSecret(given, metaSignature(appSecret, rawBody))) throw new ChatError('unauthorized', 'X-Hub-Signature-256 does not match the body');
}

/** Meta's subscription check: `hub.challenge` back for `hub.mode=subscribe` with the right `hub.verify_token`. */
export function metaHandshake(cfg: MetaHandshakeConfig, query: URLSearchParams): string {
  const challenge = query.get('hub.challenge');
  if (query.get('hub.mode') !== 'subscribe' || challenge === null) throw new ChatError('bad_request', 'expected hub.mode=subscribe and hub.challenge');
  const token = query.get('hub.verify_token') ?? '';
  if (cfg.verifyToken === undefined || !sameSecret(token, cfg.verifyToken)) {
    throw new ChatError('forbidden', `hub.verify_token does not match the verify token configured for ${cfg.product} (${cfg.verifyTokenEnv}, or the tenant secret ${cfg.verifyTokenSecret})`);
  }
  return challenge;
}

/** A verified body as JSON whose `object` is the product's; ChatError('bad_request') otherwise. */
export function metaEnvelope(rawBody: Buffer, object: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(rawBody.toString('utf8'));
  } catch (err) {
    throw new ChatError('bad_request', 'the webhook body is not JSON', { cause: err });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body) || (body as Record<string, unknown>)['object'] !== object) {
    throw new ChatError('bad_request', `expected object "${object}"`);
  }
  return body as Record<string, unknown>;
}
