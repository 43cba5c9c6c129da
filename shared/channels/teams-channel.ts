import { createHash, createHmac } from 'node:crypto';
import { ChatError } from '../protocol/errors.ts';
import type { Attachment } from '../domain/models.ts';
import type { Channel, InboundEvent, InboundMessage, OutboundMessage, SendOutcome, WebhookHeaders } from './channel.ts';
import { describeFailure, postJson, retryableStatus } from './platform-http.ts';
import { sameSecret } from './signatures.ts';
import { teamsTokenVerifier } from './teams-auth.ts';
import { sharedTeamsTokenSource } from './teams-token.ts';

export interface TeamsConfig {
  appId: string;
  appPassword: string;
  /** Bot Framework OpenID metadata (TEAMS_OPENID_METADATA_URL): where the signing keys are found. */
  openIdMetadataUrl: string;
  /** OAuth 2 token endpoint for the bot's own token (TEAMS_TOKEN_URL). */
  tokenUrl: string;
  /** Whether a serviceUrl may be plain http (TEAMS_ALLOW_HTTP_SERVICE_URL: tests' local connector only). */
  allowHttpServiceUrl: boolean;
  httpTimeoutMs: number;
  jwksCooldownMs?: number;
}

export const TEAMS_AUTHORIZATION_HEADER = 'authorization';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** Ids that can name a room as they are (an AAD object id is a GUID). */
const ROOM_SAFE = /^[A-Za-z0-9_-]{1,60}$/;
/** Teams' own description of a file shared in a personal chat: the link is in `content.downloadUrl`. */
const FILE_DOWNLOAD_INFO = 'application/vnd.microsoft.teams.file.download.info';
const MAX_BUTTON_TEXT = 1000;

/**
 * Microsoft Teams through the Azure Bot Service (Bot Framework Bot Connector REST API v3).
 *
 * Inbound: the connector POSTs one Activity per request with `Authorization: Bearer <JWT>`
 * (teams-auth.ts checks it; the body's serviceUrl must be the token's). `message` activities are
 * messages; conversationUpdate, typing, messageReaction, invoke and the rest are skipped.
 *
 * The person is `from.aadObjectId` (their Entra id, stable across the bot's conversations with
 * them), else a digest of `from.id`: Teams' own ids (`29:...`) hold a ':' and are too long for a
 * room id. A reply goes to `{serviceUrl}/v3/conversations/{conversation.id}/activities`, which
 * neither names: the message carries them as its `conversation` (kept on the room by the inbox),
 * sealed with an HMAC under the app password, because room tags can be edited by the tenant's
 * admins and a forged serviceUrl would be handed our bearer token.
 *
 * Outbound: the bot's token by client credentials (teams-token.ts, cached), then the activity;
 * a 401 from the connector drops the token and tries once more with a new one.
 */
export function teamsChannel(cfg: TeamsConfig): Channel {
  const verifyToken = teamsTokenVerifier(cfg);
  const tokens = sharedTeamsTokenSource(cfg);
  const seal = (ref: string): string => createHmac('sha256', `teams conversation ${cfg.appPassword}`).update(ref).digest('base64url');

  function conversationOf(value: string | undefined): { serviceUrl: string; conversationId: string } | undefined {
    const [ref, mac] = (value ?? '').split('.');
    if (!ref || !mac || !sameSecret(mac, seal(ref))) return undefined;
    try {
      const { s, c } = JSON.parse(Buffer.from(ref, 'base64url').toString('utf8')) as { s?: unknown; c?: unknown };
      return typeof s === 'string' && typeof c === 'string' ? { serviceUrl: s, conversationId: c } : undefined;
    } catch {
      return undefined;
    }
  }

  function serviceUrlProblem(serviceUrl: string): string | undefined {
    let url: URL;
    try {
      url = new URL(serviceUrl);
    } catch {
      return 'the serviceUrl is not a URL';
    }
    if (url.protocol === 'https:' || (url.protocol === 'http:' && cfg.allowHttpServiceUrl)) return undefined;
    return `the serviceUrl must be https (${url.protocol})`;
  }

  return {
    platform: 'teams',
    media: { perSend: 10, captionMaxChars: 4000 },

    verify(): void {
      throw new ChatError('unauthorized', 'a Teams activity is verified by verifyAsync');
    },

    async verifyAsync(headers: WebhookHeaders, rawBody: Buffer): Promise<void> {
      let serviceUrl: string | undefined;
      let channelId: string | undefined;
      try {
        const body = JSON.parse(rawBody.toString('utf8')) as unknown;
        serviceUrl = isObject(body) ? str(body['serviceUrl']) : undefined;
        channelId = isObject(body) ? str(body['channelId']) : undefined;
      } catch {
        serviceUrl = undefined;
      }
      // the token is checked first: an unsigned body is refused before we say what is wrong with it
      await verifyToken(headers[TEAMS_AUTHORIZATION_HEADER], serviceUrl ?? '', channelId ?? '');
    },

    parse(rawBody: Buffer): InboundEvent[] {
      let a: unknown;
      try {
        a = JSON.parse(rawBody.toString('utf8'));
      } catch (err) {
        throw new ChatError('bad_request', 'the activity is not JSON', { cause: err });
      }
      if (!isObject(a) || !str(a['type'])) throw new ChatError('bad_request', 'expected a Bot Framework activity (type)');
      if (a['type'] !== 'message') return [];
      const m = toMessage(a, (ref) => `${ref}.${seal(ref)}`);
      return m ? [m] : [];
    },

    async send(out: OutboundMessage): Promise<SendOutcome> {
      const to = conversationOf(out.conversation);
      if (to === undefined) return { kind: 'failed', error: 'no conversation to answer: the room has no valid Teams conversation reference (a message from the person sets it)', retryable: false };
      const problem = serviceUrlProblem(to.serviceUrl);
      if (problem) return { kind: 'failed', error: problem, retryable: false };
      const url = `${to.serviceUrl.replace(/\/+$/, '')}/v3/conversations/${encodeURIComponent(to.conversationId)}/activities`;
      const activity = {
        type: 'message', text: out.content, textFormat: 'plain',
        ...(out.media?.length ? { attachments: out.media.map((m) => ({ contentType: m.mimeType ?? fallbackType(m.type), contentUrl: m.url, ...(m.fileName ? { name: m.fileName } : {}) })) } : {}),
      };
      for (let attempt = 1; ; attempt++) {
        const token = await tokens.get();
        if (token.kind === 'failed') return token;
        const answer = await postJson(url, { authorization: `Bearer ${token.token}` }, activity, cfg.httpTimeoutMs);
        if ('kind' in answer) return answer;
        if (answer.status === 401 && attempt === 1) {
          tokens.drop();
          continue;
        }
        if (answer.status >= 200 && answer.status < 300) {
          const id = isObject(answer.json) ? str(answer.json['id']) : undefined;
          // the connector answers 201 {id}; some channels answer with no id: the send still happened
          return { kind: 'sent', platformMessageId: id ?? `teams:${out.messageId}` };
        }
        return {
          kind: 'failed', error: describeFailure(answer.status, answer.json), retryable: retryableStatus(answer.status),
          ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}),
        };
      }
    },
  };
}

