import type { HeaderList } from './reply.ts';

const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS';
const ALLOWED_HEADERS = 'Authorization, Content-Type, X-Tenant-ID';
const PREFLIGHT_MAX_AGE_SEC = '600';

/**
 * CORS by the configured origins (`CORS_ORIGINS`), for every answer the server writes: routes,
 * held responses (SSE, long-poll) and refused WebSocket upgrades alike.
 */
export class Cors {
  private readonly anyOrigin: boolean;
  /** Answers are made once per origin: every request gets a shared list (never changed by a writer). */
  private readonly byOrigin: ReadonlyMap<string, HeaderList>;

  constructor(origins: readonly string[]) {
    this.anyOrigin = origins.includes('*');
    this.byOrigin = new Map(origins.filter((o) => o !== '*').map((o) => [o, frozen([
      ['Access-Control-Allow-Origin', o], ['Vary', 'Origin'], ['Access-Control-Expose-Headers', 'Retry-After'],
    ])]));
  }

  /** The headers of an answer to a request from `origin` (none for an origin not allowed). */
  headers(origin: string | undefined): HeaderList {
    if (!origin) return this.anyOrigin ? ANY_ORIGIN : NONE;
    if (this.anyOrigin) return ANY_ORIGIN_EXPOSED;
    return this.byOrigin.get(origin) ?? NONE;
  }

  /** What a preflight adds to `headers(origin)`: nothing when the origin is not allowed. */
  preflight(allowed: HeaderList): HeaderList {
    if (allowed.length === 0) return [];
    return [['Access-Control-Allow-Methods', ALLOWED_METHODS], ['Access-Control-Allow-Headers', ALLOWED_HEADERS], ['Access-Control-Max-Age', PREFLIGHT_MAX_AGE_SEC]];
  }
}

function frozen(list: HeaderList): HeaderList {
  for (const pair of list) Object.freeze(pair);
  return Object.freeze(list) as HeaderList;
}

const NONE = frozen([]);
const ANY_ORIGIN = frozen([['Access-Control-Allow-Origin', '*']]);
const ANY_ORIGIN_EXPOSED = frozen([['Access-Control-Allow-Origin', '*'], ['Access-Control-Expose-Headers', 'Retry-After']]);
