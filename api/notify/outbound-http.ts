import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { AddressGuard } from './address-guard.ts';

export interface OutboundRequest {
  url: string;
  headers: Record<string, string>;
  body: Buffer;
  timeoutMs: number;
}

/** A response of any status; `body` is its first KiB, as text (for the owner's `lastError`). */
export interface OutboundResponse {
  status: number;
  body: string;
}

/** Why a request got no response: for logs and a webhook's `lastError`, never with its headers. */
export class OutboundError extends Error {
  override readonly name = 'OutboundError';
}

const RESPONSE_KEEP_BYTES = 1024;

/**
 * POSTs to user-given URLs (webhooks, push services) through the address guard: an IP literal
 * is checked before connecting, a name on each address it resolves to as the socket connects
 * (the `lookup` hook), so what is connected to is what was checked. Redirects are not followed
 * (a 3xx is a failed delivery): a redirect could lead anywhere.
 */
export function createOutbound(guard: AddressGuard): (req: OutboundRequest) => Promise<OutboundResponse> {
  const guardedLookup = ((hostname: string, options: LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const refused = addresses.find((a) => !guard.allows(a.address));
      if (refused !== undefined) return callback(blocked(hostname, refused.address), []);
      if (options.all) return callback(null, addresses);
      const first = addresses[0]!;
      callback(null, first.address, first.family);
    });
  }) as LookupFunction;

  return (req) => new Promise<OutboundResponse>((resolve, reject) => {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      reject(new OutboundError('not a URL'));
      return;
    }
    const client = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
    if (client === undefined) {
      reject(new OutboundError(`unsupported scheme ${url.protocol}`));
      return;
    }
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0 && !guard.allows(host)) {
      reject(blocked(host, host));
      return;
    }
    const request = client.request(url, {
      method: 'POST',
      headers: { ...req.headers, 'content-length': String(req.body.length) },
      lookup: guardedLookup,
      timeout: req.timeoutMs,
      agent: false,
    }, (res) => {
      const kept: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < RESPONSE_KEEP_BYTES) kept.push(chunk.subarray(0, RESPONSE_KEEP_BYTES - size));
        size += chunk.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(kept).toString('utf8') }));
      res.on('error', (err) => reject(new OutboundError(`response failed: ${err.message}`)));
    });
    request.on('timeout', () => request.destroy(new OutboundError(`no response within ${req.timeoutMs} ms`)));
    request.on('error', (err) => reject(err instanceof OutboundError ? err : new OutboundError(err.message)));
    request.end(req.body);
  });
}

function blocked(host: string, address: string): OutboundError {
  return new OutboundError(`${host} resolves to ${address}, which outgoing requests may not reach`);
}
