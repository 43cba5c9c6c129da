import { ChatError } from '../protocol/errors.ts';
import type { Attachment } from '../domain/models.ts';
import type { Channel, InboundEvent, InboundMessage, InboundStatus, OutboundMedia, OutboundMessage, SendOutcome, WebhookHeaders } from './channel.ts';
import { describeFailure, postJson, retryableStatus } from './platform-http.ts';
import { META_SIGNATURE_HEADER, metaEnvelope, metaHandshake, verifyMetaSignature } from './meta-webhook.ts';

export interface WhatsAppConfig {
  appSecret: string;
  verifyToken: string | undefined;
  accessToken: string | undefined;
  phoneNumberId: string | undefined;
  apiBase: string;
  apiVersion: string;
  httpTimeoutMs: number;
}

export const WHATSAPP_SIGNATURE_HEADER = META_SIGNATURE_HEADER;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** WhatsApp media kinds and the attachment type each becomes. */
const MEDIA: Record<string, Attachment['type']> = { image: 'image', sticker: 'image', video: 'video', audio: 'audio', document: 'file' };
/** The message type a file is sent as; audio takes no caption. */
const SEND_TYPE: Record<Attachment['type'], 'image' | 'video' | 'audio' | 'document'> = { image: 'image', video: 'video', audio: 'audio', file: 'document' };
/** Meta's limit on a media caption. */
export const WHATSAPP_CAPTION_MAX_CHARS = 1024;

/**
 * WhatsApp Cloud API. Webhooks are Meta's: a GET subscription check (`hub.mode=subscribe`,
 * `hub.verify_token`, `hub.challenge` echoed back) and POSTs signed with `X-Hub-Signature-256`
 * over the raw body; one POST may batch several entries, changes, messages and statuses. Replies go
 * to `POST {base}/{version}/{phone-number-id}/messages` with the access token: text as `type:
 * text`, a file as `type: image|video|audio|document` with `{link, caption}` (Meta fetches the
 * link; documents carry their `filename`), one file per message.
 */
export function whatsappChannel(cfg: WhatsAppConfig): Channel {
  return {
    platform: 'whatsapp',
    media: { perSend: 1, captionMaxChars: WHATSAPP_CAPTION_MAX_CHARS, uncaptioned: ['audio'] },

    verify(headers: WebhookHeaders, rawBody: Buffer): void {
      verifyMetaSignature(cfg.appSecret, headers, rawBody);
    },

    handshake(query: URLSearchParams): string {
      return metaHandshake({ verifyToken: cfg.verifyToken, product: 'WhatsApp', verifyTokenEnv: 'WHATSAPP_VERIFY_TOKEN', verifyTokenSecret: 'whatsapp.verifyToken' }, query);
    },

    parse(rawBody: Buffer): InboundEvent[] {
      const body = metaEnvelope(rawBody, 'whatsapp_business_account');
      const events: InboundEvent[] = [];
      for (const entry of list(body['entry'])) {
        if (!isObject(entry)) continue;
        for (const change of list(entry['changes'])) {
          if (!isObject(change) || change['field'] !== 'messages' || !isObject(change['value'])) continue;
          const value = change['value'];
          const names = new Map<string, string>();
          for (const c of list(value['contacts'])) {
            const waId = isObject(c) ? str(c['wa_id']) : undefined;
            const name = isObject(c) && isObject(c['profile']) ? str(c['profile']['name']) : undefined;
            if (waId && name) names.set(waId, name);
          }
          for (const m of list(value['messages'])) {
            const message = isObject(m) ? toMessage(m, names) : undefined;
            if (message) events.push(message);
          }
          for (const s of list(value['statuses'])) {
            const status = isObject(s) ? toStatus(s) : undefined;
            if (status) events.push(status);
          }
        }
      }
      return events;
    },

    async send(out: OutboundMessage): Promise<SendOutcome> {
      if (!cfg.accessToken || !cfg.phoneNumberId) {
        return { kind: 'failed', error: 'WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID are needed to send', retryable: false };
      }
      const url = `${cfg.apiBase.replace(/\/+$/, '')}/${cfg.apiVersion}/${cfg.phoneNumberId}/messages`;
      const answer = await postJson(url, { authorization: `Bearer ${cfg.accessToken}` }, {
        messaging_product: 'whatsapp', recipient_type: 'individual', to: out.externalUserId,
        ...(out.media?.[0] ? mediaMessage(out.media[0], out.content) : { type: 'text', text: { preview_url: false, body: out.content } }),
        // Meta hands it back in this message's status webhooks: they name the room message without a lookup
        biz_opaque_callback_data: out.messageId,
      }, cfg.httpTimeoutMs);
      if ('kind' in answer) return answer;
      if (answer.status >= 200 && answer.status < 300) {
        const id = isObject(answer.json) ? str(list(answer.json['messages']).map((x) => (isObject(x) ? x['id'] : undefined))[0]) : undefined;
        if (id) return { kind: 'sent', platformMessageId: id };
        return { kind: 'failed', error: `HTTP ${answer.status} without messages[0].id`, retryable: false };
      }
      return {
        kind: 'failed', error: describeFailure(answer.status, answer.json), retryable: retryableStatus(answer.status),
        ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}),
      };
    },
  };
}

