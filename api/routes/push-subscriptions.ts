import { ECDH } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { ChatError } from '../../shared/protocol/index.ts';
import { CHAT_PREFIX, type ApiDeps } from '../deps.ts';
import { AddressGuard } from '../notify/index.ts';

/** Subscriptions (browsers, devices) one user may have. */
export const PUSH_SUBSCRIPTIONS_MAX = 20;

const Base64Url = Type.String({ minLength: 1, maxLength: 200 });
const SubscriptionView = Type.Object({ endpoint: Type.String(), createdAt: Type.String() });

/**
 * Checks the keys of a PushSubscription: `p256dh` must be an uncompressed P-256 point (65 bytes
 * that lie on the curve) and `auth` 16 bytes, both base64url, or no push could ever be encrypted
 * for it (RFC 8291). Throws bad_request saying which.
 */
export function checkPushKeys(keys: { p256dh: string; auth: string }): void {
  const decode = (s: string) => (/^[A-Za-z0-9_-]+=*$/.test(s) ? Buffer.from(s, 'base64url') : undefined);
  const p256dh = decode(keys.p256dh);
  if (p256dh === undefined || p256dh.length !== 65 || p256dh[0] !== 4) {
    throw new ChatError('bad_request', 'keys.p256dh must be an uncompressed P-256 public key (65 bytes), base64url');
  }
  try {
    ECDH.convertKey(p256dh, 'prime256v1', undefined, undefined, 'uncompressed');
  } catch {
    throw new ChatError('bad_request', 'keys.p256dh is not a point on the P-256 curve');
  }
  const auth = decode(keys.auth);
  if (auth === undefined || auth.length !== 16) throw new ChatError('bad_request', 'keys.auth must be 16 bytes, base64url');
}

export function pushRoutes({ server, store, notify }: ApiDeps): void {
  const guard = new AddressGuard(notify?.allowNetworks ?? []);
  const path = `${CHAT_PREFIX}/push/subscriptions`;
  const tags = ['push'];

  server.route({
    method: 'get', path: `${CHAT_PREFIX}/push/vapid-public-key`, operationId: 'vapidPublicKey', tags,
    summary: "The server's VAPID public key, the applicationServerKey of pushManager.subscribe()",
    response: Type.Object({ publicKey: Type.String() }),
    handler: async () => {
      if (!notify?.vapid) throw new ChatError('not_found', 'Web Push is not configured on this server');
      return { publicKey: notify.vapid.publicKey };
    },
  });

  server.route({
    method: 'post', path, operationId: 'addPushSubscription', tags, status: 201,
    summary: "Store a browser's Web Push subscription (PushSubscription.toJSON())",
    description: 'A malformed key is refused with 400. Registering the same endpoint again replaces it.',
    body: Type.Object({
      endpoint: Type.String({ minLength: 1, maxLength: 2048 }),
      expirationTime: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
      keys: Type.Object({ p256dh: Base64Url, auth: Base64Url }),
    }),
    response: SubscriptionView,
    handler: async ({ principal, body }) => {
      checkPushKeys(body.keys);
      const url = await guard.checkUrl(body.endpoint, 'endpoint');
      const existing = await store.listPushSubscriptions(principal.tenant, principal.userId);
      if (existing.length >= PUSH_SUBSCRIPTIONS_MAX && !existing.some((s) => s.endpoint === url.href)) {
        throw new ChatError('conflict', `at most ${PUSH_SUBSCRIPTIONS_MAX} push subscriptions per user`);
      }
      const sub = { endpoint: url.href, keys: { p256dh: body.keys.p256dh, auth: body.keys.auth }, createdAt: new Date().toISOString() };
      await store.putPushSubscription(principal.tenant, principal.userId, sub);
      return { endpoint: sub.endpoint, createdAt: sub.createdAt };
    },
  });

  server.route({
    method: 'get', path, operationId: 'listPushSubscriptions', tags,
    summary: 'Your Web Push subscriptions (their keys are not shown)',
    response: Type.Object({ subscriptions: Type.Array(SubscriptionView) }),
    handler: async ({ principal }) => ({
      subscriptions: (await store.listPushSubscriptions(principal.tenant, principal.userId)).map((s) => ({ endpoint: s.endpoint, createdAt: s.createdAt })),
    }),
  });

  server.route({
    method: 'del', path, operationId: 'deletePushSubscription', tags,
    summary: 'Remove one of your subscriptions (by its endpoint)',
    query: Type.Object({ endpoint: Type.String({ minLength: 1, maxLength: 2048 }) }),
    response: Type.Object({ deleted: Type.Boolean() }),
    handler: async ({ principal, query }) => {
      const known = (await store.listPushSubscriptions(principal.tenant, principal.userId)).some((s) => s.endpoint === query.endpoint);
      if (!known) throw new ChatError('not_found', 'no such push subscription');
      await store.deletePushSubscription(principal.tenant, principal.userId, query.endpoint);
      return { deleted: true };
    },
  });
}
