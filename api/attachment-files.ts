import type { Attachment, RoomKey } from '../shared/domain/index.ts';
import type { ObjectInfo } from '../shared/objects/index.ts';
import { CHAT_PREFIX } from './deps.ts';
import { attachmentKind, showsInline } from './file-type.ts';
import { contentDisposition } from './content-disposition.ts';
import type { HeaderList } from '../shared/http/index.ts';

/**
 * An attachment's file: stored under its room's key, so a room's files are one prefix and a file
 * can only be reached through the room it was uploaded to (and its members).
 */
export function attachmentObjectKey(key: RoomKey, attachmentId: string): string {
  return `${key}/${attachmentId}`;
}

/** Where a direct upload waits until it is checked and committed (never served). */
export function pendingObjectKey(key: RoomKey, attachmentId: string): string {
  return `pending/${key}/${attachmentId}`;
}

/** An image's thumbnail, beside it. */
export function thumbnailObjectKey(key: RoomKey, attachmentId: string): string {
  return `${key}/${attachmentId}.thumbnail`;
}

export function attachmentUrl(roomId: string, attachmentId: string): string {
  return `${CHAT_PREFIX}/rooms/${roomId}/attachments/${attachmentId}`;
}

export function thumbnailUrl(roomId: string, attachmentId: string): string {
  return `${attachmentUrl(roomId, attachmentId)}/thumbnail`;
}

/** Metadata keys kept with the file. */
export const UPLOADED_BY = 'uploaded-by';

/** Seed 000's Attachment for a stored file. */
export function toAttachment(roomId: string, attachmentId: string, info: ObjectInfo, withThumbnail: boolean): Attachment & { fileName: string; fileSize: number; mimeType: string } {
  return {
    id: attachmentId,
    type: attachmentKind(info.contentType),
    url: attachmentUrl(roomId, attachmentId),
    ...(withThumbnail ? { thumbnailUrl: thumbnailUrl(roomId, attachmentId) } : {}),
    fileName: info.fileName ?? 'file',
    fileSize: info.size,
    mimeType: info.contentType,
  };
}

/** What a download answers with besides the bytes (both adapters: served here, or by a presigned GET). */
export function downloadDisposition(info: ObjectInfo): string {
  return contentDisposition(showsInline(info.contentType) ? 'inline' : 'attachment', info.fileName);
}

/**
 * Headers of a download served here. A file never changes under its id, so members may keep it
 * (privately: it is not for shared caches), and `ETag` is the id. The sandbox CSP keeps a file
 * opened in a tab from running anything on our origin, whatever it holds.
 */
export function downloadHeaders(etag: string, info: ObjectInfo): HeaderList {
  return [
    ['Content-Type', info.contentType],
    ['Content-Disposition', downloadDisposition(info)],
    ['Accept-Ranges', 'bytes'],
    ['ETag', etag],
    ['Last-Modified', info.lastModified.toUTCString()],
    ['Cache-Control', 'private, max-age=31536000, immutable'],
    ['Content-Security-Policy', "default-src 'none'; sandbox"],
  ];
}

/** A stored file never changes under its key: its name is its version. */
export function etagOf(name: string): string {
  return `"${name}"`;
}
