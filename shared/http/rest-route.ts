import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { Principal } from '../auth/principal.ts';
import type { Exchange } from './exchange.ts';
import { JsonText } from './json-text.ts';
import { clientError, JSON_TYPE, type HeaderList } from './reply.ts';
import { readBody, parseJson, type BodyResult } from './request-body.ts';
import { decodeParams, parseQuery, validate } from './request-input.ts';
import type { CompiledRoute } from './route-table.ts';
import type { AnyRouteDef, RequestHeaders } from './route.ts';
import { authenticate, begin, CLIENT_CLOSED, observe, readHeaders, type ServerCore } from './server-core.ts';
import { context, trace, tracingEnabled } from '../telemetry/tracing.ts';
import { endRouteSpan, OPERATIONS_TAG, startRouteSpan } from './route-span.ts';

/** A response that is not the JSON envelope (health probes, metrics, the OpenAPI document). */
export class RawReply {
  constructor(readonly status: number, readonly contentType: string, readonly body: string) {}
}

interface RestRoute extends CompiledRoute {
  def: AnyRouteDef;
  body: TypeCheck<TSchema> | undefined;
  response: TypeCheck<TSchema> | undefined;
}

interface RawRequest {
  params: string[];
  query: string;
  headers: RequestHeaders;
}

/**
 * Mounts a REST route: auth, validation, the handler, the `{success, data}` envelope (or a
 * RawReply as is), error mapping and metrics. `envelope: false` documents the response schema
 * as the body itself; `contentType` documents a non-JSON body.
 */
export function mountRoute(core: ServerCore, def: AnyRouteDef, envelope: boolean, contentType?: string): void {
  if (def.auth !== false && !core.authenticator) throw new Error(`route ${def.operationId} needs auth but the server has no authenticator`);
  const compiled = core.routes.add(def, {
    auth: def.auth !== false, status: def.status ?? 200, envelope,
    ...(def.body ? { body: def.body } : {}),
    ...(def.response ? { response: def.response } : {}),
    ...(contentType ? { contentType } : {}),
  });
  const route: RestRoute = {
    ...compiled,
    def,
    body: def.body ? TypeCompiler.Compile(def.body) : undefined,
    response: def.response && core.checkResponses ? TypeCompiler.Compile(def.response) : undefined,
  };

  // probes and scrapes are not traced: they would bury the requests worth reading
  const traced = !def.tags?.includes(OPERATIONS_TAG);
  core.app[def.method](def.path, (res, req) => {
    const started = performance.now();
    const headers = readHeaders(req, def.headers);
    const raw = { params: route.paramNames.map((_, i) => req.getParameter(i)), query: req.getQuery() ?? '', headers };
    const ex = begin(core, res, headers['origin']);
    const body = def.body ? readBody(ex, req.getHeader('content-length'), core.bodyLimit) : undefined;
    const span = traced && tracingEnabled() ? startRouteSpan(def.method, route.label, req.getHeader('traceparent')) : undefined;
    const answer = () => run(core, ex, route, raw, body).then(
      (status) => {
        observe(route.label, ex.aborted ? CLIENT_CLOSED : status, started);
        return status;
      },
      (err: unknown) => {
        const status = ex.writeError(clientError(err, core.log, { route: route.label, method: def.method }));
        observe(route.label, ex.aborted ? CLIENT_CLOSED : status, started);
        return status;
      },
    );
    if (span === undefined) void answer();
    else void context.with(trace.setSpan(context.active(), span), answer).then((status) => endRouteSpan(span, ex.aborted ? CLIENT_CLOSED : status));
  });
}

async function run(core: ServerCore, ex: Exchange, route: RestRoute, raw: RawRequest, body: Promise<BodyResult> | undefined): Promise<number> {
  const principal: Principal | undefined = route.def.auth === false ? undefined : await authenticate(core, raw.headers, undefined);
  const params = validate(route.params, decodeParams(route.paramNames, raw.params), 'path', true);
  const query = validate(route.query, parseQuery(raw.query, route.def.query), 'query', true);
  let payload: unknown;
  if (body) {
    const read = await body;
    if (!read.ok) return ex.writeError(read.error, read.closeConnection);
    payload = validate(route.body, parseJson(read.bytes), 'body', false);
  }
  let status = route.def.status ?? 200;
  const extra: HeaderList = [];
  const data = await route.def.handler({
    principal, params, query, body: payload, headers: raw.headers,
    setStatus: (s) => { status = s; },
    setHeader: (name, value) => { extra.push([name, value]); },
  });
  if (data instanceof RawReply) {
    ex.write(data.status, data.contentType, data.body, extra);
    return data.status;
  }
  if (route.response) checkResponse(route, data instanceof JsonText ? JSON.parse(data.text) : data);
  const text = data instanceof JsonText ? `{"success":true,"data":${data.text}}` : JSON.stringify({ success: true, data });
  ex.write(status, JSON_TYPE, text, extra);
  return status;
}

function checkResponse(route: RestRoute, data: unknown): void {
  if (route.response!.Check(data)) return;
  const first = route.response!.Errors(data).First();
  throw new Error(`response of ${route.def.operationId} does not match its schema: ${first?.path || '/'} ${first?.message}`);
}
