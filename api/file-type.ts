import { fileTypeFromBuffer } from 'file-type';
import type { Attachment } from '../shared/domain/index.ts';

/** Bytes looked at to decide a file's type: file-type's own reasonable detection size. */
export const SNIFF_BYTES = 4100;

export interface DetectedType {
  mime: string;
  /** Without the dot; undefined when the bytes name no format. */
  ext: string | undefined;
}

const OCTET_STREAM: DetectedType = { mime: 'application/octet-stream', ext: undefined };
const TEXT: DetectedType = { mime: 'text/plain', ext: 'txt' };

/**
 * A file's type from its first bytes (magic numbers, via file-type), never from what the uploader
 * declared: a "photo.png" that is an executable is an executable. Bytes of no known format are
 * text/plain when they are UTF-8 text without control characters, else application/octet-stream.
 */
export async function detectFileType(head: Uint8Array): Promise<DetectedType> {
  const found = await fileTypeFromBuffer(head);
  if (found) return { mime: found.mime, ext: found.ext };
  return looksLikeText(head) ? TEXT : OCTET_STREAM;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function looksLikeText(head: Uint8Array): boolean {
  if (head.length === 0) return false;
  for (const b of head) {
    // NUL and the C0 controls other than tab, line feed, form feed and carriage return
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0c && b !== 0x0d) return false;
  }
  try {
    // stream: a character cut at the end of the head is not a decoding error
    decoder.decode(head, { stream: true });
    decoder.decode();
    return true;
  } catch {
    return false;
  }
}

/** The seed's attachment kinds, by the detected type. */
export function attachmentKind(mime: string): Attachment['type'] {
  if (mime.startsWith('image/')) return 'image';
  if (mime.startsWith('audio/')) return 'audio';
  if (mime.startsWith('video/')) return 'video';
  return 'file';
}

/**
 * Images a browser may show inline from our origin. Not SVG (it can carry script): file-type does
 * not report it anyway, it would be text.
 */
const INLINE_IMAGES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/bmp', 'image/apng']);

export function showsInline(mime: string): boolean {
  return INLINE_IMAGES.has(mime);
}
