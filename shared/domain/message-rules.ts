import { ChatError } from '../protocol/errors.ts';
import type { Attachment, MessageType } from './models.ts';

/** The checks of a message's content, shared by the WebSocket and REST paths. */
export interface MessageLimits {
  maxMessageLength: number;
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