function fallbackType(type: Attachment['type']): string {
  return type === 'file' ? 'application/octet-stream' : `${type}/*`;
}

/** The room id part for a Teams person. */
export function teamsPersonId(from: Json): string | undefined {
  const aad = str(from['aadObjectId']);
  if (aad && ROOM_SAFE.test(aad)) return aad;
  const id = str(from['id']);
  if (!id) return undefined;
  return ROOM_SAFE.test(id) ? id : `h_${createHash('sha256').update(id).digest('base64url').slice(0, 40)}`;
}

function toMessage(a: Json, sealed: (ref: string) => string): InboundMessage | undefined {
  const id = str(a['id']);
  const from = isObject(a['from']) ? a['from'] : undefined;
  const conversationId = isObject(a['conversation']) ? str(a['conversation']['id']) : undefined;
  const serviceUrl = str(a['serviceUrl']);
  const person = from && teamsPersonId(from);
  if (!id || !from || !person || !conversationId || !serviceUrl) return undefined;
  const metadata: Json = { platform: 'teams', platformType: 'text', teamsUserId: str(from['id']), conversationId };
  const conversationType = isObject(a['conversation']) ? str(a['conversation']['conversationType']) : undefined;
  if (conversationType) metadata['conversationType'] = conversationType;
  const text = stripBotMention(str(a['text']) ?? '', a);
  let content = text;
  if (isObject(a['value'])) {
    // an Adaptive Card Action.Submit (or a messageBack button): its data is the answer
    const value = a['value'];
    metadata['button'] = { kind: 'card_submit', payload: value, title: text };
    metadata['platformType'] = 'card_submit';
    if (!content) content = JSON.stringify(value).slice(0, MAX_BUTTON_TEXT);
  }
  const attachments: Attachment[] = [];
  for (const [i, att] of list(a['attachments']).entries()) {
    if (!isObject(att)) continue;
    const file = toAttachment(att, `${id}:${i}`);
    if (file) attachments.push(file);
  }
  const first = attachments[0];
  if (first) metadata['platformType'] = first.type;
  if (!content && attachments.length === 0) return undefined;
  const ref = Buffer.from(JSON.stringify({ s: serviceUrl, c: conversationId })).toString('base64url');
  return {
    kind: 'message', platformMessageId: id, externalUserId: person, externalUserName: str(from['name']),
    type: first?.type ?? 'text', content, attachments, metadata, conversation: sealed(ref),
  };
}

/** A file the person sent, by Teams' link to it (the bytes stay on Teams / SharePoint). */
function toAttachment(att: Json, id: string): Attachment | undefined {
  const contentType = str(att['contentType']) ?? '';
  const name = str(att['name']);
  if (contentType === FILE_DOWNLOAD_INFO) {
    const content = isObject(att['content']) ? att['content'] : {};
    const url = str(content['downloadUrl']);
    return url ? { id, type: 'file', url, ...(name ? { fileName: name } : {}) } : undefined;
  }
  const url = str(att['contentUrl']);
  // text/html is Teams' copy of the message text; cards carry no file
  if (!url || contentType === 'text/html' || contentType.startsWith('application/vnd.microsoft.')) return undefined;
  const kind = contentType.split('/')[0];
  const type: Attachment['type'] = kind === 'image' || kind === 'video' || kind === 'audio' ? kind : 'file';
  return { id, type, url, ...(contentType && !contentType.endsWith('/*') ? { mimeType: contentType } : {}), ...(name ? { fileName: name } : {}) };
}

/** The text without the `<at>Bot</at>` Teams puts in front when the person mentions the bot (always, in a channel). */
function stripBotMention(text: string, a: Json): string {
  const botId = isObject(a['recipient']) ? str(a['recipient']['id']) : undefined;
  let out = text;
  for (const e of list(a['entities'])) {
    if (!isObject(e) || e['type'] !== 'mention' || !isObject(e['mentioned'])) continue;
    const mentionText = str(e['text']);
    if (mentionText && botId !== undefined && e['mentioned']['id'] === botId) out = out.split(mentionText).join('');
  }
  return out.trim();
}
