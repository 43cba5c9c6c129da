import { createHmac } from 'node:crypto';
import { ChatError } from '../protocol/errors.ts';
import type { Attachment } from '../domain/models.ts';
import type { Channel, InboundEvent, InboundMessage, InboundStatus, OutboundMessage, SendOutcome, WebhookHeaders } from './channel.ts';
import { describeFailure, postForm, retryableStatus } from './platform-http.ts';
import { sameSecret } from './signatures.ts';

export interface TwilioConfig {
  authToken: string;
  accountSid: string | undefined;
  /** The number replies are sent from (E.164), or a Messaging Service (`MG...`) that picks one. */
  fromNumber: string | undefined;
  messagingServiceSid: string | undefined;
  /** The public URL Twilio calls (the one set on the number): Twilio signs it, so it cannot be guessed from the request behind a proxy. */
  webhookUrl: string;
  apiBase: string;
  httpTimeoutMs: number;
}

export const TWILIO_SIGNATURE_HEADER = 'x-twilio-signature';
/** Twilio refuses a longer body (error 21617); splitting would make one reply several platform messages that cannot be retried as one. */
export const TWILIO_MAX_BODY_CHARS = 1600;
/** Media one MMS may carry (`MediaUrl`, repeated; 5 MB in all). */
export const TWILIO_MAX_MEDIA = 10;
/** The query parameter of our StatusCallback URL that names the room message: Twilio signs the URL, so it comes back proven. */
const MESSAGE_ID_PARAM = 'messageId';

/** An empty TwiML document: "taken, no automatic reply" (the agents answer through the REST API). */
const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

/** Twilio's MessageStatus values that are news to the room; queued, accepted, sending, scheduled are steps before `sent`. */
const STATUSES: Record<string, InboundStatus['status']> = { sent: 'sent', delivered: 'delivered', read: 'read', failed: 'failed', undelivered: 'failed' };

/**
 * `X-Twilio-Signature`: base64 HMAC-SHA1 under the auth token of the URL Twilio called followed by
 * every POST field's name and value (decoded), sorted by name.
 */
export function twilioSignature(authToken: string, url: string, fields: Iterable<[string, string]>): string {
  const sorted = [...fields].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  let data = url;
  for (const [name, value] of sorted) data += name + value;
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/**
 * SMS (and MMS) through Twilio Programmable Messaging. Inbound messages and the status callbacks
 * of our sends POST `application/x-www-form-urlencoded` forms to the same webhook, signed with
 * `X-Twilio-Signature` over the public URL and the fields. The URL signed is TWILIO_WEBHOOK_URL's
 * scheme, host and path with the request's own query (our status callbacks add `messageId=...`):
 * a proxy may rewrite the host or path, never what Twilio signed. A person is their E.164 number
 * without the `+` (room ids have no `+`). Replies: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`
 * with HTTP Basic auth, answering the Message resource (`sid`); a reply's files go as `MediaUrl`
 * (repeated, up to 10: one MMS, its text the `Body`), which Twilio fetches.
 */
export function twilioChannel(cfg: TwilioConfig): Channel {
  const webhook = new URL(cfg.webhookUrl);
  const signedBase = `${webhook.origin}${webhook.pathname}`;
  const configuredQuery = webhook.search;

  return {
    platform: 'twilio',
    media: { perSend: TWILIO_MAX_MEDIA, captionMaxChars: TWILIO_MAX_BODY_CHARS },
    webhookAnswer: { contentType: 'text/xml', body: EMPTY_TWIML },
    webhookContentType: 'application/x-www-form-urlencoded',

    verify(headers: WebhookHeaders, rawBody: Buffer, target?: string): void {
      const given = headers[TWILIO_SIGNATURE_HEADER];
      if (!given) throw new ChatError('unauthorized', 'missing X-Twilio-Signature');
      const query = target === undefined ? configuredQuery : queryOf(target);
      const expected = twilioSignature(cfg.authToken, signedBase + query, new URLSearchParams(rawBody.toString('utf8')));
      if (!sameSecret(given, expected)) throw new ChatError('unauthorized', 'X-Twilio-Signature does not match TWILIO_WEBHOOK_URL and the form');
    },

    parse(rawBody: Buffer, target?: string): InboundEvent[] {
      const form = new URLSearchParams(rawBody.toString('utf8'));
      const sid = form.get('MessageSid') ?? form.get('SmsSid');
      if (!sid || !form.get('AccountSid')) throw new ChatError('bad_request', 'expected a Twilio message webhook (MessageSid, AccountSid)');
      const messageStatus = form.get('MessageStatus') ?? form.get('SmsStatus');
      // an inbound message carries SmsStatus=received too: only our sends' callbacks have other values
      if (messageStatus !== null && messageStatus !== 'received') {
        const s = toStatus(sid, messageStatus, form, target);
        return s ? [s] : [];
      }
      const m = toMessage(sid, form);
      return m ? [m] : [];
    },

    async send(out: OutboundMessage): Promise<SendOutcome> {
      if (!cfg.accountSid || (!cfg.fromNumber && !cfg.messagingServiceSid)) {
        return { kind: 'failed', error: 'TWILIO_ACCOUNT_SID and TWILIO_FROM_NUMBER (or TWILIO_MESSAGING_SERVICE_SID) are needed to send', retryable: false };
      }
      if ([...out.content].length > TWILIO_MAX_BODY_CHARS) {
        return { kind: 'failed', error: `the reply is longer than the ${TWILIO_MAX_BODY_CHARS} characters an SMS body may have`, retryable: false };
      }
      const url = `${cfg.apiBase.replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(cfg.accountSid)}/Messages.json`;
      const statusCallback = new URL(cfg.webhookUrl);
      statusCallback.searchParams.append(MESSAGE_ID_PARAM, out.messageId);
      const answer = await postForm(url, { authorization: `Basic ${Buffer.from(`${cfg.accountSid}:${cfg.authToken}`).toString('base64')}` }, [
        ['To', `+${out.externalUserId}`],
        cfg.messagingServiceSid ? ['MessagingServiceSid', cfg.messagingServiceSid] : ['From', cfg.fromNumber!],
        // an MMS may have no text; a text message must
        ...(out.content || !out.media?.length ? [['Body', out.content] as [string, string]] : []),
        ...(out.media ?? []).map((m): [string, string] => ['MediaUrl', m.url]),
        ['StatusCallback', statusCallback.toString()],
      ], cfg.httpTimeoutMs);
      if ('kind' in answer) return answer;
      if (answer.status >= 200 && answer.status < 300) {
        const id = typeof answer.json === 'object' && answer.json !== null ? (answer.json as Record<string, unknown>)['sid'] : undefined;
        if (typeof id === 'string' && id) return { kind: 'sent', platformMessageId: id };
        return { kind: 'failed', error: `HTTP ${answer.status} without sid`, retryable: false };
      }
      return {
        kind: 'failed', error: describeFailure(answer.status, answer.json), retryable: retryableStatus(answer.status),
        ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}),
      };
    },
  };
}

function queryOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 || q === target.length - 1 ? '' : target.slice(q);
}

/** `+15551234567` -> `15551234567`; undefined for what is not an E.164 number (short codes' replies, `whatsapp:` senders). */
function personOf(address: string | null): string | undefined {
  return address !== null && /^\+[0-9]{3,15}$/.test(address) ? address.slice(1) : undefined;
}

function mediaType(contentType: string): Attachment['type'] {
  if (contentType.startsWith('image/')) return 'image';
  if (contentType.startsWith('video/')) return 'video';
  if (contentType.startsWith('audio/')) return 'audio';
  return 'file';
}

function toMessage(sid: string, form: URLSearchParams): InboundMessage | undefined {
  const from = personOf(form.get('From'));
  if (!from) return undefined;
  const metadata: Record<string, unknown> = { platform: 'twilio', platformType: 'sms' };
  const to = form.get('To');
  if (to) metadata['to'] = to;
  const attachments: Attachment[] = [];
  const count = Math.min(Number(form.get('NumMedia') ?? '0') || 0, 10);
  for (let i = 0; i < count; i++) {
    const url = form.get(`MediaUrl${i}`);
    if (!url) continue;
    const contentType = form.get(`MediaContentType${i}`) ?? 'application/octet-stream';
    // the media's own sid ends its URL (.../Messages/MM.../Media/ME...)
    const id = url.slice(url.lastIndexOf('/') + 1) || `${sid}:${i}`;
    attachments.push({ id, type: mediaType(contentType), url, mimeType: contentType });
  }
  let content = form.get('Body') ?? '';
  const latitude = Number(form.get('Latitude') ?? NaN);
  const longitude = Number(form.get('Longitude') ?? NaN);
  if (Number.isFinite(latitude) && Number.isFinite(longitude)) {
    const name = form.get('Label') ?? undefined;
    const address = form.get('Address') ?? undefined;
    metadata['location'] = { latitude, longitude, ...(name ? { name } : {}), ...(address ? { address } : {}) };
    metadata['platformType'] = 'location';
    if (!content) content = `📍 ${[name, address].filter(Boolean).join(', ') || `${latitude},${longitude}`}`;
  }
  const first = attachments[0];
  if (first) metadata['platformType'] = 'mms';
  if (!content && attachments.length === 0) return undefined;
  return { kind: 'message', platformMessageId: sid, externalUserId: from, externalUserName: undefined, type: first?.type ?? 'text', content, attachments, metadata };
}

function toStatus(sid: string, messageStatus: string, form: URLSearchParams, target: string | undefined): InboundStatus | undefined {
  const status = STATUSES[messageStatus];
  const to = personOf(form.get('To'));
  if (!status || !to) return undefined;
  const messageId = target === undefined ? null : new URLSearchParams(queryOf(target)).get(MESSAGE_ID_PARAM);
  const code = form.get('ErrorCode');
  const message = form.get('ErrorMessage');
  return {
    kind: 'status', platformMessageId: sid, externalUserId: to, status, at: Date.now(),
    ...(messageId && /^[0-9]{1,20}$/.test(messageId) ? { messageId } : {}),
    ...(status === 'failed' ? { error: [messageStatus, code, message].filter(Boolean).join(' ') } : {}),
  };
}
