import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One send a fake platform took (or refused), as the platform saw it. */
export interface PlatformSend {
  platform: 'whatsapp' | 'telegram' | 'slack';
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
  fail(platform: 'whatsapp' | 'telegram' | 'slack', ...statuses: number[]): void;
  close(): Promise<void>;
}

export const FAKE_PHONE_NUMBER_ID = '1098765432';
export const FAKE_BOT_TOKEN = '123456:test-bot-token';
export const FAKE_ACCESS_TOKEN = 'EAAtest-access-token';
export const FAKE_SLACK_TOKEN = 'xoxb-test-slack-token';

/**
 * A local server speaking the send APIs of WhatsApp Cloud (`POST /{version}/{phone-number-id}/messages`
 * with a Bearer token, answering `{messaging_product, contacts, messages:[{id}]}`) and Telegram
 * (`POST /bot{token}/sendMessage`, answering `{ok, result: Message}`, or `{ok:false, error_code,
 * description, parameters:{retry_after}}` on 429) and Slack (`POST /api/chat.postMessage` with a
 * Bearer bot token, answering `{ok, channel, ts}`, 429 with Retry-After), with their error shapes.
 */
export async function startFakePlatforms(opts: {
  /** The WhatsApp business numbers it knows, each with the only token that sends from it (default: the FAKE_ pair). */
  whatsappAccounts?: Array<{ phoneNumberId: string; accessToken: string }>;
} = {}): Promise<FakePlatforms> {
  const accounts = opts.whatsappAccounts ?? [{ phoneNumberId: FAKE_PHONE_NUMBER_ID, accessToken: FAKE_ACCESS_TOKEN }];
  const sends: PlatformSend[] = [];
  const queued: Record<'whatsapp' | 'telegram' | 'slack', number[]> = { whatsapp: [], telegram: [], slack: [] };
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
      const tg = /^\/bot([^/]+)\/sendMessage$/.exec(path);
      if (req.method === 'POST' && tg) {
        const status = queued.telegram.shift() ?? (tg[1] === FAKE_BOT_TOKEN ? 200 : 401);
        sends.push({ platform: 'telegram', path, authorization: req.headers.authorization, body, status });
        if (status === 200) {
          json(200, { ok: true, result: { message_id: ++seq, date: Math.floor(Date.now() / 1000), chat: { id: Number(body?.chat_id), type: 'private' }, text: body?.text } });
        } else if (status === 429) {
          json(429, { ok: false, error_code: 429, description: 'Too Many Requests: retry after 0', parameters: { retry_after: 0 } });
        } else {
          json(status, { ok: false, error_code: status, description: status === 401 ? 'Unauthorized' : 'Internal Server Error' });
        }
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
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{
      id: '102290129340398',
      changes: [{
        field: 'messages',
        value: {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: '15550783881', phone_number_id: FAKE_PHONE_NUMBER_ID },
          contacts: [{ profile: { name }, wa_id: from }],
          messages: [{ from, id: wamid, timestamp: String(Math.floor(Date.now() / 1000)), ...message }],
        },
      }],
    }],
  });
}

/** A WhatsApp status webhook body (sent, delivered, read, failed) for a message the business sent. */
export function whatsappStatusWebhook(recipient: string, wamid: string, status: string, callbackData?: string): string {
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{
      id: '102290129340398',
      changes: [{
        field: 'messages',
        value: {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: '15550783881', phone_number_id: FAKE_PHONE_NUMBER_ID },
          statuses: [{
            id: wamid, status, timestamp: String(Math.floor(Date.now() / 1000)), recipient_id: recipient,
            ...(callbackData ? { biz_opaque_callback_data: callbackData } : {}),
            ...(status === 'failed' ? { errors: [{ code: 131047, title: 'Re-engagement message' }] } : {}),
          }],
        },
      }],
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
