import { createHmac } from 'node:crypto';
import { ChatError } from '../protocol/errors.ts';
import type { Attachment } from '../domain/models.ts';
import type { Channel, InboundEvent, InboundMessage, OutboundMessage, SendOutcome, WebhookHeaders } from './channel.ts';
import { describeFailure, postJson, retryableStatus } from './platform-http.ts';
import { sameSecret } from './signatures.ts';

export interface SlackConfig {
  signingSecret: string;
  botToken: string | undefined;
  apiBase: string;
  httpTimeoutMs: number;
  now?: () => number;
}

export const SLACK_SIGNATURE_HEADER = 'x-slack-signature';
export const SLACK_TIMESTAMP_HEADER = 'x-slack-request-timestamp';
/** Slack's own rule: a request signed more than five minutes ago (or ahead) may be a replay. */
export const SLACK_MAX_AGE_SEC = 5 * 60;
/** Slack truncates a message's text beyond this. */
export const SLACK_MAX_TEXT_CHARS = 40_000;
/** Files linked in one post: more make a wall of links; the rest go in the next post. */
const SLACK_LINKS_PER_POST = 10;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Slack's `X-Slack-Signature` for a body sent at `timestamp` (seconds): `v0=` and the hex HMAC-SHA256 of `v0:{timestamp}:{body}`. */
export function slackSignature(signingSecret: string, timestamp: string, rawBody: Buffer): string {
  return `v0=${createHmac('sha256', signingSecret).update(`v0:${timestamp}:`).update(rawBody).digest('hex')}`;
}

function parseBody(rawBody: Buffer): Json {
  let body: unknown;
  try {
    body = JSON.parse(rawBody.toString('utf8'));
  } catch (err) {
    throw new ChatError('bad_request', 'the event is not JSON', { cause: err });
  }
  if (!isObject(body) || typeof body['type'] !== 'string') throw new ChatError('bad_request', 'expected a Slack Events API body (type)');
  return body;
}

/**
 * Slack Events API. Every request is signed with the app's signing secret over
 * `v0:{X-Slack-Request-Timestamp}:{raw body}`, and one whose timestamp is more than five minutes
 * from now is refused (a captured request cannot be replayed later). The subscription check is a
 * signed `url_verification` POST answered with its `challenge`. A conversation is a Slack channel
 * (a DM's `D...` id); a message's id is `channel:ts`. Replies go to `POST {base}/api/chat.postMessage`,
 * which takes no files: a reply's files are links in its text (`<url|name>`, images unfurled),
 * all in one post.
 */
