import { randomBytes } from 'node:crypto';
import http from 'node:http';

/** Real file heads, as their formats begin: what the server must judge uploads by. */
export const PNG_1X1 = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64',
);
export const PDF_HEAD = Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n', 'latin1');
export const ELF_HEAD = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00]), Buffer.alloc(56)]);

/** A PNG of about `size` bytes: a real 1x1 image followed by random bytes (still a PNG by its head). */
export function pngOf(size: number): Buffer {
  return Buffer.concat([PNG_1X1, randomBytes(Math.max(0, size - PNG_1X1.length))]);
}

export interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Bytes of the body the client had written when the answer's head arrived. */
  writtenAtAnswer: number;
  /** Whether the client had written its whole body when the answer's head arrived. */
  finishedWriting: boolean;
}

/**
 * An upload over a plain socket (node:http), so a test sees what a server does mid-body: the body
 * is written in `chunk`-byte pieces (chunked transfer encoding unless `contentLength` is given),
 * with backpressure, and writing stops as soon as the answer's head arrives.
 */
export function rawUpload(url: string, opts: {
  token: string; total: number; chunk?: number; contentLength?: number; contentType?: string; timeoutMs?: number;
  /** Send the head only and wait: an answer then came without any of the body. */
  headOnly?: boolean;
}): Promise<RawReply> {
  const chunk = opts.chunk ?? 16 * 1024;
  return new Promise((resolve, reject) => {
    let written = 0;
    let answered = false;
    let finishedWriting = false;
    const headers: Record<string, string | number> = { authorization: `Bearer ${opts.token}`, 'content-type': opts.contentType ?? 'application/octet-stream' };
    if (opts.contentLength !== undefined) headers['content-length'] = opts.contentLength;
    const req = http.request(url, { method: 'POST', headers });
    const timer = setTimeout(() => { req.destroy(new Error('raw upload timed out')); }, opts.timeoutMs ?? 10_000);
    req.on('response', (res) => {
      answered = true;
      const writtenAtAnswer = written;
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), writtenAtAnswer, finishedWriting });
      });
      res.on('error', reject);
    });
    // the server closes the connection after refusing a body: writes after that fail, the answer stands
    req.on('error', (err) => { if (!answered) { clearTimeout(timer); reject(err); } });
    const piece = PNG_1X1.length < chunk ? Buffer.concat([PNG_1X1, Buffer.alloc(chunk - PNG_1X1.length, 7)]) : PNG_1X1;
    const filler = Buffer.alloc(chunk, 7);
    const pump = () => {
      while (!answered && written < opts.total) {
        const n = Math.min(chunk, opts.total - written);
        const data = (written === 0 ? piece : filler).subarray(0, n);
        written += n;
        if (!req.write(data)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!answered && written >= opts.total) {
        finishedWriting = true;
        req.end();
      }
    };
    if (opts.headOnly) req.flushHeaders();
    else pump();
  });
}
