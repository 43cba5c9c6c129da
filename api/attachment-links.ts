import { createHmac, timingSafeEqual } from 'node:crypto';
import { ChatError } from '../shared/protocol/index.ts';
import { roomIdOf, roomKey, tenantOf, type Attachment, type RoomKey } from '../shared/domain/index.ts';
import type { Objects } from '../shared/objects/index.ts';
import { CHAT_PREFIX } from './deps.ts';
import { attachmentObjectKey, attachmentUrl, downloadDisposition } from './attachment-files.ts';

/**
 * Links to a room's file that need no token, for whoever cannot send one: messaging platforms
 * fetch a reply's files from them (WhatsApp `link`, Telegram's file URL, Messenger `payload.url`,
 * Twilio `MediaUrl`). A link names the tenant, room and attachment and when it expires, and is
 * signed over exactly those with ATTACHMENT_LINK_SECRET, so it opens that one file until then and
 * nothing else. With S3 storage the bucket presigns the link itself and this server is not asked.
 */
export interface AttachmentLinks {
  /**
   * A URL that serves `attachment` to anyone until it expires (ATTACHMENT_LINK_TTL from now):
   * - a file of this room stored here: a signed link (disk storage, with PUBLIC_URL) or a
   *   presigned GET of the bucket (S3); undefined when the file is gone, or disk storage has no
   *   PUBLIC_URL or key;
   * - another server's http(s) url: itself, as the sender gave it;
   * - anything else (a platform's media reference, a path of another room): undefined.
   */
  linkFor(key: RoomKey, attachment: Attachment): Promise<string | undefined>;
}

export interface AttachmentLinksDeps {
  objects: Objects;
  publicUrl: string | undefined;
  secret: string | undefined;
  ttlSec: number;
  now?: () => number;
}

/** The path of the signed download route, with its parameters as the route declares them. */
export const LINK_ROUTE = `${CHAT_PREFIX}/links/:tenant/:roomId/:attachmentId`;

export function attachmentLinks(deps: AttachmentLinksDeps): AttachmentLinks {
  const now = deps.now ?? Date.now;
  return {
    async linkFor(key, attachment) {
      const roomId = roomIdOf(key);
      if (attachment.url !== attachmentUrl(roomId, attachment.id)) return /^https?:\/\//i.test(attachment.url) ? attachment.url : undefined;
      const direct = deps.objects.direct;
      if (!direct && (deps.publicUrl === undefined || deps.secret === undefined)) return undefined;
      const objectKey = attachmentObjectKey(key, attachment.id);
      const info = await deps.objects.head(objectKey);
      if (!info) return undefined;
      if (direct) {
        return (await direct.presignGet(objectKey, { expiresInSec: deps.ttlSec, contentType: info.contentType, contentDisposition: downloadDisposition(info) })).url;
      }
      const expires = Math.floor(now() / 1000) + deps.ttlSec;
      const tenant = tenantOf(key);
      const path = `${CHAT_PREFIX}/links/${encodeURIComponent(tenant)}/${roomId}/${attachment.id}`;
      return `${deps.publicUrl}${path}?expires=${expires}&signature=${linkSignature(deps.secret!, key, attachment.id, expires)}`;
    },
  };
}

/** base64url HMAC-SHA256 over the room's key (tenant and room), the attachment id and the expiry (unix seconds). */
export function linkSignature(secret: string, key: RoomKey, attachmentId: string, expires: number): string {
  return createHmac('sha256', secret).update(`attachment-link\n${key}\n${attachmentId}\n${expires}`).digest('base64url');
}

/**
 * The room key a link opens, once its signature is checked and it has not expired; ChatError
 * ('forbidden') otherwise. The file itself may still be missing (the caller's not_found).
 */
export function checkLink(secret: string, link: { tenant: string; roomId: string; attachmentId: string; expires: string; signature: string }, nowMs: number): RoomKey {
  const key = roomKey(link.tenant, link.roomId);
  const expires = Number(link.expires);
  if (!/^[0-9]{1,12}$/.test(link.expires)) throw new ChatError('forbidden', 'the link has no valid expiry');
  const expected = Buffer.from(linkSignature(secret, key, link.attachmentId, expires));
  const given = Buffer.from(link.signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new ChatError('forbidden', 'the link\'s signature does not match');
  if (expires * 1000 < nowMs) throw new ChatError('forbidden', 'the link has expired');
  return key;
}
