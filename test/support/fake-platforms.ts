import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakePlatform = 'whatsapp' | 'telegram' | 'slack' | 'messenger' | 'twilio';

/** One send a fake platform took (or refused), as the platform saw it. */
export interface PlatformSend {
  platform: FakePlatform;
  path: string;
  authorization: string | undefined;
  body: any;
  status: number;
}

export interface FakePlatforms {
  /** WHATSAPP_API_BASE / TELEGRAM_API_BASE for the service under test. */
  base: string;
  sends: PlatformSend[];
  /** Statuses the next sends of a platform answer, in order (then 200). */
  fail(platform: FakePlatform, ...statuses: number[]): void;
  close(): Promise<void>;
}

export const FAKE_PHONE_NUMBER_ID = '1098765432';
export const FAKE_BOT_TOKEN = '123456:test-bot-token';
export const FAKE_ACCESS_TOKEN = 'EAAtest-access-token';
export const FAKE_SLACK_TOKEN = 'xoxb-test-slack-token';
export const FAKE_PAGE_TOKEN = 'EAApage-access-token';
export const FAKE_PAGE_ID = '105519172130201';
export const FAKE_TWILIO_SID = 'AC0123456789abcdef0123456789abcdef';
export const FAKE_TWILIO_TOKEN = 'twilio-auth-token-for-tests';
export const FAKE_TWILIO_NUMBER = '+15005550006';
/** Telegram's file-sending methods and the Message field each fills. */
const TELEGRAM_FILE_FIELD: Record<string, string | undefined> = { sendPhoto: 'photo', sendVideo: 'video', sendAudio: 'audio', sendDocument: 'document' };

/**
 * A local server speaking the send APIs of WhatsApp Cloud (`POST /{version}/{phone-number-id}/messages`
 * with a Bearer token, answering `{messaging_product, contacts, messages:[{id}]}`) and Telegram
 * (`POST /bot{token}/sendMessage`, and sendPhoto, sendVideo, sendAudio, sendDocument with a file
 * URL and caption, answering `{ok, result: Message}`, or `{ok:false, error_code,
 * description, parameters:{retry_after}}` on 429) and Slack (`POST /api/chat.postMessage` with a
 * Bearer bot token, answering `{ok, channel, ts}`, 429 with Retry-After), Messenger
 * (`POST /{version}/me/messages?access_token=...`, answering `{recipient_id, message_id}`, Graph
 * errors `{error:{message, type, code, fbtrace_id}}`, a rate limit as 400 with code 613) and
 * Twilio (`POST /2010-04-01/Accounts/{sid}/Messages.json`, a form with HTTP Basic auth, answering
 * 201 with the Message resource, errors `{code, message, more_info, status}`), with their error
 * shapes. A Messenger or Twilio send's `body` is the JSON or the form's fields (Twilio's repeated
 * `MediaUrl` as a list).
 */
