import type { DurableEvent } from '../domain/events.ts';
import type { AiContext, Message, Room, RoomMember, RoomType, ReadState, MessageStatus } from '../domain/models.ts';
import type { NotificationPrefs, PushSubscriptionRecord, StoredWebhook, Webhook, WebhookHealth } from '../domain/notifications.ts';
import type { RoomKey } from '../domain/room-key.ts';
import type { TenantApiKey, TenantRecord } from '../domain/tenants.ts';

/**
 * The store: rooms, members and messages.
 *
 * Control plane (rooms, members, settings) is written directly by the api and the gateway and must
 * be read-your-writes: once a write method resolves, every later read from any process sees it.
 *
 * Message plane is written only through `applyEvents`, by the persister. Contract:
 * - Idempotent: applying an event any number of times equals applying it once.
 * - Commutative: events are applied last-writer-wins by their event time `at`, per field, so any
 *   order of application (parallel persisters, redelivery, an edit before its create) ends in the
 *   same state. A delete is a tombstone: once deleted, a message stays deleted.
 * - Atomic per call where the backend allows; when it rejects, the caller retries the whole call.
 *
 * Rooms are addressed by their key (shared/domain/room-key.ts: tenant and id), so two tenants' rooms
 * of the same id are two rooms, and nothing addressed by one key reaches another's rows. Records
 * returned (Room, RoomMember, Message, ReadState) carry the room id clients know (`roomId`), and
 * rooms their `tenant`: `keyOfRoom(room)` is the key again.
 *
 * Reads never return messages of another room. History is ordered by message id; cursors are ids.
 * Failures surface as ChatError('unavailable') when the backend cannot be reached; other driver
 * errors as ChatError('internal') with the driver error as cause.
 */
export interface Store {
  readonly kind: 'sqlite' | 'cassandra';

  // ---- rooms
  /**
   * Creates the room (keyed by its tenant and id) with its initial members (the creator as owner
   * first). Rejects with conflict if the tenant has a room of that id; another tenant's room of the
   * same id is another room. A room's matchId is stored as given; only createMatchRoom keeps one
   * room per match.
   */
  createRoom(room: Room, members: RoomMember[]): Promise<void>;
  getRoom(room: RoomKey): Promise<Room | undefined>;
  /** Replaces the mutable fields (name, description, avatar, banner, settings, tags, maxMembers, updatedAt) of the room keyed by its tenant and id. */
  updateRoom(room: Room): Promise<void>;
  /** Rooms of a tenant, newest activity first. `memberOf` limits to rooms the user belongs to; `discoverable` to public and announcement rooms. */
  listRooms(query: ListRoomsQuery): Promise<{ rooms: Room[]; total: number }>;
  /**
   * The room of a match (seed 004: one conversation per match). Creates `room` (its `matchId` set)
   * with `members` as createRoom does, unless the room's tenant already holds a room for that
   * matchId; resolves with the room that holds the match and whether this call created it. The
   * (tenant, matchId) pair is a unique key of the store, claimed atomically (SQLite: a unique index
   * in the creating transaction; Cassandra: a lightweight transaction), so concurrent calls from
   * any number of processes agree on one room. A call that finds the match claimed resolves once the
   * claimer's room is readable with its members; it rejects with unavailable when that does not
   * happen within a few seconds. Rejects with bad_request without a matchId, and with conflict when
   * the room id is taken by a room that is not this match's.
   */
  createMatchRoom(room: Room, members: RoomMember[]): Promise<{ room: Room; created: boolean }>;
  /** The direct room between two users of a tenant, if one exists. */
  findDirectRoom(tenant: string, userA: string, userB: string): Promise<Room | undefined>;
  /** Records activity time (monotonic: an older time never overwrites a newer one). */
  touchRoom(room: RoomKey, at: string): Promise<void>;

  // ---- members
  /** Inserts or replaces the member and keeps the room's memberCount right (banned members do not count). */
  putMember(room: RoomKey, member: RoomMember): Promise<void>;
  getMember(room: RoomKey, userId: string): Promise<RoomMember | undefined>;
  removeMember(room: RoomKey, userId: string): Promise<void>;
  listMembers(room: RoomKey, page: { limit: number; offset: number }): Promise<{ members: RoomMember[]; total: number }>;
  /** Keys of the tenant's rooms the user is a (non-banned) member of. */
  roomsOfUser(tenant: string, userId: string): Promise<RoomKey[]>;
  /**
   * Records (an ISO time) or clears (undefined) that the user archived the room for themselves: it
   * changes only their own room list (ListRoomsQuery.archive), never another member's. Last call
   * wins. Membership is the caller's to check; removeMember clears the user's archive of the room.
   */
  setArchived(room: RoomKey, userId: string, archivedAt: string | undefined): Promise<void>;
  /** When the user archived the room, or undefined when they did not (or unarchived it). */
  archivedAt(room: RoomKey, userId: string): Promise<string | undefined>;

  // ---- messages (write path: persister only; an event's `roomId` is its room's key)
  applyEvents(events: DurableEvent[]): Promise<void>;

