import { Readable } from 'node:stream';
import {
  CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ChatError } from '../protocol/errors.ts';
import {
  assertObjectKey, assertObjectMeta, type ByteRange, type DirectTransfers, type ObjectInfo, type ObjectMeta, type ObjectRead, type Objects,
  type PresignedRequest,
} from './objects.ts';

export interface S3ObjectsConfig {
  bucket: string;
  /** An S3-compatible server; unset: AWS S3 in `region`. */
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  /** Unset: the SDK's default credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** Multipart part size for bodies of unknown length: S3's minimum, so an upload holds at most one part. */
const PART_BYTES = 5 * 1024 * 1024;
/** User metadata names (S3 sends them as `x-amz-meta-*` headers, so values must be ASCII: they are percent-encoded). */
const FILE_NAME = 'file-name';
const EXTRA_PREFIX = 'x-';

/**
 * Objects in an S3 bucket (AWS S3 or any S3-compatible server: MinIO, Ceph, R2, S3Proxy), on AWS
 * SDK v3. Metadata is the object's Content-Type and user metadata. A body of known length is
 * streamed in one PutObject; one of unknown length (a chunked upload) goes up in 5 MiB multipart
 * parts, the only bytes held. Direct transfers are presigned URLs: a PUT signed for one exact
 * length, and GETs that answer with the type and disposition the server chose.
 */
export function createS3Objects(cfg: S3ObjectsConfig): Objects {
  const client = new S3Client({
    region: cfg.region,
    forcePathStyle: cfg.forcePathStyle,
    ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
    // a copy: the SDK marks the object it is given, and the config it comes from is frozen
    ...(cfg.credentials ? { credentials: { accessKeyId: cfg.credentials.accessKeyId, secretAccessKey: cfg.credentials.secretAccessKey } } : {}),
    // checksums only where S3 demands them: S3-compatible servers do not all take the SDK's
    // default trailing checksums, and a presigned PUT would require the browser to send one
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  if (cfg.endpoint) {
    // The SDK's x-amz-user-agent is informational only, and S3-compatible servers may refuse
    // x-amz-* headers they do not know (S3Proxy answers every request with 501 NotImplemented).
    client.middlewareStack.add((next) => async (args) => {
      delete (args.request as { headers?: Record<string, string> }).headers?.['x-amz-user-agent'];
      return next(args);
    }, { step: 'build', priority: 'low', name: 'dropAmzUserAgent' });
  }
  const Bucket = cfg.bucket;

  const direct: DirectTransfers = {
    async presignPut(key, opts) {
      assertObjectKey(key);
      const command = new PutObjectCommand({ Bucket, Key: key, ...(opts.contentLength !== undefined ? { ContentLength: opts.contentLength } : {}) });
      // content-length is signed: the bucket takes exactly the length the server allowed
      const url = await guard(`presign a PUT of ${key}`, () => getSignedUrl(client, command, {
        expiresIn: opts.expiresInSec, ...(opts.contentLength !== undefined ? { signableHeaders: new Set(['content-length']) } : {}),
      }));
      return presigned('PUT', url, opts.expiresInSec);
    },
    async presignGet(key, opts) {
      assertObjectKey(key);
      const command = new GetObjectCommand({
        Bucket, Key: key,
        ...(opts.contentType ? { ResponseContentType: opts.contentType } : {}),
        ...(opts.contentDisposition ? { ResponseContentDisposition: opts.contentDisposition } : {}),
      });
      const url = await guard(`presign a GET of ${key}`, () => getSignedUrl(client, command, { expiresIn: opts.expiresInSec }));
      return presigned('GET', url, opts.expiresInSec);
    },
  };

  async function head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const r = await client.send(new HeadObjectCommand({ Bucket, Key: key }));
      return toInfo(key, r.ContentLength ?? 0, r.ContentType, r.LastModified, r.Metadata);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw unavailable(err, `cannot read the metadata of ${key}`);
    }
  }

  return {
    kind: 's3',
    direct,

    async put(key, body, meta, opts) {
      assertObjectKey(key);
      assertObjectMeta(meta);
      let bodyError: unknown;
      let size = 0;
      const counted = async function* () {
        try {
          for await (const chunk of body) {
            size += chunk.byteLength;
            yield chunk;
          }
        } catch (err) {
          bodyError = err;
          throw err;
        }
      };
      const params = { Bucket, Key: key, Body: Readable.from(counted(), { objectMode: false }), ContentType: meta.contentType, Metadata: toMetadata(meta) };
      try {
        if (opts?.size !== undefined) {
          await client.send(new PutObjectCommand({ ...params, ContentLength: opts.size }));
        } else {
          // leavePartsOnError false: a failed body aborts the multipart upload, nothing stays
          await new Upload({ client, params, partSize: PART_BYTES, queueSize: 1, leavePartsOnError: false }).done();
        }
      } catch (err) {
        // the body's own failure (too large, client gone) is the caller's to report
        if (bodyError !== undefined) throw bodyError;
        throw unavailable(err, `cannot store ${key}`);
      }
      if (bodyError !== undefined) throw bodyError;
      return { key, size, lastModified: new Date(), ...meta };
    },

    async head(key) {
      assertObjectKey(key);
      return head(key);
    },

    async get(key, range?: ByteRange): Promise<ObjectRead | undefined> {
      assertObjectKey(key);
      try {
        const r = await client.send(new GetObjectCommand({ Bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }));
        // a range's answer says the whole size after the slash of Content-Range
        const size = range && r.ContentRange ? Number(r.ContentRange.split('/')[1]) : (r.ContentLength ?? 0);
        return { info: toInfo(key, size, r.ContentType, r.LastModified, r.Metadata), body: r.Body as Readable };
      } catch (err) {
        if (isMissing(err)) return undefined;
        throw unavailable(err, `cannot read ${key}`);
      }
    },

    async commit(from, to, meta) {
      assertObjectKey(from);
      assertObjectKey(to);
      assertObjectMeta(meta);
      try {
        await client.send(new CopyObjectCommand({
          Bucket, Key: to, CopySource: `${Bucket}/${encodeURIComponent(from)}`,
          MetadataDirective: 'REPLACE', ContentType: meta.contentType, Metadata: toMetadata(meta),
        }));
      } catch (err) {
        if (isMissing(err)) throw new ChatError('not_found', `object ${from} not found`);
        throw unavailable(err, `cannot move ${from}`);
      }
      await guard(`delete ${from}`, () => client.send(new DeleteObjectCommand({ Bucket, Key: from })));
      const info = await head(to);
      if (!info) throw new ChatError('unavailable', `object ${to} is missing right after it was stored`);
      return info;
    },

    async delete(key) {
      assertObjectKey(key);
      await guard(`delete ${key}`, () => client.send(new DeleteObjectCommand({ Bucket, Key: key })));
    },

    async check() {
      // a listing rather than HeadBucket, which not every S3-compatible server implements (S3Proxy answers 501)
      await guard(`reach bucket ${Bucket}`, () => client.send(new ListObjectsV2Command({ Bucket, MaxKeys: 1 })));
    },

    async close() {
      client.destroy();
    },
  } satisfies Objects;
}

function toMetadata(meta: ObjectMeta): Record<string, string> {
  const out: Record<string, string> = {};
  if (meta.fileName !== undefined) out[FILE_NAME] = encodeURIComponent(meta.fileName);
  for (const [k, v] of Object.entries(meta.extra ?? {})) out[EXTRA_PREFIX + k] = encodeURIComponent(v);
  return out;
}

function toInfo(key: string, size: number, contentType: string | undefined, lastModified: Date | undefined, metadata: Record<string, string> | undefined): ObjectInfo {
  const extra: Record<string, string> = {};
  let fileName: string | undefined;
  for (const [k, v] of Object.entries(metadata ?? {})) {
    const name = k.toLowerCase();
    if (name === FILE_NAME) fileName = decodeURIComponent(v);
    else if (name.startsWith(EXTRA_PREFIX)) extra[name.slice(EXTRA_PREFIX.length)] = decodeURIComponent(v);
  }
  return {
    key, size, lastModified: lastModified ?? new Date(0), contentType: contentType ?? 'application/octet-stream',
    ...(fileName !== undefined ? { fileName } : {}), ...(Object.keys(extra).length ? { extra } : {}),
  };
}

function presigned(method: 'PUT' | 'GET', url: string, expiresInSec: number): PresignedRequest {
  return { method, url, headers: {}, expiresAt: new Date(Date.now() + expiresInSec * 1000) };
}

function isMissing(err: unknown): boolean {
  if (!(err instanceof S3ServiceException)) return false;
  return err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404;
}

async function guard<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw unavailable(err, `cannot ${what}`);
  }
}

function unavailable(err: unknown, message: string): ChatError {
  return new ChatError('unavailable', `object storage: ${message}`, { cause: err });
}