export async function startFakePlatforms(opts: {
  /** The WhatsApp business numbers it knows, each with the only token that sends from it (default: the FAKE_ pair). */
  whatsappAccounts?: Array<{ phoneNumberId: string; accessToken: string }>;
} = {}): Promise<FakePlatforms> {
  const accounts = opts.whatsappAccounts ?? [{ phoneNumberId: FAKE_PHONE_NUMBER_ID, accessToken: FAKE_ACCESS_TOKEN }];
  const sends: PlatformSend[] = [];
  const queued: Record<FakePlatform, number[]> = { whatsapp: [], telegram: [], slack: [], messenger: [], twilio: [] };
  let seq = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      let body: any;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = undefined;
      }
      const json = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      if (req.method === 'POST' && /^\/v[0-9.]+\/[0-9]+\/messages$/.test(path)) {
        const status = queued.whatsapp.shift() ?? (accounts.some((a) => path.includes(`/${a.phoneNumberId}/`) && req.headers.authorization === `Bearer ${a.accessToken}`) ? 200 : 401);
        sends.push({ platform: 'whatsapp', path, authorization: req.headers.authorization, body, status });
        if (status === 200) {
          json(200, { messaging_product: 'whatsapp', contacts: [{ input: body?.to, wa_id: body?.to }], messages: [{ id: `wamid.OUT${++seq}` }] });
        } else {
          json(status, { error: { message: status === 429 ? '(#130429) Rate limit hit' : 'Service temporarily unavailable', type: 'OAuthException', code: status === 429 ? 130429 : 2, fbtrace_id: 'Afake' } });
        }
        return;
      }
      const answered = /^\/bot([^/]+)\/answerCallbackQuery$/.exec(path);
      if (req.method === 'POST' && answered) {
        const status = answered[1] === FAKE_BOT_TOKEN ? 200 : 401;
        sends.push({ platform: 'telegram', path, authorization: undefined, body, status });
        json(status, status === 200 ? { ok: true, result: true } : { ok: false, error_code: 401, description: 'Unauthorized' });
        return;
      }
      const tg = /^\/bot([^/]+)\/(sendMessage|sendPhoto|sendVideo|sendAudio|sendDocument)$/.exec(path);
      if (req.method === 'POST' && tg) {
        const status = queued.telegram.shift() ?? (tg[1] === FAKE_BOT_TOKEN ? 200 : 401);
        sends.push({ platform: 'telegram', path, authorization: req.headers.authorization, body, status });
        if (status === 200) {
          const field = TELEGRAM_FILE_FIELD[tg[2]!];
          // the Message sent: a file's field holds what Telegram made of it, with the caption beside
          const content = field
            ? { [field]: field === 'photo' ? [{ file_id: `AgAD${seq}`, file_unique_id: `u${seq}`, width: 320, height: 240 }] : { file_id: `BQAD${seq}`, file_unique_id: `u${seq}` }, ...(body?.caption ? { caption: body.caption } : {}) }
            : { text: body?.text };
          json(200, { ok: true, result: { message_id: ++seq, date: Math.floor(Date.now() / 1000), chat: { id: Number(body?.chat_id), type: 'private' }, ...content } });
        } else if (status === 429) {
          json(429, { ok: false, error_code: 429, description: 'Too Many Requests: retry after 0', parameters: { retry_after: 0 } });
        } else {
          json(status, { ok: false, error_code: status, description: status === 401 ? 'Unauthorized' : 'Internal Server Error' });
        }
        return;
      }
      const fb = /^\/v[0-9.]+\/me\/messages\?access_token=([^&]*)$/.exec(path);
      if (req.method === 'POST' && fb) {
        const status = queued.messenger.shift() ?? (decodeURIComponent(fb[1]!) === FAKE_PAGE_TOKEN ? 200 : 401);
        sends.push({ platform: 'messenger', path: path.replace(/access_token=[^&]*/, 'access_token=***'), authorization: decodeURIComponent(fb[1]!), body, status });
        if (status === 200) json(200, { recipient_id: body?.recipient?.id, message_id: `m_OUT${++seq}` });
        else if (status === 401) json(400, { error: { message: 'Invalid OAuth access token.', type: 'OAuthException', code: 190, fbtrace_id: 'Afake' } });
        // Graph's rate limits come as 400 with their own code (613: calls to this api have exceeded the rate limit)
        else if (status === 613) json(400, { error: { message: '(#613) Calls to this api have exceeded the rate limit.', type: 'OAuthException', code: 613, fbtrace_id: 'Afake' } });
        else if (status === 429) res.writeHead(429, { 'retry-after': '0', 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'rate limit', type: 'OAuthException', code: 4, fbtrace_id: 'Afake' } }));
        else json(status, { error: { message: status === 400 ? '(#100) No matching user found' : 'An unexpected error has occurred.', type: 'OAuthException', code: status === 400 ? 100 : 2, fbtrace_id: 'Afake' } });
        return;
      }
      const tw = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(path);
      if (req.method === 'POST' && tw) {
        const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        // MediaUrl repeats, one per file of an MMS: a list
        const form: Record<string, any> = { ...Object.fromEntries(params), ...(params.has('MediaUrl') ? { MediaUrl: params.getAll('MediaUrl') } : {}) };
        const auth = req.headers.authorization;
        const good = tw[1] === FAKE_TWILIO_SID && auth === `Basic ${Buffer.from(`${FAKE_TWILIO_SID}:${FAKE_TWILIO_TOKEN}`).toString('base64')}`;
        const status = queued.twilio.shift() ?? (good ? 201 : 401);
        sends.push({ platform: 'twilio', path, authorization: auth, body: form, status });
        const error = (code: number, message: string) => json(status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });
        if (status === 201) {
          json(201, {
            sid: `SM${String(++seq).padStart(32, '0')}`, account_sid: tw[1], to: form['To'], from: form['From'] ?? null, messaging_service_sid: form['MessagingServiceSid'] ?? null,
            body: form['Body'] ?? '', status: 'queued', num_segments: '1', num_media: String(form['MediaUrl']?.length ?? 0), direction: 'outbound-api', api_version: '2010-04-01',
            date_created: new Date().toUTCString(), date_sent: null, error_code: null, error_message: null, price: null, uri: `${path.slice(0, -5)}/SM.json`,
          });
        } else if (status === 401) error(20003, 'Authenticate');
        else if (status === 429) { res.setHeader('retry-after', '0'); error(20429, 'Too Many Requests'); }
        else if (status === 400) error(21211, `The 'To' number ${form['To']} is not a valid phone number.`);
        else error(20500, 'Internal Server Error');
        return;
      }
      if (req.method === 'POST' && path === '/api/chat.postMessage') {
        const status = queued.slack.shift() ?? (req.headers.authorization === `Bearer ${FAKE_SLACK_TOKEN}` ? 200 : 401);
        sends.push({ platform: 'slack', path, authorization: req.headers.authorization, body, status });
        if (status === 200) json(200, { ok: true, channel: body?.channel, ts: `1700000000.${String(++seq).padStart(6, '0')}`, message: { type: 'message', text: body?.text, bot_id: 'B01' } });
        else if (status === 401) json(200, { ok: false, error: 'invalid_auth' });
        else if (status === 429) res.writeHead(429, { 'retry-after': '0', 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, error: 'ratelimited' }));
        else json(status, { ok: false, error: 'internal_error' });
        return;
      }
      json(404, { error: 'no such route on the fake platform' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    sends,
    fail: (platform, ...statuses) => { queued[platform].push(...statuses); },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** A WhatsApp Cloud API `messages` webhook body, as Meta sends it, for one inbound message. */
export function whatsappMessageWebhook(from: string, wamid: string, message: Record<string, unknown>, name = 'Customer'): string {
  return whatsappWebhook({
    contacts: [{ profile: { name }, wa_id: from }],
    messages: [{ from, id: wamid, timestamp: String(Math.floor(Date.now() / 1000)), ...message }],
  });
}

/** Meta's envelope around one `messages` change of our business number. */
function whatsappWebhook(change: Record<string, unknown>): string {
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{
      id: '102290129340398',
      changes: [{
        field: 'messages',
        value: {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: '15550783881', phone_number_id: FAKE_PHONE_NUMBER_ID },
          ...change,
        },
      }],
    }],
  });
}

