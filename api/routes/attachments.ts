import { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { ChatError } from '../../shared/protocol/index.ts';
import type { Objects } from '../../shared/objects/index.ts';
import type { BinaryAnswer } from '../../shared/http/index.ts';
import { CHAT_PREFIX, type ApiDeps } from '../deps.ts';
import {
  AttachmentParams, CompleteUploadBody, DirectUploadBody, DirectUploadParams, DirectUploadTicket, DownloadQuery, LinkParams, LinkQuery, RoomIdParams, UploadQuery,
  UploadedAttachment,
} from '../schemas.ts';
import { checkLink, LINK_ROUTE } from '../attachment-links.ts';
import { detectFileType, SNIFF_BYTES } from '../file-type.ts';
import { assertAllowedType, uploadLimit } from '../upload-policy.ts';
import { cleanFileName } from '../content-disposition.ts';
import { parseByteRange } from '../byte-range.ts';
import {
  attachmentObjectKey, downloadHeaders, etagOf, pendingObjectKey, thumbnailObjectKey, toAttachment, UPLOADED_BY,
} from '../attachment-files.ts';
import { hasThumbnail, makeThumbnail, THUMBNAIL_TYPE } from '../thumbnail.ts';
import type { RoomKey } from '../../shared/domain/index.ts';
import type { Logger } from '../../shared/telemetry/index.ts';
import type { ObjectInfo } from '../../shared/objects/index.ts';

const tags = ['attachments'];

/**
 * Attachments: a member uploads a file to a room (streamed to the objects port, its type decided
 * from its bytes), gets seed 000's Attachment back, and puts it in a message's `attachments`;
 * members download it. Anyone else gets the answer of a room that does not exist.
 */
export function attachmentRoutes(deps: ApiDeps): void {
  const { server, guard, attachments, log } = deps;
  if (!attachments) return;
  linkRoute(deps);
  const { objects, maxFileSize } = attachments;
  /** The Attachment of a stored file, an image's thumbnail made first. */
  const finish = async (roomId: string, key: RoomKey, id: string, info: ObjectInfo) =>
    toAttachment(roomId, id, info, await addThumbnail(objects, key, id, info, log));

  server.binary({
    method: 'post', path: `${CHAT_PREFIX}/rooms/:roomId/attachments`, operationId: 'uploadAttachment', tags,
    summary: 'Upload a file to a room: the request body is the file\'s bytes',
    description: 'Members only (others: 404 as for a missing room). The room\'s `allowFileUploads`, `maxFileSize` and '
      + '`allowedFileTypes` apply, and `MAX_FILE_SIZE`: a larger file is refused with 413 before more than the limit is read. '
      + 'The type is decided from the file\'s first bytes, whatever the request says (415 when the room does not take it). '
      + 'Send the bytes as they are (not multipart/form-data), the name in `fileName`.',
    params: RoomIdParams, query: UploadQuery,
    body: { contentType: 'application/octet-stream', maxBodyBytes: maxFileSize },
    response: UploadedAttachment, status: 201, errors: ['unsupported_type'],
    handler: async ({ principal, params, query, headers, body }) => {
      if (headers['content-type']?.toLowerCase().startsWith('multipart/')) {
        throw new ChatError('bad_request', 'send the file\'s bytes as the request body, not multipart/form-data (the name goes in ?fileName=)');
      }
      const { key, room } = await guard.uploader(principal, params.roomId);
      const upload = body!;
      upload.setLimit(uploadLimit(room.settings, maxFileSize));
      const head = await upload.peek(SNIFF_BYTES);
      if (head.length === 0) throw new ChatError('bad_request', 'the file is empty');
      const detected = await detectFileType(head);
      assertAllowedType(room.settings, detected);
      const id = randomUUID();
      const fileName = cleanFileName(query.fileName) ?? (detected.ext ? `file.${detected.ext}` : 'file');
      const info = await objects.put(attachmentObjectKey(key, id), upload, {
        contentType: detected.mime, fileName, extra: { [UPLOADED_BY]: principal.userId },
      }, upload.declaredLength !== undefined ? { size: upload.declaredLength } : {});
      return { kind: 'json', status: 201, data: await finish(params.roomId, key, id, info) };
    },
  });

  if (objects.direct) {
    const direct = objects.direct;
    const ttl = attachments.presignTtlSec ?? DEFAULT_PRESIGN_TTL_SEC;
    const uploads = `${CHAT_PREFIX}/rooms/:roomId/attachments/uploads`;

    server.route({
      method: 'post', path: uploads, operationId: 'startDirectUpload', tags,
      summary: 'Start an upload straight to object storage: a presigned PUT URL for a file of this size',
      description: 'Only with S3 storage. The browser PUTs the file to `upload.url` (the URL takes exactly `fileSize` bytes, '
        + 'until `expiresAt`), then POSTs to `completeUrl`, which checks the stored file like a direct upload and answers the Attachment.',
      params: RoomIdParams, body: DirectUploadBody, response: DirectUploadTicket, status: 201,
      handler: async ({ principal, params, body }) => {
        const { key, room } = await guard.uploader(principal, params.roomId);
        const limit = uploadLimit(room.settings, maxFileSize);
        if (body.fileSize > limit) throw tooLarge(limit);
        const id = randomUUID();
        const put = await direct.presignPut(pendingObjectKey(key, id), { expiresInSec: ttl, contentLength: body.fileSize });
        return {
          attachmentId: id,
          upload: { method: 'PUT' as const, url: put.url, headers: put.headers, expiresAt: put.expiresAt.toISOString() },
          completeUrl: `${CHAT_PREFIX}/rooms/${params.roomId}/attachments/uploads/${id}/complete`,
        };
      },
    });

    server.route({
      method: 'post', path: `${uploads}/:attachmentId/complete`, operationId: 'completeDirectUpload', tags,
      summary: 'Finish a direct upload: the stored file is checked (size, type by its bytes) and becomes the attachment',
      description: 'A file over the limit (413) or of a type the room does not take (415) is deleted. 404 when nothing was uploaded.',
      params: DirectUploadParams, body: CompleteUploadBody, response: UploadedAttachment, status: 201,
      handler: async ({ principal, params, body }) => {
        const { key, room } = await guard.uploader(principal, params.roomId);
        const pending = pendingObjectKey(key, params.attachmentId);
        const stored = await objects.head(pending);
        if (!stored) throw new ChatError('not_found', `upload ${params.attachmentId} not found (not uploaded, or already completed)`);
        const refuse = async (err: ChatError): Promise<never> => {
          await objects.delete(pending);
          throw err;
        };
        const limit = uploadLimit(room.settings, maxFileSize);
        if (stored.size > limit) await refuse(tooLarge(limit));
        if (stored.size === 0) await refuse(new ChatError('bad_request', 'the file is empty'));
        const head = await readHead(objects, pending, Math.min(SNIFF_BYTES, stored.size));
        const detected = await detectFileType(head);
        try {
          assertAllowedType(room.settings, detected);
        } catch (err) {
          await refuse(err as ChatError);
        }
        const fileName = cleanFileName(body.fileName) ?? (detected.ext ? `file.${detected.ext}` : 'file');
        const info = await objects.commit(pending, attachmentObjectKey(key, params.attachmentId), {
          contentType: detected.mime, fileName, extra: { [UPLOADED_BY]: principal.userId },
        });
        return finish(params.roomId, key, params.attachmentId, info);
      },
    });
  }

  server.binary({
    method: 'get', path: `${CHAT_PREFIX}/rooms/:roomId/attachments/:attachmentId`, operationId: 'downloadAttachment', tags,
    summary: 'Download an attachment (members only)',
    description: 'Served with ranges (`Range: bytes=...` answers 206), `ETag`/`If-None-Match`, and `Content-Disposition` '
      + '(inline for images, attachment for everything else). With S3 storage the answer is a redirect to a short-lived '
      + 'presigned URL. Non-members get 404 as for a missing room.',
    params: AttachmentParams, query: DownloadQuery, tokenInQuery: true, headers: ['range', 'if-none-match', 'if-range'],
    contentType: 'application/octet-stream', status: 200,
    handler: async ({ principal, params, headers }) => {
      const { key } = await guard.insider(principal, params.roomId);
      return serveFile(objects, attachmentObjectKey(key, params.attachmentId), params.attachmentId, etagOf(params.attachmentId), headers, attachments.presignTtlSec);
    },
  });

  server.binary({
    method: 'get', path: `${CHAT_PREFIX}/rooms/:roomId/attachments/:attachmentId/thumbnail`, operationId: 'downloadThumbnail', tags,
    summary: 'An image attachment\'s thumbnail (WebP, at most 320 pixels a side; members only)',
    description: 'Served like the attachment itself. 404 for files that have none (not an image, or not decodable).',
    params: AttachmentParams, query: DownloadQuery, tokenInQuery: true, headers: ['range', 'if-none-match', 'if-range'],
    contentType: THUMBNAIL_TYPE, status: 200,
    handler: async ({ principal, params, headers }) => {
      const { key } = await guard.insider(principal, params.roomId);
      return serveFile(objects, thumbnailObjectKey(key, params.attachmentId), params.attachmentId, etagOf(`${params.attachmentId}.thumbnail`), headers, attachments.presignTtlSec);
    },
  });
}

/**
 * Downloads by a signed link (api/attachment-links.ts): no token, the signature and expiry are the
 * permission. Served only with a link key; answered like a member's download.
 */
function linkRoute({ server, attachments }: ApiDeps): void {
  const secret = attachments?.links?.secret;
  if (!attachments || secret === undefined) return;
  const { objects } = attachments;
  const now = attachments.links?.now ?? Date.now;
  server.binary({
    method: 'get', path: LINK_ROUTE, auth: false, operationId: 'downloadAttachmentByLink', tags,
    summary: 'Download an attachment by a signed link that expires (what messaging platforms fetch a reply\'s files from)',
    description: 'The link is made by the server (never by clients) and opens one file until `expires`; a wrong signature or '
      + 'an expired link is 403, a file that is gone 404. Served like a member\'s download (ranges, ETag).',
    params: LinkParams, query: LinkQuery, headers: ['range', 'if-none-match', 'if-range'],
    contentType: 'application/octet-stream', status: 200, errors: ['forbidden'],
    handler: async ({ params, query, headers }) => {
      const key = checkLink(secret, { ...params, ...query }, now());
      return serveFile(objects, attachmentObjectKey(key, params.attachmentId), params.attachmentId, etagOf(params.attachmentId), headers, attachments.presignTtlSec);
    },
  });
}

/**
 * Makes and stores an image's thumbnail; false when the file is no image or cannot be decoded
 * (the upload stands: a thumbnail is a nicety). The image is read back whole: decoding needs it.
 */
async function addThumbnail(objects: Objects, key: RoomKey, id: string, info: ObjectInfo, log: Logger): Promise<boolean> {
  if (!hasThumbnail(info.contentType)) return false;
  try {
    const read = await objects.get(attachmentObjectKey(key, id));
    if (!read) return false;
    const parts: Buffer[] = [];
    for await (const chunk of read.body) parts.push(Buffer.from(chunk as Uint8Array));
    const thumbnail = await makeThumbnail(Buffer.concat(parts));
    await objects.put(thumbnailObjectKey(key, id), Readable.from([thumbnail]), { contentType: THUMBNAIL_TYPE }, { size: thumbnail.length });
    return true;
  } catch (err) {
    if (err instanceof ChatError) log.warn({ err, attachmentId: id }, 'no thumbnail: it could not be stored');
    else log.info({ err, attachmentId: id, contentType: info.contentType }, 'no thumbnail: the image could not be decoded');
    return false;
  }
}

const DEFAULT_PRESIGN_TTL_SEC = 300;

function tooLarge(limit: number): ChatError {
  return new ChatError('too_large', `the file is larger than ${limit} bytes`, { details: { limit } });
}

/** The first `n` bytes of a stored object, to judge its type. */
async function readHead(objects: Objects, key: string, n: number): Promise<Buffer> {
  const read = await objects.get(key, { start: 0, end: n - 1 });
  if (!read) throw new ChatError('not_found', 'the upload disappeared while it was checked');
  const parts: Buffer[] = [];
  for await (const chunk of read.body) parts.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts).subarray(0, n);
}

