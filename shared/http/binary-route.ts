import type { Readable } from 'node:stream';
import type { TSchema } from '@sinclair/typebox';
import type { Logger } from '../telemetry/logger.ts';
import type { Exchange } from './exchange.ts';
import { clientError, JSON_TYPE, writeHead, type HeaderList } from './reply.ts';
import { RequestStream } from './request-stream.ts';
import { decodeParams, parseQuery, validate } from './request-input.ts';
import type { BinaryAnswer, BinaryRouteDef } from './route.ts';
import { authenticate, begin, CLIENT_CLOSED, observe, readHeaders, type ServerCore } from './server-core.ts';

/** Mounts a binary route (uploads, downloads): auth, validation, CORS, metrics, error mapping, streaming both ways. */
export function mountBinary(core: ServerCore, def: BinaryRouteDef<TSchema, TSchema>): void {
  if (!core.authenticator) throw new Error(`route ${def.operationId} needs auth but the server has no authenticator`);
  const route = core.routes.add(def, {
    auth: true, status: def.status ?? 200, envelope: def.contentType === undefined, errors: true,
    ...(def.response ? { response: def.response } : {}),
    ...(def.contentType ? { contentType: def.contentType } : {}),
    ...(def.body ? { bodyContentType: def.body.contentType } : {}),
    moreErrors: [...(def.errors ?? []), ...(def.body ? ['too_large' as const] : [])],
  });
  const ctx = { route: route.label, method: def.method };

  core.app[def.method](def.path, (res, req) => {
    const started = performance.now();
    const headers = readHeaders(req, def.headers);
    const rawParams = route.paramNames.map((_, i) => req.getParameter(i));
    const rawQuery = req.getQuery() ?? '';
    const ex = begin(core, res, headers['origin']);
    const settled = (status: number) => observe(route.label, ex.aborted ? CLIENT_CLOSED : status, started);
    let body: RequestStream | undefined;
    if (def.body) {
      const length = req.getHeader('content-length');
      body = new RequestStream(res, length ? Number(length) : undefined, def.body.maxBodyBytes);
      const stream = body;
      ex.onAbort = () => stream.abort();
      if (stream.error) {
        // a declared length over the limit is refused before a byte of the body is read
        stream.detach();
        settled(ex.writeError(stream.error, true));
        return;
      }
    }
    (async () => {
      const principal = await authenticate(core, headers, def.tokenInQuery ? rawQuery : undefined);
      const params = validate(route.params, decodeParams(route.paramNames, rawParams), 'path', true);
      const query = validate(route.query, parseQuery(rawQuery, def.query), 'query', true);
      const answer = await def.handler({ principal, params, query, headers, body });
      body?.detach();
      // an answer before the whole body arrived: the rest would be read as the next request
      writeAnswer(ex, answer, body !== undefined && !body.complete, settled, core.log, ctx);
    })().catch((err: unknown) => {
      body?.detach();
      settled(ex.writeError(clientError(err, core.log, ctx), body !== undefined && !body.complete));
    });
  });
}

function writeAnswer(ex: Exchange, answer: BinaryAnswer, closeConnection: boolean, settled: (status: number) => void, log: Logger, ctx: Record<string, unknown>): void {
  switch (answer.kind) {
    case 'json':
      ex.write(answer.status, JSON_TYPE, JSON.stringify({ success: true, data: answer.data }), answer.headers, closeConnection);
      settled(answer.status);
      return;
    case 'redirect':
      ex.write(answer.status, 'text/plain; charset=utf-8', '', [['Location', answer.location], ...(answer.headers ?? [])], closeConnection);
      settled(answer.status);
      return;
    case 'bytes':
      settled(answer.status);
      streamBytes(ex, answer.status, answer.headers, answer.size, answer.body, log, ctx);
      return;
    default: {
      const never: never = answer;
      throw new Error(`unknown answer ${String((never as { kind?: unknown }).kind)}`);
    }
  }
}

/**
 * Writes `size` bytes from `body` with uWS's tryEnd, which sets Content-Length and takes what the
 * socket can take: when it takes a chunk only in part, the file is paused until the socket drains
 * (onWritable), so a slow reader holds one chunk in memory, not the file. The request stays in
 * flight (drain waits for it) until the last byte is written or the client leaves.
 */
function streamBytes(ex: Exchange, status: number, headers: HeaderList, size: number, body: Readable | undefined, log: Logger, ctx: Record<string, unknown>): void {
  const res = ex.res;
  if (ex.aborted) {
    body?.destroy();
    ex.finish();
    return;
  }
  if (body === undefined || size === 0) {
    body?.destroy();
    ex.finish();
    res.cork(() => {
      writeHead(res, status, [...ex.cors, ...headers]);
      // a 304 says nothing about the length; anything else without a body is empty
      if (status === 304) res.endWithoutBody();
      else res.end();
    });
    return;
  }
  let headWritten = false;
  let pending: Buffer | undefined;
  let pendingOffset = 0;
  const done = () => {
    body.destroy();
    ex.finish();
  };
  ex.onAbort = done;
  body.on('data', (chunk: Buffer) => {
    if (ex.done || ex.aborted) return;
    res.cork(() => {
      if (!headWritten) {
        headWritten = true;
        writeHead(res, status, [...ex.cors, ...headers]);
      }
      const offset = res.getWriteOffset();
      const [ok, finished] = res.tryEnd(chunk, size);
      if (finished) {
        done();
      } else if (!ok) {
        body.pause();
        pending = chunk;
        pendingOffset = offset;
        res.onWritable((at) => {
          if (ex.done || ex.aborted || pending === undefined) return true;
          const [took, ended] = res.tryEnd(pending.subarray(at - pendingOffset), size);
          if (ended) done();
          else if (took) {
            pending = undefined;
            body.resume();
          }
          return took;
        });
      }
    });
  });
  const cut = (why: string, err?: unknown) => {
    if (ex.done) return;
    log.warn({ err, ...ctx }, why);
    const aborted = ex.aborted;
    done();
    // the status line is out (or promised): all that is left is to end the connection short
    if (!aborted) res.close();
  };
  body.on('error', (err) => cut('a file could not be read to the end', err));
  body.on('end', () => cut('a file ended before its announced length'));
}