  getMessage(room: RoomKey, messageId: string): Promise<Message | undefined>;
  /**
   * A page of the room's main timeline (thread replies excluded unless `threadId` is given, then
   * only that thread's replies). Newest first. `before`/`after` are exclusive id bounds; with
   * `after` and no `before` the page is the oldest `limit` messages after it (still returned
   * newest first). Deleted messages are included with `isDeleted: true` and empty content.
   */
  history(room: RoomKey, query: HistoryQuery): Promise<Message[]>;
  pinned(room: RoomKey): Promise<Message[]>;
  /**
   * Word search over content in the given rooms (thread replies included), newest first, at most
   * `limit`, deleted messages excluded. A message matches when every word of `text` is a whole word
   * of its content, ignoring case and accents (search-terms.ts defines the words); no prefixes,
   * no operators: any text is only words. Text without a word finds nothing.
   */
  search(query: SearchQuery): Promise<Message[]>;
  getReadState(room: RoomKey, userId: string): Promise<ReadState | undefined>;
  /** Messages in the room's main timeline after `afterId` not written by `userId`, counted up to `cap`. */
  countUnread(room: RoomKey, userId: string, afterId: string | undefined, cap: number): Promise<number>;
  messageStatus(room: RoomKey, messageId: string): Promise<MessageStatus[]>;

  // ---- AI contexts (the assistant's memory of a user's questions asked outside rooms)
  /** The user's context, or undefined when there is none or it expired (`expiresAt` <= `nowMs`). */
  getAiContext(tenant: string, userId: string, nowMs: number): Promise<AiContext | undefined>;
  /** Inserts or replaces the user's context; it is gone once `expiresAt` passed. */
  putAiContext(tenant: string, context: AiContext): Promise<void>;

  // ---- offline notifications (read-your-writes, like the control plane)
  /** The user's notification preferences, or undefined when they never set any. */
  getNotificationPrefs(tenant: string, userId: string): Promise<NotificationPrefs | undefined>;
  /** Replaces the user's preferences. */
  putNotificationPrefs(tenant: string, userId: string, prefs: NotificationPrefs): Promise<void>;
  /**
   * Stores a webhook, healthy (replacing one of the same id and owner, its health too). The owner
   * is `webhookOwner(scope, userId)`: the user's id, or '' for the tenant's webhooks.
   */
  putWebhook(webhook: Webhook): Promise<void>;
  getWebhook(tenant: string, owner: string, webhookId: string): Promise<StoredWebhook | undefined>;
  /** The owner's webhooks, ordered by id. */
  listWebhooks(tenant: string, owner: string): Promise<StoredWebhook[]>;
  deleteWebhook(tenant: string, owner: string, webhookId: string): Promise<void>;
  /** Replaces a webhook's health; a webhook that was deleted stays deleted (no row is made). */
  setWebhookHealth(tenant: string, owner: string, webhookId: string, health: WebhookHealth): Promise<void>;
  /** Stores (or replaces: same endpoint) one of the user's Web Push subscriptions. */
  putPushSubscription(tenant: string, userId: string, sub: PushSubscriptionRecord): Promise<void>;
  /** The user's subscriptions, ordered by endpoint. */
  listPushSubscriptions(tenant: string, userId: string): Promise<PushSubscriptionRecord[]>;
  deletePushSubscription(tenant: string, userId: string, endpoint: string): Promise<void>;
  /**
   * Sent-records: which of `messageIds` the user was already notified of (and not expired). With
   * `markNotified` they make the notifier idempotent: a redelivered event whose notification was
   * sent is not sent again.
   */
  notifiedOf(tenant: string, userId: string, messageIds: string[], nowMs: number): Promise<Set<string>>;
  /** Records that the user was notified of these messages; each record is gone after `expiresAtMs`. */
  markNotified(tenant: string, userId: string, messageIds: string[], expiresAtMs: number): Promise<void>;

  // ---- tenants (read-your-writes, like the control plane)
  /** The tenant's record (quotas, settings, secrets), or undefined when nothing was ever written for it. */
  getTenant(tenant: string): Promise<TenantRecord | undefined>;
  /** Inserts or replaces the tenant's record (last write wins). */
  putTenant(record: TenantRecord): Promise<void>;
  /** Inserts or replaces an API key (revoking one is putting it with `revokedAt`). */
  putApiKey(key: TenantApiKey): Promise<void>;
  getApiKey(tenant: string, keyId: string): Promise<TenantApiKey | undefined>;
  /** The tenant's keys, revoked ones included, ordered by id. */
  listApiKeys(tenant: string): Promise<TenantApiKey[]>;

  /** Resolves when the backend answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface ListRoomsQuery {
  tenant: string;
  type?: RoomType;
  memberOf?: string;
  discoverable?: boolean;
  /** Keeps only the rooms whose archive state for `userId` (setArchived) is `archived`. */
  archive?: { userId: string; archived: boolean };
  limit: number;
  offset: number;
}

export interface HistoryQuery {
  limit: number;
  before?: string;
  after?: string;
  threadId?: string;
}

export interface SearchQuery {
  /** Keys of the rooms to search. */
  roomIds: RoomKey[];
  text: string;
  limit: number;
}
