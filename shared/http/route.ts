import type { Static, TSchema, TObject, TUnknown } from '@sinclair/typebox';
import type { Principal } from '../auth/principal.ts';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'del';

/**
 * The request headers a handler can see, lowercase. Only these are read (uWS only offers headers
 * synchronously, before the first await), plus any a route names in `RouteDef.headers`.
 */
export const STANDARD_HEADERS = ['authorization', 'content-type', 'origin', 'user-agent', 'x-request-id', 'x-forwarded-for'] as const;

export type RequestHeaders = Readonly<Record<string, string | undefined>>;

export interface RouteContext<P, Q, B, A extends boolean> {
  /** The verified caller; `undefined` on routes declared `auth: false`. */
  principal: A extends false ? undefined : Principal;
  params: P;
  query: Q;
  body: B;
  headers: RequestHeaders;
  /** Overrides the route's success status for this response (for example 200 for a deduplicated create). */
  setStatus(status: number): void;
  setHeader(name: string, value: string): void;
}

/**
 * A typed REST route. Schemas validate the request (params and query are converted from strings
 * first, defaults applied) and document it in the OpenAPI document. The handler's return value is
 * the `data` of the `{success:true, data}` envelope; a ChatError it throws becomes the error
 * envelope with the code's HTTP status; anything else it throws becomes a logged 500.
 */
export interface RouteDef<
  P extends TSchema = TObject<{}>,
  Q extends TSchema = TObject<{}>,
  B extends TSchema = TUnknown,
  R extends TSchema = TUnknown,
  A extends boolean = true,
> {
  method: HttpMethod;
  /** uWS pattern: `/v1/chat/rooms/:roomId`; each `:name` must be a property of `params`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags?: string[];
  /** Whether a bearer token is required (default true). */
  auth?: A;
  params?: P;
  query?: Q;
  body?: B;
  response?: R;
  /** Success status (default 200). */
  status?: number;
  /** Extra request headers the handler reads, lowercase. */
  headers?: string[];
  handler: (ctx: RouteContext<Static<P>, Static<Q>, Static<B>, A>) => Promise<Static<R>>;
}

/** A route with its type parameters erased, as the server stores it. */
export type AnyRouteDef = RouteDef<TSchema, TSchema, TSchema, TSchema, boolean>;