async function serveFile(
  objects: Objects, objectKey: string, id: string, etag: string, headers: Readonly<Record<string, string | undefined>>, presignTtlSec: number | undefined,
): Promise<BinaryAnswer> {
  const info = await objects.head(objectKey);
  if (!info) throw new ChatError('not_found', `attachment ${id} not found`);
  const common = downloadHeaders(etag, info);
  if (objects.direct) {
    const get = await objects.direct.presignGet(objectKey, {
      expiresInSec: presignTtlSec ?? DEFAULT_PRESIGN_TTL_SEC, contentType: info.contentType, contentDisposition: common.find(([k]) => k === 'Content-Disposition')![1],
    });
    // the URL expires: nobody may keep the redirect
    return { kind: 'redirect', status: 302, location: get.url, headers: [['Cache-Control', 'no-store']] };
  }
  if (headers['if-none-match'] !== undefined && headers['if-none-match'].split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
    return { kind: 'bytes', status: 304, headers: common.filter(([k]) => k !== 'Content-Type'), size: 0 };
  }
  // If-Range names the version the client holds part of; another version gets the whole file
  const rangeApplies = headers['if-range'] === undefined || headers['if-range'] === etag;
  const range = rangeApplies ? parseByteRange(headers['range'], info.size) : undefined;
  if (range === 'unsatisfiable') {
    return { kind: 'bytes', status: 416, headers: [['Content-Range', `bytes */${info.size}`], ...common.filter(([k]) => k === 'Accept-Ranges')], size: 0 };
  }
  const read = await objects.get(objectKey, range);
  if (!read) throw new ChatError('not_found', `attachment ${id} not found`);
  if (!range) return { kind: 'bytes', status: 200, headers: common, size: info.size, body: read.body };
  return {
    kind: 'bytes', status: 206, size: range.end - range.start + 1, body: read.body,
    headers: [...common, ['Content-Range', `bytes ${range.start}-${range.end}/${info.size}`]],
  };
}
