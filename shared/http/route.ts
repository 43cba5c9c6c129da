import type { Static, TSchema, TObject, TUnknown } from '@sinclair/typebox';
import type { Principal } from '../auth/principal.ts';
import type { HeaderList } from './reply.ts';
import type { JsonText } from './json-text.ts';
import type { Readable } from 'node:stream';
import type { ErrorCode } from '../protocol/errors.ts';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'del';

/**
 * The request headers a handler can see, lowercase. Only these are read (uWS only offers headers
 * synchronously, before the first await), plus any a route names in `RouteDef.headers`.
 */
export const STANDARD_HEADERS = ['authorization', 'content-type', 'origin', 'user-agent', 'x-request-id', 'x-forwarded-for', 'x-tenant-id'] as const;

export type RequestHeaders = Readonly<Record<string, string | undefined>>;

/** What every kind of route declares: where it is, how it is documented, what it reads. */
export interface RouteBase<Q extends TSchema> {
  method: HttpMethod;
  /** uWS pattern: `/v1/chat/rooms/:roomId`; each `:name` must be a property of `params`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags?: string[];
  query?: Q;
  /** Extra request headers the handler reads, lowercase. */
  headers?: string[];
}

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
 * the `data` of the `{success:true, data}` envelope (or that data as JSON text: JsonText); a ChatError it throws becomes the error
 * envelope with the code's HTTP status; anything else it throws becomes a logged 500.
 */
export interface RouteDef<
  P extends TSchema = TObject<{}>,
  Q extends TSchema = TObject<{}>,
  B extends TSchema = TUnknown,
  R extends TSchema = TUnknown,
  A extends boolean = true,
> extends RouteBase<Q> {
  /** Whether a bearer token is required (default true). */
  auth?: A;
  params?: P;
  body?: B;
  response?: R;
  /** Success status (default 200). */
  status?: number;
  handler: (ctx: RouteContext<Static<P>, Static<Q>, Static<B>, A>) => Promise<Static<R> | JsonText<Static<R>>>;
}

/** A route with its type parameters erased, as the server stores it. */
export type AnyRouteDef = RouteDef<TSchema, TSchema, TSchema, TSchema, boolean>;

/**
 * A route whose answer outlives its handler: a stream (Server-Sent Events) or an answer held
 * until there is news (long-polling). It is authenticated, its query validated, its answers and
 * errors carry CORS, counted in the HTTP metrics (when its status is written) and documented,
 * like a REST route. An error the handler throws before it answered becomes the error envelope;
 * from then on the response is the route's own.
 */
export interface HeldRouteDef<Q extends TSchema = TObject<{}>, B extends TSchema = TUnknown> extends RouteBase<Q> {
  /** `post` reads and validates a JSON `body` first (a question whose answer may stream). */
  method: 'get' | 'post';
  body?: B;
  /** Also take the bearer token from `?token=` (EventSource cannot send an Authorization header). */
  tokenInQuery?: boolean;
  /** For the OpenAPI document: the success answer is `{success:true, data}` with this `data`... */
  response?: TSchema;
  /** ...or a body of this content type (`text/event-stream`). */
  contentType?: string;
  handler: (ctx: HeldContext<Static<Q>, Static<B>>, res: HeldResponse) => Promise<void>;
}

export interface HeldContext<Q, B = unknown> {
  principal: Principal;
  query: Q;
  /** The validated JSON body of a `post` route. */
  body: B;
  headers: RequestHeaders;
}

/**
 * The response of a held route. It is answered once: `stream` then `write`s and `end`, or `json`,
 * or `fail`. Once the client went away or the answer ended (`closed`), every call is ignored.
 */
export interface HeldResponse {
  readonly closed: boolean;
  /** Called once when the client goes away before the answer ended. */
  onAbort(listener: () => void): void;
  /** Status 200 with these headers (CORS added) and the first chunk; more follow in `write`s. */
  stream(headers: HeaderList, first: string): void;
  /** A chunk of the stream, corked. False when the socket took it only in part: uWS buffers the rest. */
  write(chunk: string): boolean;
  /** Called when the socket drained what uWS buffered; the listener returns true when done with it. */
  onWritable(listener: () => boolean): void;
  /** Ends the stream. */
  end(): void;
  /** Cuts the connection (a reader that fell too far behind). */
  close(): void;
  /** Status 200 with this JSON text as the body, and these headers (CORS added). */
  json(body: string, headers?: HeaderList): void;
  /** The error envelope, if nothing was written yet. */
  fail(err: unknown): void;
}

/**
 * A route whose request body or answer is bytes rather than JSON: an upload streamed to storage,
 * a file download (with ranges), a redirect to where the bytes are. It is authenticated, its
 * params and query validated, its errors are the error envelope with CORS, counted and documented,
 * like a REST route.
 */
export interface BinaryRouteDef<P extends TSchema = TObject<{}>, Q extends TSchema = TObject<{}>, A extends boolean = true> extends RouteBase<Q> {
  method: 'get' | 'post' | 'put';
  /** Whether a bearer token is required (default true); false for callers proven otherwise (signed platform webhooks). */
  auth?: A;
  params?: P;
  /**
   * `post`/`put`: the body is the bytes of this type (documentation only; the handler decides what
   * they are), handed to the handler as a stream, refused past `maxBodyBytes`.
   */
  body?: { contentType: string; maxBodyBytes: number };
  /** Also take the bearer token from `?token=` (an `<img src>` or a download link cannot send a header). */
  tokenInQuery?: boolean;
  /** For the OpenAPI document: a JSON answer is `{success:true, data}` with this `data`... */
  response?: TSchema;
  /** ...or a body of this content type. */
  contentType?: string;
  /** Success status, documented (default 200). */
  status?: number;
  /** Error codes the route answers besides the usual ones, for the document. */
  errors?: ErrorCode[];
  handler: (ctx: BinaryContext<Static<P>, Static<Q>, A>) => Promise<BinaryAnswer>;
}

export interface BinaryContext<P, Q, A extends boolean = true> {
  /** The verified caller; `undefined` on routes declared `auth: false`. */
  principal: A extends false ? undefined : Principal;
  params: P;
  query: Q;
  headers: RequestHeaders;
  /** The query string as received, undecoded, without `?` (Twilio signs the URL byte for byte). */
  rawQuery: string;
  /** The request body of a `post`/`put` route (see BinaryRouteDef.body). */
  body: RequestBody | undefined;
}

/** A streamed request body: see RequestStream. */
export interface RequestBody extends AsyncIterable<Uint8Array> {
  readonly declaredLength: number | undefined;
  readonly received: number;
  setLimit(limit: number): void;
  peek(n: number): Promise<Buffer>;
}

export type BinaryAnswer =
  /** The `{success:true, data}` envelope. */
  | { kind: 'json'; status: number; data: unknown; headers?: HeaderList }
  /**
   * Bytes: `size` of them from `body` (which the server destroys if the client goes away), or no
   * body (304, 416). The server writes Content-Length; `headers` are the rest.
   */
  | { kind: 'bytes'; status: number; headers: HeaderList; size: number; body?: Readable }
  | { kind: 'redirect'; status: 302 | 303 | 307; location: string; headers?: HeaderList };
