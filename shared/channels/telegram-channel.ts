import { ChatError } from '../protocol/errors.ts';
import type { Attachment } from '../domain/models.ts';
import type { Channel, InboundEvent, InboundMessage, OutboundMessage, SendOutcome, WebhookHeaders } from './channel.ts';
import { describeFailure, postJson, retryableStatus } from './platform-http.ts';
import { sameSecret } from './signatures.ts';

export interface TelegramConfig {
  botToken: string;
  secretToken: string;
  apiBase: string;
  httpTimeoutMs: number;
}

export const TELEGRAM_SECRET_HEADER = 'x-telegram-bot-api-secret-token';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const idOf = (v: unknown): string | undefined => (typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : undefined);

/** The method and its file field a file is sent with; each takes a `caption`. */
const SEND_METHOD: Record<Attachment['type'], [method: string, field: string]> = {
  image: ['sendPhoto', 'photo'], video: ['sendVideo', 'video'], audio: ['sendAudio', 'audio'], file: ['sendDocument', 'document'],
};
/** Telegram's limit on a media caption. */
export const TELEGRAM_CAPTION_MAX_CHARS = 1024;

/** Telegram media fields and the attachment type each becomes. */
const MEDIA: Array<[field: string, type: Attachment['type']]> = [
  ['photo', 'image'], ['sticker', 'image'], ['animation', 'video'], ['video', 'video'], ['video_note', 'video'],
  ['voice', 'audio'], ['audio', 'audio'], ['document', 'file'],
];

/**
 * Telegram Bot API. Updates carry no signature: the webhook is proven by the `secret_token` given
 * to setWebhook, which Telegram sends back in `X-Telegram-Bot-Api-Secret-Token`. A message's id is
 * unique only within its chat, so the platform id is `chat:message_id`. Replies go to
 * `POST {base}/bot{token}/sendMessage`, a file to sendPhoto, sendVideo, sendAudio or sendDocument
 * with its URL (Telegram fetches it) and the text as `caption`; the token is in the path, so that
 * URL is never logged.
 */
export function telegramChannel(cfg: TelegramConfig): Channel {
  return {
    platform: 'telegram',
    media: { perSend: 1, captionMaxChars: TELEGRAM_CAPTION_MAX_CHARS },

    verify(headers: WebhookHeaders, _rawBody: Buffer): void {
      const given = headers[TELEGRAM_SECRET_HEADER];
      if (!given) throw new ChatError('unauthorized', 'missing X-Telegram-Bot-Api-Secret-Token');
      if (!sameSecret(given, cfg.secretToken)) throw new ChatError('unauthorized', 'X-Telegram-Bot-Api-Secret-Token does not match');
    },

    parse(rawBody: Buffer): InboundEvent[] {
      let update: unknown;
      try {
        update = JSON.parse(rawBody.toString('utf8'));
      } catch (err) {
        throw new ChatError('bad_request', 'the update is not JSON', { cause: err });
      }
      if (!isObject(update) || typeof update['update_id'] !== 'number') throw new ChatError('bad_request', 'expected a Telegram Update (update_id)');
      if (isObject(update['message'])) {
        const m = toMessage(update['message']);
        return m ? [m] : [];
      }
      if (isObject(update['callback_query'])) {
        const m = toButtonPress(update['callback_query']);
        return m ? [m] : [];
      }
      // edits, channel posts, inline queries, member changes: not new conversation text
      return [];
    },

    async acknowledge(m: InboundMessage): Promise<boolean> {
      if (m.ackId === undefined) return true;
      const url = `${cfg.apiBase.replace(/\/+$/, '')}/bot${cfg.botToken}/answerCallbackQuery`;
      const answer = await postJson(url, {}, { callback_query_id: m.ackId }, cfg.httpTimeoutMs);
      return !('kind' in answer) && answer.status >= 200 && answer.status < 300;
    },

    async send(out: OutboundMessage): Promise<SendOutcome> {
      const media = out.media?.[0];
      const [method, field] = media ? SEND_METHOD[media.type] : ['sendMessage', 'text'];
      const url = `${cfg.apiBase.replace(/\/+$/, '')}/bot${cfg.botToken}/${method}`;
      const body = media
        ? { chat_id: out.externalUserId, [field]: media.url, ...(out.content ? { caption: out.content } : {}) }
        : { chat_id: out.externalUserId, text: out.content };
      const answer = await postJson(url, {}, body, cfg.httpTimeoutMs);
      if ('kind' in answer) return answer;
      const json = isObject(answer.json) ? answer.json : {};
      if (answer.status >= 200 && answer.status < 300 && json['ok'] === true && isObject(json['result'])) {
        const result = json['result'];
        const chat = isObject(result['chat']) ? idOf(result['chat']['id']) : undefined;
        const id = idOf(result['message_id']);
        if (id) return { kind: 'sent', platformMessageId: `${chat ?? out.externalUserId}:${id}` };
      }
      const after = isObject(json['parameters']) ? json['parameters']['retry_after'] : undefined;
      const retryAfterMs = typeof after === 'number' && after >= 0 ? after * 1000 : answer.retryAfterMs;
      return {
        kind: 'failed', error: describeFailure(answer.status, answer.json),
        retryable: answer.status < 200 || answer.status >= 300 ? retryableStatus(answer.status) : false,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      };
    },
  };
}

