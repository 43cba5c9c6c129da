import { STATUS_CODES } from 'node:http';
import type { HttpResponse } from 'uWebSockets.js';
import { ChatError, errorMapping } from '../protocol/errors.ts';
import type { Logger } from '../telemetry/logger.ts';

/** Response headers in the order they are written. */
export type HeaderList = Array<[string, string]>;

export const JSON_TYPE = 'application/json; charset=utf-8';

/** An error answer: the code's HTTP status, the headers it calls for, and the REST error envelope. */
export interface ErrorReply {
  status: number;
  headers: HeaderList;
  body: string;
}

export function errorReply(err: ChatError): ErrorReply {
  const status = errorMapping(err.code).http;
  const headers: HeaderList = [];
  if (err.code === 'rate_limited') {
    const ms = Number(err.details?.['retryAfterMs'] ?? 1000);
    headers.push(['Retry-After', String(Math.max(1, Math.ceil(ms / 1000)))]);
  }
  if (err.code === 'unauthorized') headers.push(['WWW-Authenticate', 'Bearer']);
  const error = { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) };
  return { status, headers, body: JSON.stringify({ success: false, error }) };
}

/**
 * What the client is told about a failure. Anything not a ChatError, and ChatError('internal')
 * (whose message and cause may describe a driver), becomes a bare 500 and is logged with its
 * stack; other server-side codes (unavailable, timeout) keep their message and are logged too.
 */
export function clientError(err: unknown, log: Logger, ctx: Record<string, unknown>): ChatError {
  if (err instanceof ChatError && err.code !== 'internal') {
    if (err.status >= 500) log.warn({ err, ...ctx }, 'request failed');
    return err;
  }
  log.error({ err, ...ctx }, 'request failed');
  return new ChatError('internal', 'internal error');
}

const NO_HEADERS: HeaderList = [];

/** A whole answer, corked (it may come after an await). */
export function writeReply(res: HttpResponse, status: number, contentType: string, body: string, headers: HeaderList, closeConnection = false): void {
  writeAnswer(res, status, contentType, body, headers, NO_HEADERS, closeConnection);
}

/** writeReply with two header lists (CORS, then the answer's own), written without joining them. */
export function writeAnswer(res: HttpResponse, status: number, contentType: string, body: string, first: HeaderList, second: HeaderList, closeConnection: boolean): void {
  res.cork(() => {
    res.writeStatus(statusLine(status));
    res.writeHeader('Content-Type', contentType);
    // Browsers must not guess another type (a JSON body that looks like HTML is still JSON).
    res.writeHeader('X-Content-Type-Options', 'nosniff');
    for (let i = 0; i < first.length; i++) res.writeHeader(first[i]![0], first[i]![1]);
    for (let i = 0; i < second.length; i++) res.writeHeader(second[i]![0], second[i]![1]);
    res.end(body, closeConnection);
  });
}

/** Status line and headers; the caller corks and writes the body. */
export function writeHead(res: HttpResponse, status: number, headers: HeaderList): void {
  res.writeStatus(statusLine(status));
  res.writeHeader('X-Content-Type-Options', 'nosniff');
  for (const [k, v] of headers) res.writeHeader(k, v);
}

const statusLines = new Map<number, string>();
function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (!line) {
    line = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
    statusLines.set(status, line);
  }
  return line;
}
