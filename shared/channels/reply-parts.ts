import type { Attachment } from '../domain/models.ts';
import type { MediaSupport } from './channel.ts';

/** One send of a reply: its text ('' for none) and the files it carries. */
export interface ReplyPart<T> {
  content: string;
  media: T[];
}

const ONE_FILE_NO_CAPTION: MediaSupport = { perSend: 1, captionMaxChars: 0 };

/**
 * How a reply goes out as sends of a platform that carries `support` in one send:
 * - without files: one send, the text;
 * - files in groups of `perSend`, in their order, one send each; the text rides with the first
 *   group as its caption when it fits `captionMaxChars` and none of that group refuses a caption,
 *   else it is a send of its own before them (the person reads it first, as it was written).
 * Deterministic: the same reply and support give the same parts, so a part's index names that
 * send across tries and restarts (the sender's per-part sent-records rely on it).
 */
export function replyParts<T extends { type: Attachment['type'] }>(content: string, media: readonly T[], support: MediaSupport = ONE_FILE_NO_CAPTION): ReplyPart<T>[] {
  if (media.length === 0) return [{ content, media: [] }];
  const perSend = Math.max(1, Math.floor(support.perSend));
  const parts: ReplyPart<T>[] = [];
  for (let i = 0; i < media.length; i += perSend) parts.push({ content: '', media: media.slice(i, i + perSend) });
  if (content.trim() === '') return parts;
  const first = parts[0]!;
  const captioned = [...content].length <= support.captionMaxChars && !first.media.some((m) => support.uncaptioned?.includes(m.type));
  if (captioned) first.content = content;
  else parts.unshift({ content, media: [] });
  return parts;
}