function senderName(from: unknown): string | undefined {
  if (!isObject(from)) return undefined;
  const full = [str(from['first_name']), str(from['last_name'])].filter(Boolean).join(' ');
  return full || str(from['username']);
}

function toMessage(m: Json): InboundMessage | undefined {
  const chat = isObject(m['chat']) ? idOf(m['chat']['id']) : undefined;
  const messageId = idOf(m['message_id']);
  if (!chat || !messageId) return undefined;
  const base = { kind: 'message' as const, platformMessageId: `${chat}:${messageId}`, externalUserId: chat, externalUserName: senderName(m['from']) };
  const metadata: Json = { platform: 'telegram' };
  if (isObject(m['reply_to_message']) && idOf(m['reply_to_message']['message_id'])) {
    metadata['replyToPlatformMessageId'] = `${chat}:${idOf(m['reply_to_message']['message_id'])}`;
  }
  const caption = str(m['caption']) ?? '';
  for (const [field, type] of MEDIA) {
    const raw = m[field];
    // a photo comes in several sizes, smallest first: the last is the original
    const media = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    if (!isObject(media)) continue;
    const fileId = str(media['file_id']);
    if (!fileId) continue;
    const attachment: Attachment = { id: str(media['file_unique_id']) ?? fileId, type, url: `telegram-file:${fileId}` };
    const mime = str(media['mime_type']);
    if (mime) attachment.mimeType = mime;
    const fileName = str(media['file_name']);
    if (fileName) attachment.fileName = fileName;
    if (typeof media['file_size'] === 'number') attachment.fileSize = media['file_size'];
    metadata['platformType'] = field;
    return { ...base, type, content: caption, attachments: [attachment], metadata };
  }
  const venue = isObject(m['venue']) ? m['venue'] : undefined;
  const location = isObject(m['location']) ? m['location'] : venue && isObject(venue['location']) ? venue['location'] : undefined;
  if (location) {
    const latitude = Number(location['latitude']);
    const longitude = Number(location['longitude']);
    if (!Number.isFinite(latitude) || !Number.isFinite(longitude)) return undefined;
    const name = venue ? str(venue['title']) : undefined;
    const address = venue ? str(venue['address']) : undefined;
    metadata['platformType'] = venue ? 'venue' : 'location';
    metadata['location'] = { latitude, longitude, ...(name ? { name } : {}), ...(address ? { address } : {}) };
    return { ...base, type: 'text', content: `📍 ${[name, address].filter(Boolean).join(', ') || `${latitude},${longitude}`}`, attachments: [], metadata };
  }
  const text = str(m['text']);
  if (text === undefined) return undefined;
  metadata['platformType'] = 'text';
  return { ...base, type: 'text', content: text, attachments: [], metadata };
}

/** An inline keyboard button pressed under one of the bot's messages. */
function toButtonPress(q: Json): InboundMessage | undefined {
  const id = str(q['id']);
  const message = isObject(q['message']) ? q['message'] : undefined;
  const chat = message && isObject(message['chat']) ? idOf(message['chat']['id']) : isObject(q['from']) ? idOf(q['from']['id']) : undefined;
  if (!id || !chat) return undefined;
  const data = str(q['data']) ?? '';
  return {
    kind: 'message', platformMessageId: `callback:${id}`, externalUserId: chat, externalUserName: senderName(q['from']),
    type: 'text', content: data, attachments: [], ackId: id,
    metadata: { platform: 'telegram', platformType: 'callback_query', button: { data } },
  };
}