/** The only image formats WhatsApp shows as an image; another (WebP, GIF, ...) would be refused, so it goes as a document. */
const IMAGE_TYPES = new Set(['image/jpeg', 'image/png']);

function mediaMessage(media: OutboundMedia, caption: string): Json {
  const type = media.type === 'image' && media.mimeType !== undefined && !IMAGE_TYPES.has(media.mimeType) ? 'document' : SEND_TYPE[media.type];
  return {
    type,
    [type]: {
      link: media.url,
      ...(caption && type !== 'audio' ? { caption } : {}),
      ...(type === 'document' && media.fileName ? { filename: media.fileName } : {}),
    },
  };
}

function toMessage(m: Json, names: Map<string, string>): InboundMessage | undefined {
  const id = str(m['id']);
  const from = str(m['from']);
  const type = str(m['type']);
  if (!id || !from || !type) return undefined;
  const base = { kind: 'message' as const, platformMessageId: id, externalUserId: from, externalUserName: names.get(from) };
  const metadata: Json = { platform: 'whatsapp', platformType: type };
  if (isObject(m['context']) && str(m['context']['id'])) metadata['replyToPlatformMessageId'] = m['context']['id'];
  const part = isObject(m[type]) ? m[type] : {};
  const mediaType = MEDIA[type];
  if (mediaType !== undefined) {
    const mediaId = str(part['id']);
    if (!mediaId) return undefined;
    const attachment: Attachment = { id: mediaId, type: mediaType, url: `whatsapp-media:${mediaId}` };
    const mime = str(part['mime_type']);
    if (mime) attachment.mimeType = mime;
    const fileName = str(part['filename']);
    if (fileName) attachment.fileName = fileName;
    return { ...base, type: mediaType, content: str(part['caption']) ?? '', attachments: [attachment], metadata };
  }
  switch (type) {
    case 'text':
      return { ...base, type: 'text', content: str(part['body']) ?? '', attachments: [], metadata };
    case 'location': {
      const latitude = Number(part['latitude']);
      const longitude = Number(part['longitude']);
      if (!Number.isFinite(latitude) || !Number.isFinite(longitude)) return undefined;
      const name = str(part['name']);
      const address = str(part['address']);
      metadata['location'] = { latitude, longitude, ...(name ? { name } : {}), ...(address ? { address } : {}) };
      return { ...base, type: 'text', content: `📍 ${[name, address].filter(Boolean).join(', ') || `${latitude},${longitude}`}`, attachments: [], metadata };
    }
    case 'button': {
      // a template's quick-reply button
      metadata['button'] = { payload: str(part['payload']) ?? '', text: str(part['text']) ?? '' };
      return { ...base, type: 'text', content: str(part['text']) ?? str(part['payload']) ?? '', attachments: [], metadata };
    }
    case 'interactive': {
      const kind = str(part['type']);
      const reply = kind && isObject(part[kind]) ? part[kind] : undefined;
      if (!reply) return undefined;
      metadata['button'] = { kind, id: str(reply['id']) ?? '', title: str(reply['title']) ?? '', ...(str(reply['description']) ? { description: reply['description'] } : {}) };
      return { ...base, type: 'text', content: str(reply['title']) ?? '', attachments: [], metadata };
    }
    default:
      // reactions, contacts cards, orders, system notices: not conversation text
      return undefined;
  }
}

const STATUSES = new Set(['sent', 'delivered', 'read', 'failed']);

function toStatus(s: Json): InboundStatus | undefined {
  const id = str(s['id']);
  const status = str(s['status']);
  const recipient = str(s['recipient_id']);
  if (!id || !status || !recipient || !STATUSES.has(status)) return undefined;
  const seconds = Number(s['timestamp']);
  const first = list(s['errors'])[0];
  const error = isObject(first) ? [first['code'], str(first['title']) ?? str(first['message'])].filter((x) => x !== undefined).join(' ') : undefined;
  const messageId = str(s['biz_opaque_callback_data']);
  return {
    kind: 'status', platformMessageId: id, externalUserId: recipient, status: status as InboundStatus['status'], ...(messageId ? { messageId } : {}),
    at: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : Date.now(), ...(error ? { error } : {}),
  };
}
