import type { Readable } from 'node:stream';
import { ChatError } from '../protocol/errors.ts';

/**
 * What an object is stored with besides its bytes. Adapters keep it beside the object and give it
 * back unchanged (S3: the object's Content-Type and user metadata; disk: a JSON file).
 */
export interface ObjectMeta {
  /** The type the server decided (from the bytes), never the uploader's claim. */
  contentType: string;
  /** Any Unicode; adapters encode it as their backend needs. */
  fileName?: string;
  /** Small string pairs (who uploaded it, its attachment id); keys are `[a-z0-9-]`. */
  extra?: Record<string, string>;
}

export interface ObjectInfo extends ObjectMeta {
  key: string;
  size: number;
  lastModified: Date;
}

/** Inclusive byte positions, both within the object (the caller checks them against `size`). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface ObjectRead {
  info: ObjectInfo;
  /** The object's bytes, or the range's. The reader must consume or destroy it. */
  body: Readable;
}

/** A URL a client uses directly against the backend, with what it must send along. */
export interface PresignedRequest {
  method: 'PUT' | 'GET';
  url: string;
  /** Headers the request must carry exactly (they are part of the signature). */
  headers: Record<string, string>;
  expiresAt: Date;
}

/**
 * Uploads and downloads that bypass the server: the client sends the bytes to (or reads them
 * from) the backend with a signed URL. Only backends with such URLs (S3) offer it.
 */
export interface DirectTransfers {
  /**
   * A URL that accepts one PUT of the object at `key` until it expires. The uploaded object has
   * no trusted metadata: whoever completes the upload checks its bytes and `commit`s it.
   */
  presignPut(key: string, opts: { expiresInSec: number; contentLength?: number }): Promise<PresignedRequest>;
  /** A URL that reads the object at `key`, answered with these response headers. */
  presignGet(key: string, opts: { expiresInSec: number; contentType?: string; contentDisposition?: string }): Promise<PresignedRequest>;
}

/**
 * The objects port: opaque bytes under string keys, with metadata (attachments' files).
 *
 * Contract (objects.contract.ts checks it against every adapter):
 * - Keys are `/`-separated segments of `[A-Za-z0-9._~:-]`, none `.` or `..` (assertObjectKey);
 *   an adapter refuses any other key with ChatError('bad_request').
 * - `put` streams `body` into the object: it never holds the whole object in memory. The object
 *   appears whole or not at all: a reader never sees a partial object, and if `body` throws, the
 *   put rejects with that error and nothing is stored (an earlier object under the key is kept).
 *   A put over an existing key replaces it (last writer wins).
 * - `head` and `get` resolve undefined for a missing key; `get` with a range reads only those bytes.
 * - `commit` moves an object to another key with new metadata (the old key is gone afterwards):
 *   how a direct upload becomes trusted. Missing source: ChatError('not_found').
 * - `delete` is idempotent.
 * - Backend failures are ChatError('unavailable') with the driver's error as cause.
 */
export interface Objects {
  readonly kind: 'disk' | 's3';
  /** `size`, when the caller knows the body's length (a Content-Length), lets an adapter stream it without buffering any of it. */
  put(key: string, body: AsyncIterable<Uint8Array>, meta: ObjectMeta, opts?: { size?: number }): Promise<ObjectInfo>;
  head(key: string): Promise<ObjectInfo | undefined>;
  get(key: string, range?: ByteRange): Promise<ObjectRead | undefined>;
  commit(from: string, to: string, meta: ObjectMeta): Promise<ObjectInfo>;
  delete(key: string): Promise<void>;
  /** Present when the backend can sign URLs for clients. */
  readonly direct?: DirectTransfers;
  /** Resolves when the backend answers (readiness). */
  check(): Promise<void>;
  close(): Promise<void>;
}

const SEGMENT = /^[A-Za-z0-9._~:-]+$/;
const MAX_KEY_LENGTH = 512;

/** Throws ChatError('bad_request') for a key the port does not accept (see Objects). */
export function assertObjectKey(key: string): void {
  const ok = key.length > 0 && key.length <= MAX_KEY_LENGTH
    && key.split('/').every((s) => SEGMENT.test(s) && s !== '.' && s !== '..');
  if (!ok) throw new ChatError('bad_request', `invalid object key ${JSON.stringify(key.slice(0, 80))}`);
}

/** Metadata extra keys are lowercase, so that every backend keeps them as given (S3 lowercases them). */
const EXTRA_KEY = /^[a-z0-9-]{1,64}$/;

export function assertObjectMeta(meta: ObjectMeta): void {
  for (const k of Object.keys(meta.extra ?? {})) {
    if (!EXTRA_KEY.test(k)) throw new ChatError('bad_request', `invalid object metadata key ${JSON.stringify(k)}`);
  }
}
