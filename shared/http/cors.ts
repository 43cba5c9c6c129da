import type { HeaderList } from './reply.ts';

const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS';
const ALLOWED_HEADERS = 'Authorization, Content-Type';
const PREFLIGHT_MAX_AGE_SEC = '600';

/**
 * CORS by the configured origins (`CORS_ORIGINS`), for every answer the server writes: routes,
 * held responses (SSE, long-poll) and refused WebSocket upgrades alike.
 */
export class Cors {
  private readonly anyOrigin: boolean;
  private readonly origins: ReadonlySet<string>;

  constructor(origins: readonly string[]) {
    this.anyOrigin = origins.includes('*');
    this.origins = new Set(origins);
  }

  /** The headers of an answer to a request from `origin` (none for an origin not allowed). */
  headers(origin: string | undefined): HeaderList {
    if (!origin) return this.anyOrigin ? [['Access-Control-Allow-Origin', '*']] : [];
    if (this.anyOrigin) return [['Access-Control-Allow-Origin', '*'], ['Access-Control-Expose-Headers', 'Retry-After']];
    if (!this.origins.has(origin)) return [];
    return [['Access-Control-Allow-Origin', origin], ['Vary', 'Origin'], ['Access-Control-Expose-Headers', 'Retry-After']];
  }

  /** What a preflight adds to `headers(origin)`: nothing when the origin is not allowed. */
  preflight(allowed: HeaderList): HeaderList {
    if (allowed.length === 0) return [];
    return [['Access-Control-Allow-Methods', ALLOWED_METHODS], ['Access-Control-Allow-Headers', ALLOWED_HEADERS], ['Access-Control-Max-Age', PREFLIGHT_MAX_AGE_SEC]];
  }
}
