import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ChatError } from '../protocol/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Exchange } from './exchange.ts';
import { clientError, errorReply, JSON_TYPE, writeHead, type HeaderList } from './reply.ts';
import { parseJson, readBody } from './request-body.ts';
import { parseQuery, validate } from './request-input.ts';
import type { HeldResponse, HeldRouteDef } from './route.ts';
import { authenticate, begin, CLIENT_CLOSED, observe, readHeaders, type ServerCore } from './server-core.ts';

/** Mounts a held route (SSE, long-poll): auth, query validation, CORS, metrics, error mapping. */
export function mountHeld(core: ServerCore, def: HeldRouteDef<TSchema, TSchema>): void {
  if (!core.authenticator) throw new Error(`route ${def.operationId} needs auth but the server has no authenticator`);
  const route = core.routes.add(def, {
    auth: true, status: 200, envelope: def.contentType === undefined, errors: true,
    ...(def.response ? { response: def.response } : {}),
    ...(def.contentType ? { contentType: def.contentType } : {}),
    ...(def.body ? { body: def.body } : {}),
  });
  const bodyCheck = def.body ? TypeCompiler.Compile(def.body) : undefined;

  core.app[def.method](def.path, (res, req) => {
    const started = performance.now();
    const headers = readHeaders(req, def.headers);
    const query = req.getQuery() ?? '';
    const ctx = { route: route.label, method: def.method };
    const ex = begin(core, res, headers['origin']);
    // started before the first await: uWS hands the body over once
    const bodyRead = bodyCheck ? readBody(ex, req.getHeader('content-length'), core.bodyLimit) : undefined;
    const held = new Held(ex, (status) => observe(route.label, status, started), core.log, ctx);
    (async () => {
      const principal = await authenticate(core, headers, def.tokenInQuery ? query : undefined);
      const parsed = validate(route.query, parseQuery(query, def.query), 'query', true);
      let body: unknown;
      if (bodyRead) {
        const read = await bodyRead;
        if (!read.ok) throw read.error;
        body = validate(bodyCheck, parseJson(read.bytes), 'body', false);
      }
      await def.handler({ principal, query: parsed, body, headers }, held);
    })().catch((err: unknown) => {
      const e = clientError(err, core.log, ctx);
      // A stream that failed after it started has nothing to tell its client but the end.
      if (held.answered) held.end();
      else held.writeError(e);
    });
  });
}

/**
 * A HeldResponse on an exchange. The exchange stays in flight until the answer ends or the
 * client goes away; the metrics see the request when its status is written (or 499 when the
 * client left first), so a stream's lifetime does not count as its duration.
 */
class Held implements HeldResponse {
  /** A status line was written (or the client left before one was). */
  answered = false;
  private abortListener: (() => void) | undefined;

  constructor(
    private readonly ex: Exchange,
    private readonly observe: (status: number) => void,
    private readonly log: Logger,
    private readonly ctx: Record<string, unknown>,
  ) {
    // a body still being read settles too (readBody's own listener)
    const reading = ex.onAbort;
    ex.onAbort = () => {
      reading?.();
      const listening = !this.ex.done;
      this.settle(CLIENT_CLOSED);
      this.ex.finish();
      if (listening) this.abortListener?.();
    };
  }

  get closed(): boolean {
    return this.ex.done || this.ex.aborted;
  }

  onAbort(listener: () => void): void {
    this.abortListener = listener;
  }

  stream(headers: HeaderList, first: string): void {
    if (this.closed || this.answered) return;
    this.settle(200);
    this.ex.res.cork(() => {
      writeHead(this.ex.res, 200, [...headers, ...this.ex.cors]);
      this.ex.res.write(first);
    });
  }

  write(chunk: string): boolean {
    if (this.closed || !this.answered) return true;
    let took = true;
    this.ex.res.cork(() => { took = this.ex.res.write(chunk); });
    return took;
  }

  onWritable(listener: () => boolean): void {
    if (!this.closed) this.ex.res.onWritable(listener);
  }

  end(): void {
    if (!this.ex.finish()) return;
    this.ex.res.cork(() => this.ex.res.end());
  }

  close(): void {
    if (!this.ex.finish()) return;
    this.ex.res.close();
  }

  json(body: string, headers: HeaderList = []): void {
    if (this.closed || this.answered) return;
    this.settle(200);
    this.ex.write(200, JSON_TYPE, body, headers);
  }

  fail(err: unknown): void {
    this.writeError(err instanceof ChatError && err.code !== 'internal' ? err : clientError(err, this.log, this.ctx));
  }

  /** The envelope of an error already made fit for the client. */
  writeError(e: ChatError): void {
    if (this.closed || this.answered) return;
    const reply = errorReply(e);
    this.settle(reply.status);
    this.ex.write(reply.status, JSON_TYPE, reply.body, reply.headers);
  }

  private settle(status: number): void {
    if (this.answered) return;
    this.answered = true;
    this.observe(status);
  }
}
