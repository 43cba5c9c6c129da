import { DEFAULTS } from '../config/index.ts';
import { ChatError } from '../protocol/errors.ts';
import type { Attachment, MessageType } from './models.ts';

/** The checks of a message's content, shared by the WebSocket and REST paths. */
export interface MessageLimits {
  maxMessageLength: number;
  /** MAX_METADATA_BYTES: a message's metadata as JSON, in UTF-8 bytes (default DEFAULTS.maxMetadataBytes). */
  maxMetadataBytes?: number;
}

/**
 * Metadata rides in every copy of the message (stream, store, fan-out, history windows), so its
 * size is bounded on its own, whatever the frame or body limit lets through. Measured as the JSON
 * the store and REST hold, whichever encoding it arrived in.
 */
export function checkMetadata(metadata: Record<string, unknown> | undefined, limits: MessageLimits): void {
  if (metadata === undefined) return;
  const limit = limits.maxMetadataBytes ?? DEFAULTS.maxMetadataBytes;
  let json: string;
  try {
    json = JSON.stringify(metadata);
  } catch (err) {
    throw new ChatError('bad_request', 'metadata must be plain JSON data', { cause: err });
  }
  // UTF-8 is at most 3 bytes per UTF-16 unit: most metadata is decided without counting
  if (json.length * 3 <= limit) return;
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > limit) {
    throw new ChatError('too_large', `metadata is ${bytes} bytes as JSON; the limit is ${limit}`, { details: { limit, length: bytes } });
  }
}

export function checkContent(content: string, limits: MessageLimits, opts: { attachments?: Attachment[]; type?: MessageType } = {}): string {
  if (content.length > limits.maxMessageLength) {
    throw new ChatError('too_large', `message is ${content.length} characters; the limit is ${limits.maxMessageLength}`, {
      details: { limit: limits.maxMessageLength, length: content.length },
    });
  }
  const trimmed = content.trim();
  if (!trimmed && !opts.attachments?.length) throw new ChatError('bad_request', 'message content is empty');
  if (opts.type && opts.type !== 'text' && opts.type !== 'system' && opts.type !== 'ai_response' && opts.type !== 'poll' && !opts.attachments?.length) {
    throw new ChatError('bad_request', `a message of type ${opts.type} needs at least one attachment`);
  }
  return content;
}

/** Where this server serves a room's attachments (the api's upload answers with these urls). */
const SERVED_ATTACHMENT = /^\/v1\/chat\/rooms\/([^/?#]+)\/attachments\/([^/?#]+)$/;

/**
 * Attachments served by this server (their url is its own path) must be this room's, under their
 * own id: a message must not send its readers to another room's files, which they cannot open and
 * whose ids it would spread. Other urls (files elsewhere) are the client's business.
 */
export function checkAttachments(roomId: string, attachments: Attachment[] | undefined): void {
  for (const a of attachments ?? []) {
    if (!a.url.startsWith('/v1/chat/')) continue;
    const m = SERVED_ATTACHMENT.exec(a.url);
    if (!m || m[1] !== roomId || m[2] !== a.id) {
      throw new ChatError('bad_request', `attachment ${a.id}: its url must be ${'/v1/chat/rooms/'}${roomId}/attachments/${a.id}, as its upload answered`);
    }
  }
}

const MENTION = /(?:^|[\s(])@([A-Za-z0-9_.\-]{1,64})/g;

/** User ids mentioned as `@id` in the text, merged with explicit mentions, without duplicates. */
export function extractMentions(content: string, explicit: readonly string[] = []): string[] {
  // most messages mention no one: skip the regex scan and the Set (this runs on every send)
  if (explicit.length === 0 && !content.includes('@')) return [];
  const found = new Set(explicit);
  for (const m of content.matchAll(MENTION)) found.add(m[1]!.replace(/[.\-]+$/, ''));
  found.delete('');
  return [...found].slice(0, 50);
}

/** Message types a client may send; `system` and `ai_response` are written by the server only. */
export function assertClientMessageType(type: MessageType): void {
  if (type === 'system' || type === 'ai_response') throw new ChatError('forbidden', `clients cannot send ${type} messages`);
}