/** A WhatsApp status webhook body (sent, delivered, read, failed) for a message the business sent. */
export function whatsappStatusWebhook(recipient: string, wamid: string, status: string, callbackData?: string): string {
  return whatsappWebhook({
    statuses: [{
      id: wamid, status, timestamp: String(Math.floor(Date.now() / 1000)), recipient_id: recipient,
      ...(callbackData ? { biz_opaque_callback_data: callbackData } : {}),
      ...(status === 'failed' ? { errors: [{ code: 131047, title: 'Re-engagement message' }] } : {}),
    }],
  });
}

/** Meta's X-Hub-Signature-256 for a body. */
export function signMeta(appSecret: string, body: string): string {
  return `sha256=${createHmac('sha256', appSecret).update(body).digest('hex')}`;
}

/** A Telegram Update with one private-chat message. */
export function telegramMessageUpdate(updateId: number, chatId: number, messageId: number, fields: Record<string, unknown>): string {
  return JSON.stringify({
    update_id: updateId,
    message: {
      message_id: messageId, date: Math.floor(Date.now() / 1000),
      from: { id: chatId, is_bot: false, first_name: 'Tess', last_name: 'Gram', username: 'tessg', language_code: 'en' },
      chat: { id: chatId, first_name: 'Tess', last_name: 'Gram', username: 'tessg', type: 'private' },
      ...fields,
    },
  });
}

