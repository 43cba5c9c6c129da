import { ChatError } from '../protocol/errors.ts';
import type { Attachment } from '../domain/models.ts';
import type { Channel, InboundEvent, InboundMessage, InboundStatus, OutboundMessage, SendOutcome, WebhookHeaders } from './channel.ts';
import { describeFailure, postJson, retryableStatus } from './platform-http.ts';
import { META_SIGNATURE_HEADER, metaEnvelope, metaHandshake, verifyMetaSignature } from './meta-webhook.ts';

export interface MessengerConfig {
  appSecret: string;
  verifyToken: string | undefined;
  pageAccessToken: string | undefined;
  apiBase: string;
  apiVersion: string;
  httpTimeoutMs: number;
}

export const MESSENGER_SIGNATURE_HEADER = META_SIGNATURE_HEADER;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const idOf = (v: unknown): string | undefined => str(v) ?? (typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : undefined);

/** Messenger attachment types carried as attachments, and the type each becomes. */
const MEDIA: Record<string, Attachment['type']> = { image: 'image', video: 'video', audio: 'audio', file: 'file' };
/**
 * Graph API error codes that mean "too many calls" whatever the HTTP status (Meta answers some
 * with 400): 4 app, 32 page, 613 custom rate limit.
 */
const RATE_LIMIT_CODES = new Set([4, 32, 613]);

/**
 * Facebook Messenger (Messenger Platform). Webhooks are Meta's like WhatsApp's: the GET
 * subscription check and POSTs signed with `X-Hub-Signature-256` under the app secret, with
 * `object: "page"` and `entry[].messaging[]` events: `message` (the page's own sends come back as
 * `is_echo` and are skipped), `postback` (a button), `delivery` and `read`. A person is their
 * page-scoped id (PSID). Replies go to `POST {base}/{version}/me/messages?access_token=...` (the
 * page access token in the query, as Meta documents it: that URL is never logged); a file is
 * a message of its own, `attachment: {type: image|video|audio|file, payload: {url, is_reusable}}`,
 * which Meta fetches (a message is text or one attachment, never both).
 *
 * Receipts: `delivery` names the delivered message ids (`mids`) when the person's client sends
 * them, and always a watermark; `read` has only the watermark ("every message sent up to this
 * time was read"). A status with mids is one per mid; one with only a watermark is a single
 * status carrying `upTo`, which the inbox maps to the room's last reply sent before it.
 */
export function messengerChannel(cfg: MessengerConfig): Channel {
  return {
    platform: 'messenger',
    // a message is text or one attachment, never both
    media: { perSend: 1, captionMaxChars: 0 },

    verify(headers: WebhookHeaders, rawBody: Buffer): void {
      verifyMetaSignature(cfg.appSecret, headers, rawBody);
    },

    handshake(query: URLSearchParams): string {
      return metaHandshake({ verifyToken: cfg.verifyToken, product: 'Messenger', verifyTokenEnv: 'MESSENGER_VERIFY_TOKEN', verifyTokenSecret: 'messenger.verifyToken' }, query);
    },

    parse(rawBody: Buffer): InboundEvent[] {
      const body = metaEnvelope(rawBody, 'page');
      const events: InboundEvent[] = [];
      for (const entry of list(body['entry'])) {
        if (!isObject(entry)) continue;
        for (const e of list(entry['messaging'])) {
          if (isObject(e)) events.push(...toEvents(e));
        }
      }
      return events;
    },

    async send(out: OutboundMessage): Promise<SendOutcome> {
      if (!cfg.pageAccessToken) return { kind: 'failed', error: 'MESSENGER_PAGE_ACCESS_TOKEN is needed to send', retryable: false };
      const url = `${cfg.apiBase.replace(/\/+$/, '')}/${cfg.apiVersion}/me/messages?access_token=${encodeURIComponent(cfg.pageAccessToken)}`;
      const answer = await postJson(url, {}, {
        recipient: { id: out.externalUserId }, messaging_type: 'RESPONSE',
        // Meta hands it back in the echo of this send (which parse skips): the message is findable in Meta's logs by it
        message: {
          ...(out.media?.[0] ? { attachment: { type: out.media[0].type, payload: { url: out.media[0].url, is_reusable: false } } } : { text: out.content }),
          metadata: out.messageId,
        },
      }, cfg.httpTimeoutMs);
      if ('kind' in answer) return answer;
      const json = isObject(answer.json) ? answer.json : {};
      if (answer.status >= 200 && answer.status < 300) {
        const id = str(json['message_id']);
        if (id) return { kind: 'sent', platformMessageId: id };
        return { kind: 'failed', error: `HTTP ${answer.status} without message_id`, retryable: false };
      }
      const code = isObject(json['error']) ? json['error']['code'] : undefined;
      return {
        kind: 'failed', error: describeFailure(answer.status, answer.json),
        retryable: retryableStatus(answer.status) || (typeof code === 'number' && RATE_LIMIT_CODES.has(code)),
        ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}),
      };
    },
  };
}

