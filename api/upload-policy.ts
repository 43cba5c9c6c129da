import { ChatError } from '../shared/protocol/index.ts';
import type { RoomSettings } from '../shared/domain/index.ts';
import type { DetectedType } from './file-type.ts';

/**
 * What a room lets through: uploads on or off, its own size limit under MAX_FILE_SIZE (0: none of
 * its own), and its allowed types.
 */
export function uploadLimit(settings: RoomSettings, maxFileSize: number): number {
  if (!settings.allowFileUploads) throw new ChatError('forbidden', 'file uploads are turned off in this room');
  return settings.maxFileSize > 0 ? Math.min(settings.maxFileSize, maxFileSize) : maxFileSize;
}

/**
 * `allowedFileTypes` entries: a MIME type (`image/png`), a family (`image/*`) or an extension
 * (`pdf` or `.pdf`), matched case-insensitively against the type detected from the bytes. An empty
 * list allows every type.
 */
export function assertAllowedType(settings: RoomSettings, detected: DetectedType): void {
  const allowed = settings.allowedFileTypes;
  if (allowed.length === 0) return;
  const mime = detected.mime.toLowerCase();
  const family = mime.slice(0, mime.indexOf('/') + 1);
  const ext = detected.ext?.toLowerCase();
  for (const entry of allowed) {
    const e = entry.trim().toLowerCase();
    if (e === mime) return;
    if (e.endsWith('/*') && e.slice(0, -1) === family) return;
    const asExt = e.startsWith('.') ? e.slice(1) : e;
    if (ext !== undefined && !e.includes('/') && asExt === ext) return;
  }
  throw new ChatError('unsupported_type', `this room does not take files of type ${detected.mime}`, {
    details: { detected: detected.mime, allowed: [...allowed] },
  });
}
