/**
 * A channel user's conversation state (issue 15, seed 003 "Session Management"): which room their
 * messages go to, when the conversation started and was last active, how many messages went each
 * way, and a small context the system and the tenant's agents keep for it. A session lives
 * SESSION_TTL seconds after its last activity; the person's next message after that starts a new
 * one (a new `sessionId`).
 */

/** Who a session belongs to: one external person on one platform, in one tenant. */
export interface SessionKey {
  tenant: string;
  platform: string;
  externalUserId: string;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type SessionContext = Record<string, JsonValue>;

export interface ChannelSession {
  sessionId: string;
  platform: string;
  externalUserId: string;
  roomId: string;
  /** ISO times. `expiresAt` is `lastActivityAt` + the TTL. */
  startedAt: string;
  lastActivityAt: string;
  expiresAt: string;
  /** Messages from the person, and replies sent to them, in this session. */
  inbound: number;
  outbound: number;
  context: SessionContext;
}

/** What an inbound message tells the session. */
export interface InboundTouch {
  roomId: string;
  /** The id the session gets if this message starts one (the caller makes it, so it can log it before the write). */
  newSessionId: string;
  /**
   * The platform's message id. A touch with the id of the last one counted (a webhook the platform
   * delivers again) refreshes the session but is not counted twice.
   */
  platformMessageId: string;
  /** System keys to set in the context (`lastButton`); small and not held to the context limit. */
  context?: SessionContext;
  /** ms since epoch. */
  at: number;
}

/** Context keys only the system sets: PATCH refuses them. */
export const SYSTEM_CONTEXT_KEYS = ['lastInboundMessageId', 'lastButton'] as const;
/** How large a session's context may grow through `mergeContext`, in UTF-8 bytes of its keys and JSON values. */
export const SESSION_CONTEXT_MAX_BYTES = 4096;

/**
 * Where sessions are kept. The contract an adapter keeps:
 * - Sessions of different tenants, platforms or people never meet, whatever characters their ids hold.
 * - `touchInbound` is atomic: of two touches of an expired or absent session at once, one starts it
 *   (`started: true`) and the other joins it. It refreshes the TTL and counts the message, once per
 *   `platformMessageId` in a row. It never refuses for size.
 * - `touchOutbound` counts a reply and refreshes the TTL of a live session; it never starts one
 *   (a session is the person's: an agent's late answer does not revive it) and answers undefined.
 * - `mergeContext` sets each key given, removes those given as null, and leaves the TTL and the
 *   activity alone; it throws ChatError('too_large') and changes nothing when the context would
 *   pass `SESSION_CONTEXT_MAX_BYTES`. undefined when there is no live session.
 * - Reads never refresh anything. A session past its TTL is gone for every call.
 * - A backend failure is thrown as ChatError('unavailable'); nothing is retried or kept aside.
 */
export interface SessionStore {
  readonly kind: 'memory' | 'redis';
  readonly ttlSec: number;
  touchInbound(key: SessionKey, touch: InboundTouch): Promise<{ session: ChannelSession; started: boolean }>;
  touchOutbound(key: SessionKey, at: number): Promise<ChannelSession | undefined>;
  get(key: SessionKey): Promise<ChannelSession | undefined>;
  mergeContext(key: SessionKey, patch: Record<string, JsonValue | null>): Promise<ChannelSession | undefined>;
  close(): Promise<void>;
}

/** The size `mergeContext` holds to `SESSION_CONTEXT_MAX_BYTES`. */
export function contextBytes(entries: Iterable<[string, string]>): number {
  let n = 0;
  for (const [k, json] of entries) n += Buffer.byteLength(k) + Buffer.byteLength(json);
  return n;
}
