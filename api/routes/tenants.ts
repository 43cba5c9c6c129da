import { Type } from '@sinclair/typebox';
import { TENANT_SERVICE_ROLE, newApiKey, type Principal } from '../../shared/auth/index.ts';
import { canonicalId, maskSecret, type TenantApiKey, type TenantQuotas, type TenantRecord } from '../../shared/domain/index.ts';
import { ChatError } from '../../shared/protocol/index.ts';
import { effectiveQuotas } from '../../shared/commands/index.ts';
import { credentialProblem } from '../../shared/channels/index.ts';
import type { RouteDeps } from '../deps.ts';

/** Token roles that manage their own tenant (`admin` already manages the tenant's webhooks). */
export const TENANT_ADMIN_ROLES = ['tenant_admin', 'admin'] as const;
export const TENANTS_PREFIX = '/v1/tenants';
/** Keys one tenant may hold, revoked ones included (they stay listed for the record). */
export const API_KEYS_MAX = 50;
/** Secrets one tenant may hold, and how long each may be. */
export const SECRETS_MAX = 50;
const SECRET_MAX_LENGTH = 8192;

const tags = ['tenants'];
const TenantParams = Type.Object({ tenantId: Type.String({ minLength: 1, maxLength: 128 }) });
const KeyParams = Type.Object({ tenantId: Type.String({ minLength: 1, maxLength: 128 }), keyId: Type.String({ pattern: '^[0-9a-f]{16}$' }) });

const ApiKeySchema = Type.Object({
  keyId: Type.String(),
  name: Type.String(),
  prefix: Type.String({ description: 'how the key starts, to recognise it; the rest is never shown again' }),
  createdBy: Type.String(),
  createdAt: Type.String(),
  revokedAt: Type.Optional(Type.String()),
}, { $id: 'TenantApiKey' });

const Count = Type.Integer({ minimum: 0, maximum: 1_000_000_000 });
const QuotasSchema = Type.Object({
  rooms: Count, membersPerRoom: Count, messagesPerSecond: Count, aiRequestsPerMinute: Count,
}, { $id: 'TenantQuotas', description: '0: unlimited' });
const QuotasView = Type.Object({
  quotas: QuotasSchema,
  overrides: Type.Partial(QuotasSchema, { description: "the tenant's own values; the others are the deployment's defaults" }),
});
const QuotasBody = Type.Partial(Type.Object({
  rooms: Type.Union([Count, Type.Null()]), membersPerRoom: Type.Union([Count, Type.Null()]),
  messagesPerSecond: Type.Union([Count, Type.Null()]), aiRequestsPerMinute: Type.Union([Count, Type.Null()]),
}), { additionalProperties: false, description: 'each quota given replaces the tenant\'s; null goes back to the default; one left out stays' });

const SettingsView = Type.Object({
  config: Type.Record(Type.String(), Type.Unknown()),
  secrets: Type.Record(Type.String(), Type.String(), { description: 'each secret masked: never returned in full' }),
  updatedAt: Type.Union([Type.String(), Type.Null()]),
});
const SECRET_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const SettingsBody = Type.Object({
  config: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'replaces the settings as a whole' })),
  secrets: Type.Optional(Type.Record(Type.String({ description: 'a letter, then up to 63 letters, digits, _ . -' }), Type.Union([Type.String({ minLength: 1, maxLength: SECRET_MAX_LENGTH }), Type.Null()]), {
    description: 'each secret given is set; null removes it; one left out stays',
  })),
}, { additionalProperties: false });

function keyView(k: TenantApiKey) {
  return { keyId: k.keyId, name: k.name, prefix: `ctk_${k.keyId}_`, createdBy: k.createdBy, createdAt: k.createdAt, ...(k.revokedAt ? { revokedAt: k.revokedAt } : {}) };
}

function settingsView(r: TenantRecord | undefined) {
  const secrets: Record<string, string> = {};
  for (const [name, value] of Object.entries(r?.secrets ?? {})) secrets[name] = maskSecret(value);
  return { config: r?.config ?? {}, secrets, updatedAt: r?.updatedAt ?? null };
}

/**
 * The tenant admin API (issue 15): a tenant's quotas, its API keys for server-to-server calls, and
 * its settings with a secrets map (where channel credentials live). Only a token of that tenant
 * with a tenant admin role may use it: another tenant's id answers 403 whether or not it exists, so
 * nothing tells which tenants there are.
 */
