import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { Principal } from '../../shared/auth/index.ts';
import { webhookOwner, type StoredWebhook, type WebhookScope } from '../../shared/domain/index.ts';
import { ChatError } from '../../shared/protocol/index.ts';
import { CHAT_PREFIX, type ApiDeps } from '../deps.ts';
import { AddressGuard, newWebhookSecret, secretHint } from '../notify/index.ts';

/** Webhooks one owner (a user, or the tenant) may have. */
export const WEBHOOKS_MAX = 10;
/** The token roles that may manage the tenant's webhooks (the tenant admin API's). */
export const TENANT_ADMIN_ROLES = ['admin', 'tenant_admin'];

const Scope = Type.Union([Type.Literal('user'), Type.Literal('tenant')], {
  description: "user: your notifications; tenant: every user's of your tenant (tokens with the admin or tenant_admin role)",
});

const WebhookSchema = Type.Object({
  webhookId: Type.String(),
  scope: Scope,
  url: Type.String(),
  secretHint: Type.String({ description: 'the secret\'s last characters; the whole secret is shown only when the webhook is created' }),
  createdBy: Type.String(),
  createdAt: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  consecutiveFailures: Type.Integer({ description: 'deliveries in a row that were given up on' }),
  lastError: Type.Optional(Type.String()),
  lastAttemptAt: Type.Optional(Type.String()),
  lastSuccessAt: Type.Optional(Type.String()),
  disabledAt: Type.Optional(Type.String()),
  disabledReason: Type.Optional(Type.String()),
}, { $id: 'Webhook' });

const CreatedWebhookSchema = Type.Composite([WebhookSchema, Type.Object({
  secret: Type.String({ description: 'HMAC-SHA256 key of X-Chat-Signature; shown this once' }),
})]);

const WebhookParams = Type.Object({ webhookId: Type.String({ pattern: '^wh_[A-Za-z0-9_-]{1,32}$' }) });

function view(w: StoredWebhook): Record<string, unknown> & { webhookId: string } {
  return {
    webhookId: w.webhookId, scope: w.scope, url: w.url, secretHint: secretHint(w.secret), createdBy: w.createdBy, createdAt: w.createdAt,
    ...w.health,
  };
}

function isTenantAdmin(p: Principal): boolean {
  return TENANT_ADMIN_ROLES.some((r) => p.roles.includes(r));
}

export function webhookRoutes({ server, store, notify }: ApiDeps): void {
  const guard = new AddressGuard(notify?.allowNetworks ?? []);
  const path = `${CHAT_PREFIX}/webhooks`;
  const tags = ['webhooks'];

  /** The caller's webhook of that id, or the tenant's when the caller is a tenant admin; else not_found. */
  async function find(p: Principal, webhookId: string): Promise<StoredWebhook> {
    const own = await store.getWebhook(p.tenant, p.userId, webhookId);
    if (own) return own;
    const tenants = isTenantAdmin(p) ? await store.getWebhook(p.tenant, '', webhookId) : undefined;
    if (tenants) return tenants;
    throw new ChatError('not_found', 'no such webhook');
  }

  server.route({
    method: 'post', path, operationId: 'createWebhook', tags, status: 201,
    summary: 'Register a webhook that receives offline notifications, signed (docs/webhooks.md)',
    description: 'The URL must be http or https and may not point at loopback, private or link-local addresses (unless '
      + 'NOTIFY_ALLOW_NETWORKS allows them). The answer holds the signing secret; it is never shown again.',
    body: Type.Object({ url: Type.String({ minLength: 1, maxLength: 2048 }), scope: Type.Optional(Scope) }, { additionalProperties: false }),
    response: CreatedWebhookSchema,
    handler: async ({ principal, body }) => {
      const scope: WebhookScope = body.scope ?? 'user';
      if (scope === 'tenant' && !isTenantAdmin(principal)) throw new ChatError('forbidden', `only tokens with the ${TENANT_ADMIN_ROLES.join(' or ')} role manage the tenant's webhooks`);
      const url = await guard.checkUrl(body.url, 'url');
      const userId = scope === 'user' ? principal.userId : '';
      if ((await store.listWebhooks(principal.tenant, webhookOwner(scope, userId))).length >= WEBHOOKS_MAX) {
        throw new ChatError('conflict', `at most ${WEBHOOKS_MAX} webhooks per ${scope}`);
      }
      const webhook = {
        webhookId: `wh_${randomBytes(12).toString('base64url')}`, tenant: principal.tenant, scope, userId, createdBy: principal.userId,
        url: url.href, secret: newWebhookSecret(), createdAt: new Date().toISOString(),
      };
      await store.putWebhook(webhook);
      return { ...view({ ...webhook, health: { status: 'active', consecutiveFailures: 0 } }), secret: webhook.secret } as never;
    },
  });

  server.route({
    method: 'get', path, operationId: 'listWebhooks', tags,
    summary: "Your webhooks, and the tenant's for tenant admins, with their status",
    response: Type.Object({ webhooks: Type.Array(WebhookSchema) }),
    handler: async ({ principal }) => {
      const own = await store.listWebhooks(principal.tenant, principal.userId);
      const tenants = isTenantAdmin(principal) ? await store.listWebhooks(principal.tenant, '') : [];
      return { webhooks: [...own, ...tenants].map(view) as never };
    },
  });

  server.route({
    method: 'get', path: `${path}/:webhookId`, operationId: 'getWebhook', tags,
    summary: 'One webhook: status, last error, why it was disabled',
    params: WebhookParams, response: WebhookSchema,
    handler: async ({ principal, params }) => view(await find(principal, params.webhookId)) as never,
  });

  server.route({
    method: 'post', path: `${path}/:webhookId/enable`, operationId: 'enableWebhook', tags,
    summary: 'Turn a disabled webhook back on (its failure count starts again)',
    params: WebhookParams, response: WebhookSchema,
    handler: async ({ principal, params }) => {
      const w = await find(principal, params.webhookId);
      const health = { status: 'active' as const, consecutiveFailures: 0, ...(w.health.lastSuccessAt ? { lastSuccessAt: w.health.lastSuccessAt } : {}) };
      await store.setWebhookHealth(w.tenant, webhookOwner(w.scope, w.userId), w.webhookId, health);
      return view({ ...w, health }) as never;
    },
  });

  server.route({
    method: 'del', path: `${path}/:webhookId`, operationId: 'deleteWebhook', tags,
    summary: 'Remove a webhook',
    params: WebhookParams, response: Type.Object({ deleted: Type.Boolean() }),
    handler: async ({ principal, params }) => {
      const w = await find(principal, params.webhookId);
      await store.deleteWebhook(w.tenant, webhookOwner(w.scope, w.userId), w.webhookId);
      return { deleted: true };
    },
  });
}
