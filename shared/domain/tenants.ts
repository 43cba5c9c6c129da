/**
 * A tenant's own record (issue 15): its quotas (each one unset takes the deployment's default),
 * free-form settings, and a secrets map where channel credentials live. The record exists once a
 * tenant admin wrote any of it, or created an API key: a tenant with no record is unknown to
 * server-to-server calls (`X-Tenant-ID`), which answer 404.
 */
export interface TenantRecord {
  tenant: string;
  quotas: Partial<TenantQuotas>;
  /** Non-secret settings, returned as stored. */
  config: Record<string, unknown>;
  /** Secrets by name (channel credentials): stored as given, never returned in full nor logged. */
  secrets: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

/** The limits of one tenant; 0 means unlimited. */
export interface TenantQuotas {
  /** Rooms the tenant may hold. */
  rooms: number;
  /** Members one of its rooms may hold. */
  membersPerRoom: number;
  /** Messages its users may send per second, all together. */
  messagesPerSecond: number;
  /** Questions its users may ask the assistant per minute, all together. */
  aiRequestsPerMinute: number;
}

export const QUOTA_NAMES = ['rooms', 'membersPerRoom', 'messagesPerSecond', 'aiRequestsPerMinute'] as const satisfies ReadonlyArray<keyof TenantQuotas>;

/**
 * A tenant API key as stored: only the SHA-256 of its secret part (keys are 256 random bits, so a
 * fast hash is as strong as a slow one), never the key itself.
 */
export interface TenantApiKey {
  tenant: string;
  keyId: string;
  name: string;
  /** Hex SHA-256 of the whole key. */
  hash: string;
  createdBy: string;
  createdAt: string;
  revokedAt?: string;
}

/** What a secret looks like when read back: its length hidden, its last characters shown when it is long enough to spare them. */
export function maskSecret(value: string): string {
  return value.length >= 12 ? `****${value.slice(-4)}` : '****';
}