export function tenantRoutes({ server, store, tenants, tenantSecrets, channelDirectory }: RouteDeps): void {
  const defaults = tenants?.defaultQuotas ?? { rooms: 0, membersPerRoom: 0, messagesPerSecond: 0, aiRequestsPerMinute: 0 };

  function admit(p: Principal, tenantId: string): string {
    const tenant = canonicalId(tenantId, 'tenantId');
    if (p.roles.includes(TENANT_SERVICE_ROLE) || !TENANT_ADMIN_ROLES.some((r) => p.roles.includes(r))) {
      throw new ChatError('forbidden', `only tokens with the ${TENANT_ADMIN_ROLES.join(' or ')} role manage a tenant`);
    }
    if (tenant !== p.tenant) throw new ChatError('forbidden', 'a tenant admin manages their own tenant only');
    return tenant;
  }

  /**
   * Applies `change` to the tenant's record, made if missing (which makes the tenant known), its
   * secrets sealed at rest; this process's channel adapters of the tenant are built again.
   */
  async function update(tenant: string, change: (r: TenantRecord) => TenantRecord): Promise<TenantRecord> {
    const next = await tenantSecrets.update(tenant, change);
    channelDirectory?.invalidate(tenant);
    return next;
  }

  const quotasView = (r: TenantRecord | undefined) => ({ quotas: effectiveQuotas(defaults, r), overrides: { ...(r?.quotas ?? {}) } });

  server.route({
    method: 'get', path: `${TENANTS_PREFIX}/:tenantId/quotas`, operationId: 'getTenantQuotas', tags,
    summary: "The tenant's quotas in force, and which of them are its own",
    params: TenantParams, response: QuotasView,
    handler: async ({ principal, params }) => quotasView(await store.getTenant(admit(principal, params.tenantId))),
  });

  server.route({
    method: 'put', path: `${TENANTS_PREFIX}/:tenantId/quotas`, operationId: 'putTenantQuotas', tags,
    summary: "Set the tenant's quotas (rooms, membersPerRoom, messagesPerSecond, aiRequestsPerMinute; 0: unlimited)",
    params: TenantParams, body: QuotasBody, response: QuotasView,
    handler: async ({ principal, params, body }) => {
      const tenant = admit(principal, params.tenantId);
      const record = await update(tenant, (r) => {
        const quotas: Partial<TenantQuotas> = { ...r.quotas };
        for (const [name, value] of Object.entries(body) as Array<[keyof TenantQuotas, number | null]>) {
          if (value === null) delete quotas[name];
          else quotas[name] = value;
        }
        return { ...r, quotas };
      });
      return quotasView(record);
    },
  });

  server.route({
    method: 'get', path: `${TENANTS_PREFIX}/:tenantId/settings`, operationId: 'getTenantSettings', tags,
    summary: "The tenant's settings, with its secrets masked",
    params: TenantParams, response: SettingsView,
    handler: async ({ principal, params }) => settingsView(await tenantSecrets.read(admit(principal, params.tenantId))),
  });

  server.route({
    method: 'put', path: `${TENANTS_PREFIX}/:tenantId/settings`, operationId: 'putTenantSettings', tags,
    summary: "Change the tenant's settings and secrets (channel credentials); secrets come back masked",
    params: TenantParams, body: SettingsBody, response: SettingsView,
    handler: async ({ principal, params, body }) => {
      const tenant = admit(principal, params.tenantId);
      const record = await update(tenant, (r) => {
        const secrets = { ...r.secrets };
        for (const [name, value] of Object.entries(body.secrets ?? {})) {
          if (!SECRET_NAME.test(name)) throw new ChatError('bad_request', `secret name ${JSON.stringify(name.slice(0, 64))}: a letter, then up to 63 letters, digits, _ . -`);
          const problem = value === null ? undefined : credentialProblem(name, value);
          if (problem) throw new ChatError('bad_request', problem);
          if (value === null) delete secrets[name];
          else secrets[name] = value;
        }
        if (Object.keys(secrets).length > SECRETS_MAX) throw new ChatError('bad_request', `at most ${SECRETS_MAX} secrets per tenant`);
        return { ...r, config: body.config ?? r.config, secrets };
      });
      return settingsView(record);
    },
  });

  server.route({
    method: 'post', path: `${TENANTS_PREFIX}/:tenantId/api-keys`, operationId: 'createTenantApiKey', tags, status: 201,
    summary: 'Create an API key for server-to-server calls (Authorization: Bearer <key> with X-Tenant-ID); the key is shown this once',
    params: TenantParams,
    body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false }),
    response: Type.Composite([ApiKeySchema, Type.Object({ key: Type.String({ description: 'the key; never shown again' }) })]),
    handler: async ({ principal, params, body }) => {
      const tenant = admit(principal, params.tenantId);
      if ((await store.listApiKeys(tenant)).length >= API_KEYS_MAX) throw new ChatError('conflict', `at most ${API_KEYS_MAX} API keys per tenant`);
      await update(tenant, (r) => r);
      const { keyId, key, hash } = newApiKey();
      const stored: TenantApiKey = { tenant, keyId, name: body.name, hash, createdBy: principal.userId, createdAt: new Date().toISOString() };
      await store.putApiKey(stored);
      return { ...keyView(stored), key };
    },
  });

  server.route({
    method: 'get', path: `${TENANTS_PREFIX}/:tenantId/api-keys`, operationId: 'listTenantApiKeys', tags,
    summary: "The tenant's API keys, revoked ones included (never the keys themselves)",
    params: TenantParams, response: Type.Object({ apiKeys: Type.Array(ApiKeySchema) }),
    handler: async ({ principal, params }) => ({ apiKeys: (await store.listApiKeys(admit(principal, params.tenantId))).map(keyView) }),
  });

  server.route({
    method: 'del', path: `${TENANTS_PREFIX}/:tenantId/api-keys/:keyId`, operationId: 'revokeTenantApiKey', tags,
    summary: 'Revoke an API key: it is refused from now on (idempotent)',
    params: KeyParams, response: ApiKeySchema,
    handler: async ({ principal, params }) => {
      const tenant = admit(principal, params.tenantId);
      const key = await store.getApiKey(tenant, params.keyId);
      if (!key) throw new ChatError('not_found', 'no such API key');
      const revoked = key.revokedAt ? key : { ...key, revokedAt: new Date().toISOString() };
      if (!key.revokedAt) await store.putApiKey(revoked);
      return keyView(revoked);
    },
  });
}
