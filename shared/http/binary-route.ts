import type { Readable } from 'node:stream';
import type { TSchema } from '@sinclair/typebox';
import type { Logger } from '../telemetry/logger.ts';
import type { Exchange } from './exchange.ts';
import { clientError, errorReply, JSON_TYPE, writeHead, type ErrorReply, type HeaderList } from './reply.ts';
import { RequestStream } from './request-stream.ts';
import { decodeParams, parseQuery, validate } from './request-input.ts';
import type { BinaryAnswer, BinaryRouteDef } from './route.ts';
import { authenticate, begin, CLIENT_CLOSED, observe, readHeaders, type ServerCore } from './server-core.ts';

/** Mounts a binary route (uploads, downloads): auth, validation, CORS, metrics, error mapping, streaming both ways. */
export function mountBinary(core: ServerCore, def: BinaryRouteDef<TSchema, TSchema, boolean>): void {
  const auth = def.auth !== false;
  if (auth && !core.authenticator) throw new Error(`route ${def.operationId} needs auth but the server has no authenticator`);
  const route = core.routes.add(def, {
    auth, status: def.status ?? 200, envelope: def.contentType === undefined, errors: true,
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
        settled(answerEarly(ex, stream, errorReply(stream.error)));
        return;
      }
    }
    (async () => {
      const principal = auth ? await authenticate(core, headers, def.tokenInQuery ? rawQuery : undefined) : undefined;
      const params = validate(route.params, decodeParams(route.paramNames, rawParams), 'path', true);
      const query = validate(route.query, parseQuery(rawQuery, def.query), 'query', true);
      const answer = await def.handler({ principal, params, query, headers, rawQuery, body });
      body?.detach();
      if (body !== undefined && !body.complete && answer.kind === 'json') {
        settled(answerEarly(ex, body, { status: answer.status, headers: answer.headers ?? [], body: JSON.stringify({ success: true, data: answer.data }) }));
        return;
      }
      writeAnswer(ex, answer, settled, core.log, ctx);
    })().catch((err: unknown) => {
      body?.detach();
      const e = clientError(err, core.log, ctx);
      if (body !== undefined && !body.complete) settled(answerEarly(ex, body, errorReply(e)));
      else settled(ex.writeError(e));
    });
  });
}

/**
 * Answers a request whose body has not all arrived (refused, or answered without it). Closing the
 * connection with the answer would lose it: data the client still sends to a closed socket draws
 * a reset, and a reset makes the client's system drop the answer it had not read yet. So the whole
 * answer goes out at once, saying `Connection: close` (a client closes once it read it), and the
 * connection stays up: uWS reads the rest of the body by its framing (Content-Length or chunks)
 * and the stream drops it, so nothing of it is kept or taken for a next request. A client that
 * sends on regardless costs the reading of its bytes, never memory.
 */
function answerEarly(ex: Exchange, body: RequestStream, reply: ErrorReply): number {
  body.detach();
  ex.write(reply.status, JSON_TYPE, reply.body, [['Connection', 'close'], ...reply.headers]);
  return reply.status;
}

function writeAnswer(ex: Exchange, answer: BinaryAnswer, settled: (status: number) => void, log: Logger, ctx: Record<string, unknown>): void {
  switch (answer.kind) {
    case 'json':
      ex.write(answer.status, JSON_TYPE, JSON.stringify({ success: true, data: answer.data }), answer.headers);
      settled(answer.status);
      return;
    case 'redirect':
      ex.write(answer.status, 'text/plain; charset=utf-8', '', [['Location', answer.location], ...(answer.headers ?? [])]);
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