export function slackChannel(cfg: SlackConfig): Channel {
  const now = cfg.now ?? Date.now;
  return {
    platform: 'slack',
    media: { perSend: SLACK_LINKS_PER_POST, captionMaxChars: SLACK_MAX_TEXT_CHARS },

    verify(headers: WebhookHeaders, rawBody: Buffer): void {
      const signature = headers[SLACK_SIGNATURE_HEADER];
      const timestamp = headers[SLACK_TIMESTAMP_HEADER];
      if (!signature || !timestamp) throw new ChatError('unauthorized', 'missing X-Slack-Signature or X-Slack-Request-Timestamp');
      const seconds = Number(timestamp);
      if (!/^[0-9]{1,12}$/.test(timestamp) || Math.abs(now() / 1000 - seconds) > SLACK_MAX_AGE_SEC) {
        throw new ChatError('unauthorized', `X-Slack-Request-Timestamp is more than ${SLACK_MAX_AGE_SEC / 60} minutes from now`);
      }
      if (!sameSecret(signature, slackSignature(cfg.signingSecret, timestamp, rawBody))) throw new ChatError('unauthorized', 'X-Slack-Signature does not match the body');
    },

    immediate(rawBody: Buffer): string | undefined {
      const body = parseBody(rawBody);
      if (body['type'] !== 'url_verification') return undefined;
      const challenge = str(body['challenge']);
      if (challenge === undefined) throw new ChatError('bad_request', 'url_verification without a challenge');
      return challenge;
    },

    parse(rawBody: Buffer): InboundEvent[] {
      const body = parseBody(rawBody);
      if (body['type'] !== 'event_callback' || !isObject(body['event'])) return [];
      const m = toMessage(body['event']);
      return m ? [m] : [];
    },

    async send(out: OutboundMessage): Promise<SendOutcome> {
      if (!cfg.botToken) return { kind: 'failed', error: 'SLACK_BOT_TOKEN is needed to send', retryable: false };
      const url = `${cfg.apiBase.replace(/\/+$/, '')}/api/chat.postMessage`;
      const links = (out.media ?? []).map((m) => `<${m.url}|${escapeText(m.fileName ?? m.type)}>`);
      const answer = await postJson(url, { authorization: `Bearer ${cfg.botToken}` }, {
        channel: out.externalUserId, text: [out.content, ...links].filter(Boolean).join('\n'), ...(links.length ? { unfurl_media: true } : {}),
      }, cfg.httpTimeoutMs);
      if ('kind' in answer) return answer;
      const json = isObject(answer.json) ? answer.json : {};
      if (answer.status >= 200 && answer.status < 300 && json['ok'] === true) {
        const ts = str(json['ts']);
        if (ts) return { kind: 'sent', platformMessageId: `${str(json['channel']) ?? out.externalUserId}:${ts}` };
      }
      // Slack answers most failures 200 with ok:false; only `ratelimited` and its own faults pass
      const error = str(json['error']);
      const retryable = answer.status < 200 || answer.status >= 300 ? retryableStatus(answer.status) : error === 'ratelimited' || error === 'internal_error' || error === 'service_unavailable';
      return {
        kind: 'failed', error: describeFailure(answer.status, answer.json), retryable,
        ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}),
      };
    },
  };
}

/** Slack's control characters in text, escaped as its formatting rules ask. */
function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function toMessage(e: Json): InboundMessage | undefined {
  if (e['type'] !== 'message') return undefined;
  // the app's own posts (chat.postMessage) come back as events: answering them would loop
  if (e['bot_id'] !== undefined || e['subtype'] === 'bot_message') return undefined;
  // edits, deletions, joins and the like carry a subtype; a message with files is `file_share`
  if (e['subtype'] !== undefined && e['subtype'] !== 'file_share') return undefined;
  const channel = str(e['channel']);
  const ts = str(e['ts']);
  const user = str(e['user']);
  if (!channel || !ts || !user) return undefined;
  const attachments: Attachment[] = [];
  for (const f of Array.isArray(e['files']) ? e['files'] : []) {
    const id = isObject(f) ? str(f['id']) : undefined;
    if (!id || !isObject(f)) continue;
    const mime = str(f['mimetype']);
    const type: Attachment['type'] = mime?.startsWith('image/') ? 'image' : mime?.startsWith('video/') ? 'video' : mime?.startsWith('audio/') ? 'audio' : 'file';
    const a: Attachment = { id, type, url: `slack-file:${id}` };
    if (mime) a.mimeType = mime;
    const name = str(f['name']);
    if (name) a.fileName = name;
    if (typeof f['size'] === 'number') a.fileSize = f['size'];
    attachments.push(a);
  }
  const type = attachments.length === 1 ? attachments[0]!.type : attachments.length > 1 ? 'file' : 'text';
  const metadata: Json = { platform: 'slack', platformType: str(e['subtype']) ?? 'message', slackUser: user };
  if (str(e['thread_ts'])) metadata['threadTs'] = e['thread_ts'];
  return {
    kind: 'message', platformMessageId: `${channel}:${ts}`, externalUserId: channel, externalUserName: user,
    type, content: str(e['text']) ?? '', attachments, metadata,
  };
}
