import type { Attachment } from '../domain/models.ts';

/** The messaging platforms a channel adapter exists for. */
export const PLATFORMS = ['whatsapp', 'telegram', 'slack', 'messenger', 'twilio', 'teams'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** The request headers a webhook is judged by, lowercase. */
export type WebhookHeaders = Readonly<Record<string, string | undefined>>;

/**
 * A message someone wrote on the platform, in the room model's terms. `platformMessageId` is the
 * platform's own id (WhatsApp `wamid...`, Telegram `chat:message_id`): the stream dedupes on it,
 * so a webhook the platform delivers twice is stored once.
 */
export interface InboundMessage {
  kind: 'message';
  platformMessageId: string;
  /** Who wrote it, as the platform names the conversation to answer (WhatsApp wa_id, Telegram chat id). */
  externalUserId: string;
  externalUserName: string | undefined;
  type: 'text' | 'image' | 'file' | 'audio' | 'video';
  content: string;
  /** Media by the platform's reference (`whatsapp-media:<id>`, `telegram-file:<file_id>`): the bytes stay on the platform. */
  attachments: Attachment[];
  /** What has no field of its own: location, a pressed button or quick reply, the platform's raw type. */
  metadata: Record<string, unknown>;
  /** What the platform wants answered once the message is taken (Telegram's callback query id), for `acknowledge`. */
  ackId?: string;
  /**
   * Where a reply to the person goes, for platforms whose person id alone does not say it (Teams:
   * the conversation id and the service URL the message came from, neither of which fits a room
   * id). The inbox keeps it on the room (a tag), the latest one winning; the sender hands it back
   * as OutboundMessage.conversation, so it survives restarts like the room does.
   */
  conversation?: string;
}

/** The platform's word on a message sent to it earlier (WhatsApp status webhooks). */
export interface InboundStatus {
  kind: 'status';
  /** The id the platform answered the send with; absent for a status that names a time instead (`upTo`). */
  platformMessageId?: string;
  /**
   * The room message it was sent for, when the platform echoes what the send gave it (WhatsApp
   * `biz_opaque_callback_data`, the messageId of Twilio's StatusCallback URL). Without it the
   * inbox finds the message by `platformMessageId` or `upTo` (api/channels/status-target.ts).
   */
  messageId?: string;
  /** Messenger's watermark (ms): the status holds for every reply the platform took up to this time. */
  upTo?: number;
  externalUserId: string;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  /** ms since epoch. */
  at: number;
  error?: string;
}

export type InboundEvent = InboundMessage | InboundStatus;

/**
 * A file that goes out with a reply. The platform fetches it from `url` itself (no platform takes
 * the bytes in its send call), so a file of ours is given as a link that works without a token
 * and expires (api/attachment-links.ts).
 */
export interface OutboundMedia {
  type: Attachment['type'];
  url: string;
  mimeType?: string;
  fileName?: string;
}

/** What goes out to the platform: the room message's text, and the conversation it answers. */
export interface OutboundMessage {
  externalUserId: string;
  /** The text; with `media`, their caption ('' for none). */
  content: string;
  /** The room message's id, for the platform's idempotency or logs where it has one. */
  messageId: string;
  /**
   * Files this send carries, at most the channel's `media.perSend` (replyParts cuts a reply so);
   * absent or empty: a text message.
   */
  media?: OutboundMedia[];
  /** The latest InboundMessage.conversation of the room, for platforms that give one. */
  conversation?: string;
}

/**
 * How much of a reply one send of the platform can carry: replyParts cuts a reply with files into
 * sends by it. Without it a channel takes one file per send and no caption.
 */
export interface MediaSupport {
  /** Files one send may carry (Twilio: 10 per MMS; most platforms one). */
  perSend: number;
  /** Longest text, in characters, that goes with files as their caption; a longer one (or 0 here) is a send of its own. */
  captionMaxChars: number;
  /** Kinds of file that take no caption (WhatsApp audio): a text with one goes on its own. */
  uncaptioned?: ReadonlyArray<Attachment['type']>;
}

export type SendOutcome =
  | { kind: 'sent'; platformMessageId: string }
  /** `retryAfterMs`: how long the platform asked to wait (Retry-After, Telegram `retry_after`). */
  | { kind: 'failed'; error: string; retryable: boolean; retryAfterMs?: number };

/**
 * One messaging platform. The contract an adapter keeps:
 * - `verify` throws ChatError('unauthorized') unless the raw body (byte for byte as received: a
 *   signature covers bytes, not parsed JSON) and headers prove the platform sent it; nothing is
 *   parsed before that (Twilio signs the decoded form fields: it reads them, and only them).
 * - `handshake` answers the platform's subscription check (a GET; Slack's is a POST: `immediate`), or throws ChatError
 *   ('forbidden') when its token is wrong; undefined for platforms without one.
 * - `parse` turns a verified body into events, skipping kinds it does not carry (reactions,
 *   edits, joins) rather than failing, and throws ChatError('bad_request') only for a body that is
 *   not the platform's format at all. It never calls the network.
 * - `send` makes one try and never throws for an HTTP answer: 429, 5xx and network errors are
 *   retryable failures, other 4xx final ones (but a platform's own rate-limit answer is retryable
 *   whatever its status: Meta's codes 4, 32, 613). Retries and idempotency are the caller's.
 */
export interface Channel {
  readonly platform: Platform;
  /**
   * `target` is the request's path and query as received (`/v1/channels/twilio/webhook?messageId=1`),
   * for platforms that sign the URL too (Twilio); the others ignore it.
   */
  verify(headers: WebhookHeaders, rawBody: Buffer, target?: string): void;
  /**
   * For platforms whose proof needs the network (Teams: a JWT signed by a key from the platform's
   * published key set): used instead of `verify` when present, with the same contract.
   */
  verifyAsync?: (headers: WebhookHeaders, rawBody: Buffer, target?: string) => Promise<void>;
  handshake?: (query: URLSearchParams) => string;
  /**
   * For a verified body the platform expects answered in place of being handled (Slack's
   * `url_verification`): the text to answer; undefined for every other body.
   */
  immediate?: (rawBody: Buffer) => string | undefined;
  /** `target` as for `verify`: Twilio's status callbacks name the room message in the query. */
  parse(rawBody: Buffer, target?: string): InboundEvent[];
  /**
   * What a handled webhook is answered with, for platforms that read the answer (Twilio executes
   * TwiML: an empty `<Response/>` says "no auto-reply"); undefined: the JSON counts of what was stored.
   */
  readonly webhookAnswer?: { contentType: string; body: string };
  /** The webhook body's media type, for the API document (default application/json). */
  readonly webhookContentType?: string;
  /** What one send carries besides text; undefined: one file per send, no caption. */
  readonly media?: MediaSupport;
  /**
   * One send: the text, or the `media` (each fetched by the platform from its url) with the text
   * as their caption. `media` never holds more than `media.perSend` files.
   */
  send(message: OutboundMessage): Promise<SendOutcome>;
  /**
   * Tells the platform a message with an `ackId` was taken (Telegram: answerCallbackQuery, or the
   * person's button keeps spinning). One try, best effort: resolves false when it failed.
   */
  acknowledge?: (message: InboundMessage) => Promise<boolean>;
}
