import { createECDH, createDecipheriv, hkdfSync, randomBytes, type ECDH } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { importJWK, jwtVerify, type JWTPayload } from 'jose';

/**
 * A stand-in for a browser's push service, and the browser itself: it makes subscriptions (a P-256
 * key pair and an auth secret, as a browser does), receives pushes for them, checks each push's
 * VAPID token against the server's public key (RFC 8292) and decrypts its aes128gcm body with the
 * subscription's private key (RFC 8291), all with node:crypto and jose, not with web-push.
 */
export interface PushService {
  /** A new subscription at this service, as `PushSubscription.toJSON()` gives it. */
  subscribe(name: string): { endpoint: string; keys: { p256dh: string; auth: string } };
  /** Pushes to `name` answer this status (e.g. 410: the subscription is gone). */
  answer(name: string, status: number): void;
  received: ReceivedPush[];
  close(): Promise<void>;
}

export interface ReceivedPush {
  name: string;
  headers: IncomingHttpHeaders;
  /** The VAPID claims when the token verified, else the reason it did not. */
  vapid: { ok: true; claims: JWTPayload; k: string } | { ok: false; error: string };
  /** The decrypted payload, or why decryption failed. */
  payload: { ok: true; text: string } | { ok: false; error: string };
  status: number;
}

interface Sub { ecdh: ECDH; auth: Buffer }

export async function startPushService(vapidPublicKey: string): Promise<PushService> {
  const subs = new Map<string, Sub>();
  const statuses = new Map<string, number>();
  const received: ReceivedPush[] = [];
  let origin = '';

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const name = (req.url ?? '/').replace(/^\/push\//, '');
        const sub = subs.get(name);
        const status = statuses.get(name) ?? (sub ? 201 : 404);
        const vapid = await checkVapid(String(req.headers.authorization ?? ''), vapidPublicKey, origin);
        const payload = sub ? decrypt(Buffer.concat(chunks), sub, String(req.headers['content-encoding'] ?? '')) : { ok: false as const, error: 'no such subscription' };
        received.push({ name, headers: req.headers, vapid, payload, status });
        res.writeHead(status).end();
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;

  return {
    subscribe(name) {
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      const auth = randomBytes(16);
      subs.set(name, { ecdh, auth });
      return { endpoint: `${origin}/push/${name}`, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } };
    },
    answer: (name, status) => { statuses.set(name, status); },
    received,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** RFC 8292: `Authorization: vapid t=<ES256 JWT>, k=<public key>`; aud is the push service's origin. */
async function checkVapid(header: string, publicKey: string, audience: string): Promise<ReceivedPush['vapid']> {
  const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(header);
  if (!m) return { ok: false, error: `not a vapid Authorization header: ${header.slice(0, 40)}` };
  const [, token, k] = m as unknown as [string, string, string];
  if (k !== publicKey) return { ok: false, error: 'k is not the server\'s public key' };
  const raw = Buffer.from(k, 'base64url');
  const key = await importJWK({ kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33, 65).toString('base64url') }, 'ES256');
  try {
    const { payload } = await jwtVerify(token, key, { audience, algorithms: ['ES256'] });
    if (typeof payload.exp !== 'number' || payload.exp > Date.now() / 1000 + 24 * 3600) return { ok: false, error: 'exp missing or more than 24 h away' };
    if (typeof payload.sub !== 'string' || !/^(mailto:|https:)/.test(payload.sub)) return { ok: false, error: 'sub missing' };
    return { ok: true, claims: payload, k };
  } catch (err) {
    return { ok: false, error: String(err) };
  }
}

/** RFC 8188 aes128gcm with the RFC 8291 key derivation, one record. */
function decrypt(body: Buffer, sub: Sub, encoding: string): ReceivedPush['payload'] {
  try {
    if (encoding !== 'aes128gcm') return { ok: false, error: `Content-Encoding ${encoding}` };
    const salt = body.subarray(0, 16);
    const idlen = body[20]!;
    const senderKey = body.subarray(21, 21 + idlen);
    const ciphertext = body.subarray(21 + idlen);
    const shared = sub.ecdh.computeSecret(senderKey);
    const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), sub.ecdh.getPublicKey(), senderKey]);
    const ikm = Buffer.from(hkdfSync('sha256', shared, sub.auth, keyInfo, 32));
    const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
    const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
    const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
    const padded = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
    // the last record ends with the delimiter 0x02, then zero padding
    let end = padded.length - 1;
    while (end >= 0 && padded[end] === 0) end--;
    if (padded[end] !== 2) return { ok: false, error: 'no last-record delimiter' };
    return { ok: true, text: padded.subarray(0, end).toString('utf8') };
  } catch (err) {
    return { ok: false, error: String(err) };
  }
}
