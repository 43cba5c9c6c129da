import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a receiver got, with what the test needs to judge it. */
export interface ReceivedHook {
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  body: any;
  /** Status the receiver answered. */
  status: number;
}

export interface WebhookReceiver {
  url: (path: string) => string;
  received: ReceivedHook[];
  /** The status to answer for requests to `path` (default 200). */
  answer(path: string, status: number): void;
  close(): Promise<void>;
}

/** A local HTTP server that records every POST, answering 200 unless told otherwise per path. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedHook[] = [];
  const statuses = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const path = req.url ?? '/';
      const status = statuses.get(path) ?? 200;
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = undefined;
      }
      received.push({ path, headers: req.headers, raw, body, status });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'receiver says no');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received,
    answer: (path, status) => { statuses.set(path, status); },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/**
 * The receiver's side of the signature, written from docs/notifications.md (not from the server's
 * code): HMAC-SHA256 keyed with the secret over `<timestamp>.<raw body>`, `v1=<hex>`, the
 * timestamp within 5 minutes.
 */
export function signatureValid(secret: string, hook: ReceivedHook): boolean {
  const ts = String(hook.headers['x-chat-timestamp'] ?? '');
  if (!/^\d+$/.test(ts) || Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const expected = Buffer.from('v1=' + createHmac('sha256', secret).update(`${ts}.`).update(hook.raw).digest('hex'));
  const given = Buffer.from(String(hook.headers['x-chat-signature'] ?? ''));
  return given.length === expected.length && timingSafeEqual(given, expected);
}