/** A Slack Events API `event_callback` body for one message in a DM channel. */
export function slackMessageEvent(channel: string, user: string, ts: string, event: Record<string, unknown> = {}): string {
  return JSON.stringify({
    token: 'deprecated-verification-token', team_id: 'T0001', api_app_id: 'A0001', type: 'event_callback',
    event_id: `Ev${ts.replace('.', '')}`, event_time: Math.floor(Date.now() / 1000),
    event: { type: 'message', channel, user, text: 'hello', ts, channel_type: 'im', event_ts: ts, ...event },
  });
}

/** Slack's X-Slack-Signature for a body sent at `timestamp` (seconds). */
export function signSlack(signingSecret: string, timestamp: string, body: string): string {
  return `v0=${createHmac('sha256', signingSecret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

/** A Messenger webhook body (`object: "page"`) with these `messaging` events, as Meta batches them. */
export function messengerWebhook(...messaging: Array<Record<string, unknown>>): string {
  return JSON.stringify({ object: 'page', entry: [{ id: FAKE_PAGE_ID, time: Date.now(), messaging }] });
}

/** One `messaging` event from a person (PSID) to the page. */
export function messengerEvent(psid: string, fields: Record<string, unknown>): Record<string, unknown> {
  return { sender: { id: psid }, recipient: { id: FAKE_PAGE_ID }, timestamp: Date.now(), ...fields };
}

/** Twilio's X-Twilio-Signature for a form posted to `url`: base64 HMAC-SHA1 of the URL and the sorted fields. */
export function signTwilio(authToken: string, url: string, fields: Record<string, string>): string {
  const data = Object.keys(fields).sort().reduce((acc, k) => acc + k + fields[k], url);
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/** An inbound SMS webhook's form, as Twilio posts it to the number's messaging URL. */
export function twilioInboundForm(from: string, sid: string, fields: Record<string, string> = {}): Record<string, string> {
  return {
    ToCountry: 'US', ToState: 'CA', SmsMessageSid: sid, NumMedia: '0', ToCity: '', FromZip: '94105', SmsSid: sid, FromState: 'CA', SmsStatus: 'received',
    FromCity: 'SAN FRANCISCO', Body: 'hello', FromCountry: 'US', To: FAKE_TWILIO_NUMBER, ToZip: '', NumSegments: '1', MessageSid: sid,
    AccountSid: FAKE_TWILIO_SID, From: from, ApiVersion: '2010-04-01', ...fields,
  };
}

/** A status callback's form for a message we sent (MessageStatus queued, sent, delivered, read, failed, undelivered). */
export function twilioStatusForm(to: string, sid: string, status: string, fields: Record<string, string> = {}): Record<string, string> {
  return {
    SmsSid: sid, SmsStatus: status, MessageStatus: status, To: to, MessageSid: sid, AccountSid: FAKE_TWILIO_SID, From: FAKE_TWILIO_NUMBER, ApiVersion: '2010-04-01',
    ...(status === 'failed' || status === 'undelivered' ? { ErrorCode: '30003' } : {}), ...fields,
  };
}