function toEvents(e: Json): InboundEvent[] {
  const psid = isObject(e['sender']) ? idOf(e['sender']['id']) : undefined;
  if (!psid) return [];
  const at = typeof e['timestamp'] === 'number' && e['timestamp'] > 0 ? e['timestamp'] : undefined;
  if (isObject(e['message'])) {
    const m = toMessage(psid, e['message'], at);
    return m ? [m] : [];
  }
  if (isObject(e['postback'])) {
    const p = e['postback'];
    const payload = str(p['payload']) ?? '';
    const title = str(p['title']) ?? '';
    // older API versions give a postback no mid: the person and the time name it, as Meta retries it unchanged
    const id = str(p['mid']) ?? `postback:${psid}:${at ?? 0}`;
    return [{
      kind: 'message', platformMessageId: id, externalUserId: psid, externalUserName: undefined, type: 'text', content: title || payload, attachments: [],
      metadata: { platform: 'messenger', platformType: 'postback', button: { payload, title } },
    }];
  }
  if (isObject(e['delivery'])) return receipts(psid, 'delivered', e['delivery'], at);
  if (isObject(e['read'])) return receipts(psid, 'read', e['read'], at);
  // reactions, optins, referrals, handovers, account linking: not conversation text
  return [];
}

function toMessage(psid: string, m: Json, at: number | undefined): InboundMessage | undefined {
  // the page's own sends (ours included), echoed when message_echoes is subscribed
  if (m['is_echo'] === true) return undefined;
  const mid = str(m['mid']);
  if (!mid) return undefined;
  const metadata: Json = { platform: 'messenger', platformType: 'text' };
  if (isObject(m['reply_to']) && str(m['reply_to']['mid'])) metadata['replyToPlatformMessageId'] = m['reply_to']['mid'];
  const text = str(m['text']) ?? '';
  // a quick reply is a pressed button whose title is the text, as the other channels' buttons are
  if (isObject(m['quick_reply'])) metadata['button'] = { kind: 'quick_reply', payload: str(m['quick_reply']['payload']) ?? '', title: text };
  const attachments: Attachment[] = [];
  let content = text;
  for (const [i, a] of list(m['attachments']).entries()) {
    if (!isObject(a)) continue;
    const kind = str(a['type']) ?? '';
    const payload = isObject(a['payload']) ? a['payload'] : {};
    const mediaType = MEDIA[kind];
    const url = str(payload['url']);
    if (mediaType !== undefined && url) {
      // the url is Meta's CDN copy of the file: the bytes stay on the platform, as for the other channels
      attachments.push({ id: `${mid}:${i}`, type: mediaType, url });
      if (typeof payload['sticker_id'] === 'number') metadata['stickerId'] = payload['sticker_id'];
      continue;
    }
    const coordinates = isObject(payload['coordinates']) ? payload['coordinates'] : undefined;
    if (kind === 'location' && coordinates) {
      const latitude = Number(coordinates['lat']);
      const longitude = Number(coordinates['long']);
      if (!Number.isFinite(latitude) || !Number.isFinite(longitude)) continue;
      const name = str(a['title']);
      metadata['location'] = { latitude, longitude, ...(name ? { name } : {}) };
      metadata['platformType'] = 'location';
      if (!content) content = `📍 ${name ?? `${latitude},${longitude}`}`;
    }
    // templates, fallbacks (shared links), reels: nothing the room model holds
  }
  const first = attachments[0];
  if (first) metadata['platformType'] = first.type;
  if (!content && attachments.length === 0) return undefined;
  return {
    kind: 'message', platformMessageId: mid, externalUserId: psid, externalUserName: undefined,
    type: first?.type ?? 'text', content, attachments, metadata: { ...metadata, ...(at ? { platformTimestamp: at } : {}) },
  };
}

function receipts(psid: string, status: 'delivered' | 'read', r: Json, at: number | undefined): InboundStatus[] {
  const watermark = typeof r['watermark'] === 'number' && r['watermark'] > 0 ? r['watermark'] : undefined;
  const when = at ?? watermark ?? Date.now();
  const mids = list(r['mids']).map(str).filter((x): x is string => x !== undefined);
  if (mids.length > 0) return mids.map((id) => ({ kind: 'status', platformMessageId: id, externalUserId: psid, status, at: when }));
  if (watermark === undefined) return [];
  return [{ kind: 'status', externalUserId: psid, status, at: when, upTo: watermark }];
}
