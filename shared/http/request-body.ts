import { ChatError } from '../protocol/errors.ts';
import { plainDataProblem } from '../protocol/plain-data.ts';
import type { Exchange } from './exchange.ts';

export type BodyResult = { ok: true; bytes: Buffer } | { ok: false; error: ChatError; closeConnection: boolean };

/**
 * Reads the request body up to `limit` bytes. It must be started before the first await (uWS
 * delivers the chunks once); a client that goes away mid-body settles it instead of leaving it
 * waiting forever. Past the limit the connection is closed after the answer (the rest of the
 * upload would otherwise be read as the next request).
 */
export function readBody(ex: Exchange, contentLength: string, limit: number): Promise<BodyResult> {
  if (contentLength && Number(contentLength) > limit) {
    return Promise.resolve({ ok: false, error: tooLarge(limit), closeConnection: true });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let finished = false;
    ex.onAbort = () => {
      if (finished) return;
      finished = true;
      resolve({ ok: false, error: new ChatError('bad_request', 'client closed the request before sending its body'), closeConnection: true });
    };
    ex.res.onData((chunk, isLast) => {
      if (finished) return;
      size += chunk.byteLength;
      if (size > limit) {
        finished = true;
        resolve({ ok: false, error: tooLarge(limit), closeConnection: true });
        return;
      }
      // uWS reuses the chunk's memory after this callback returns: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk)));
      if (isLast) {
        finished = true;
        resolve({ ok: true, bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
      }
    });
  });
}

/** The body as plain data (the same edge check as WebSocket frames: protocol/plain-data.ts), or ChatError('bad_request'). */
export function parseJson(bytes: Buffer): unknown {
  if (bytes.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ChatError('bad_request', 'request body is not valid JSON', { cause: err });
  }
  const problem = plainDataProblem(value);
  if (problem) throw new ChatError('bad_request', `request body is not plain data: ${problem}`);
  return value;
}

function tooLarge(limit: number): ChatError {
  return new ChatError('too_large', `request body exceeds ${limit} bytes`, { details: { limit } });
}
