import {
  ChatClient, ChatClientError, type ConnectionState, type FrameOf, type MemberWithPresence, type Message, type PresenceStatus,
  type RoomListItem, type TransportKind,
} from '../../../shared/client/index.ts';
import type { Session } from './session.ts';

export type Attachment = Message['attachments'][number];

export interface Timeline {
  /** Oldest first. */
  messages: Message[];
  hasMore: boolean;
  loading: boolean;
  loaded: boolean;
}

export interface TypingUser {
  name: string;
  until: number;
}

/** Delivery state of a message in a direct room, by recipient. */
export interface Receipt {
  delivered: Set<string>;
  read: Set<string>;
}

/** An assistant's answer being written in a room (ai_response frames), until it is stored or fails. */
export interface AiDraft {
  requestId: string;
  text: string;
  error: string | undefined;
}

/** The "Ask AI" panel: a private question and its answer as it streams. */
export interface AskState {
  question: string;
  answer: string;
  busy: boolean;
  error: string | undefined;
}

/** A failed room answer stays on screen this long. */
const AI_ERROR_SHOW_MS = 8000;

/** Typing shows until the server says it stopped, or at the latest this long after the last start. */
const TYPING_SHOW_MS = 6000;
const PAGE = 40;

/**
 * The page's state outside the components: rooms, timelines, typing, presence, receipts, fed by
 * the SDK's events. Components subscribe and re-render on any change (the state is small).
 */
export class ChatModel {
  readonly client: ChatClient;
  rooms: RoomListItem[] = [];
  discover: RoomListItem[] = [];
  current: string | undefined;
  readonly timelines = new Map<string, Timeline>();
  readonly typing = new Map<string, Map<string, TypingUser>>();
  readonly presence = new Map<string, PresenceStatus>();
  readonly members = new Map<string, MemberWithPresence[]>();
  readonly receipts = new Map<string, Receipt>();
  /** Per room: how far each member has read. */
  readonly readUpTo = new Map<string, Map<string, string>>();
  /** Per room: the assistant's answers being streamed, by request id. */
  readonly aiDrafts = new Map<string, Map<string, AiDraft>>();
  ask: AskState | undefined;
  state: ConnectionState = 'idle';
  transport: TransportKind = 'websocket';
  notice: string | undefined;
  private readonly listeners = new Set<() => void>();
  private typingTimer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly session: Session) {
    this.client = new ChatClient({ url: location.origin, token: session.token, device: 'web' });
    const c = this.client;
    c.on('state', (s) => { this.state = s; this.transport = c.transportKind; this.changed(); });
    c.on('connected', ({ reconnected }) => {
      this.transport = c.transportKind;
      void this.refreshRooms();
      if (reconnected && this.current) void this.loadMembers(this.current);
    });
    c.on('message', (f) => this.onMessage(f));
    c.on('message_updated', (f) => this.patch(f.roomId, f.messageId, { content: f.content, isEdited: true, editedAt: f.editedAt }));
    c.on('message_deleted', (f) => this.patch(f.roomId, f.messageId, { content: '', isDeleted: true, deletedAt: f.deletedAt }));
    c.on('reaction', (f) => this.onReaction(f));
    c.on('pin', (f) => this.patch(f.roomId, f.messageId, { isPinned: f.pinned }));
    c.on('typing', (f) => this.onTyping(f));
    c.on('presence', (f) => { this.presence.set(f.userId, f.status); this.changed(); });
    c.on('read_receipt', (f) => this.onRead(f.roomId, f.userId, f.messageId));
    c.on('message_status', (f) => this.onStatus(f));
    c.on('ai_response', (f) => this.onAiResponse(f));
    c.on('user_joined', (f) => { void this.refreshRooms(); if (f.roomId === this.current) void this.loadMembers(f.roomId); });
    c.on('user_left', (f) => {
      if (f.user.userId === this.session.userId && f.roomId === this.current) this.current = undefined;
      void this.refreshRooms();
      if (f.roomId === this.current) void this.loadMembers(f.roomId);
    });
    c.on('room_updated', () => void this.refreshRooms());
    c.on('resync', ({ roomId }) => { this.timelines.delete(roomId); if (roomId === this.current) void this.loadOlder(roomId); });
    c.on('error', (err) => this.flash(describe(err)));
    this.typingTimer = setInterval(() => this.expireTyping(), 1000);
    // Rooms others create appear under Discover when the reader comes back to the page.
    window.addEventListener('focus', this.onFocus);
  }

  private readonly onFocus = () => {
    void this.refreshRooms();
    if (this.current) this.markRead(this.current);
  };

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async start(): Promise<void> {
    await this.client.connect();
    await this.refreshRooms();
  }

  stop(): void {
    clearInterval(this.typingTimer);
    window.removeEventListener('focus', this.onFocus);
    this.client.close();
  }

  room(roomId: string | undefined): RoomListItem | undefined {
    return roomId === undefined ? undefined : this.rooms.find((r) => r.roomId === roomId);
  }

  async refreshRooms(): Promise<void> {
    try {
      const [joined, discover] = await Promise.all([
        this.client.rest.listRooms({ scope: 'joined', limit: 100 }),
        this.client.rest.listRooms({ scope: 'discover', limit: 100 }),
      ]);
      const open = this.current;
      this.rooms = joined.rooms.map((r) => (r.roomId === open ? { ...r, unreadCount: 0 } : r));
      this.discover = discover.rooms.filter((r) => !r.isJoined);
      this.changed();
    } catch (err) {
      this.flash(describe(err));
    }
  }

  async open(roomId: string): Promise<void> {
    this.current = roomId;
    this.setUnread(roomId, 0);
    this.changed();
    const t = this.timelines.get(roomId);
    if (!t?.loaded) await this.loadOlder(roomId);
    void this.loadMembers(roomId);
    this.markRead(roomId);
    const room = this.room(roomId);
    if (room?.type === 'direct') void this.loadReceipt(roomId);
  }

  /** The previous page of history (infinite scroll upwards). */
  async loadOlder(roomId: string): Promise<void> {
    const t = this.timeline(roomId);
    if (t.loading || (t.loaded && !t.hasMore)) return;
    t.loading = true;
    this.changed();
    try {
      // The first page is the newest; later ones go back from the oldest message shown.
      const before = t.loaded ? t.messages[0]?.messageId : undefined;
      const page = await this.client.history(roomId, { limit: PAGE, ...(before ? { before } : {}) });
      const known = new Set(t.messages.map((m) => m.messageId));
      const older = page.messages.filter((m) => !known.has(m.messageId));
      t.messages = [...older, ...t.messages].sort((a, b) => compare(a.messageId, b.messageId));
      t.hasMore = page.pagination.hasMore;
      t.loaded = true;
    } catch (err) {
      this.flash(describe(err));
    } finally {
      t.loading = false;
      this.changed();
    }
  }

  async loadMembers(roomId: string): Promise<void> {
    try {
      const { members } = await this.client.rest.members(roomId, { limit: 100 });
      this.members.set(roomId, members);
      for (const m of members) if (!this.presence.has(m.userId) || !m.isOnline) this.presence.set(m.userId, m.isOnline ? 'online' : 'offline');
      this.changed();
    } catch (err) {
      this.flash(describe(err));
    }
  }

  async send(roomId: string, content: string, replyTo: string | undefined, attachments: Attachment[] = []): Promise<void> {
    this.client.typing(roomId, false);
    await this.run(this.client.send(roomId, content, {
      ...(replyTo ? { replyTo } : {}),
      ...(attachments.length ? { attachments, messageType: attachments.every((a) => a.type === 'image') ? 'image' : 'file' } : {}),
    }));
  }

  /**
   * Uploads a file to the room (its bytes as the body, streamed by the browser) and resolves with
   * the attachment to send; undefined when the server refused it (the reason is flashed).
   */
  async upload(roomId: string, file: File): Promise<Attachment | undefined> {
    try {
      const res = await fetch(`/v1/chat/rooms/${encodeURIComponent(roomId)}/attachments?fileName=${encodeURIComponent(file.name)}`, {
        method: 'POST', headers: { authorization: `Bearer ${this.session.token}`, 'content-type': 'application/octet-stream' }, body: file,
      });
      const body = (await res.json()) as { success: boolean; data?: Attachment; error?: { code: string; message: string } };
      if (!body.success || !body.data) throw new ChatClientError(body.error?.code ?? 'internal', body.error?.message ?? `HTTP ${res.status}`);
      return body.data;
    } catch (err) {
      this.flash(`${file.name}: ${describe(err)}`);
      return undefined;
    }
  }

  /**
   * Where the page may load an attachment from: this server's own files, with the token in the
   * query (an <img> or a link cannot send a header); undefined for anything else, so a message
   * can never make the page load another site or a javascript: URL.
   */
  fileUrl(url: string | undefined): string | undefined {
    if (!url || !/^\/v1\/chat\/rooms\/[A-Za-z0-9_-]+\/attachments\/[0-9a-f-]+(\/thumbnail)?$/.test(url)) return undefined;
    return `${url}?token=${encodeURIComponent(this.session.token)}`;
  }

  edit(roomId: string, messageId: string, content: string): Promise<void> {
    return this.run(this.client.edit(roomId, messageId, content));
  }

  remove(roomId: string, messageId: string): Promise<void> {
    return this.run(this.client.deleteMessage(roomId, messageId));
  }

  toggleReaction(m: Message, emoji: string): Promise<void> {
    const mine = m.reactions[emoji]?.includes(this.session.userId) ?? false;
    return this.run(this.client.react(m.roomId, m.messageId, emoji, mine ? 'remove' : 'add'));
  }

  async join(roomId: string): Promise<void> {
    await this.run(this.client.join(roomId));
    await this.refreshRooms();
    await this.open(roomId);
  }

  async leave(roomId: string): Promise<void> {
    await this.run(this.client.leave(roomId));
    if (this.current === roomId) this.current = undefined;
    await this.refreshRooms();
  }

  async create(name: string, type: RoomListItem['type'], members: string[]): Promise<void> {
    try {
      const room = await this.client.rest.createRoom({ name, type, ...(members.length ? { members } : {}) });
      await this.refreshRooms();
      await this.open(room.roomId);
    } catch (err) {
      this.flash(describe(err));
    }
  }

  /** "Ask AI": the answer streams into `ask`; in a room, the room's messages are its context. */
  async askAi(question: string, roomId: string | undefined): Promise<void> {
    const ask: AskState = { question, answer: '', busy: true, error: undefined };
    this.ask = ask;
    this.changed();
    try {
      const done = await this.client.ai.ask(question, {
        ...(roomId ? { roomId } : {}),
        onDelta: (text) => { ask.answer += text; this.changed(); },
      });
      ask.answer = done.response;
    } catch (err) {
      ask.error = describe(err);
    } finally {
      ask.busy = false;
      this.changed();
    }
  }

  closeAsk(): void {
    this.ask = undefined;
    this.changed();
  }

  draftsIn(roomId: string): AiDraft[] {
    return [...(this.aiDrafts.get(roomId)?.values() ?? [])];
  }

  markRead(roomId: string): void {
    const last = this.timelines.get(roomId)?.messages.at(-1);
    if (!last || document.visibilityState === 'hidden') return;
    if (this.readUpTo.get(roomId)?.get(this.session.userId) === last.messageId) return;
    this.onRead(roomId, this.session.userId, last.messageId);
    this.client.markRead(roomId, last.messageId).catch((err: unknown) => this.flash(describe(err)));
  }

  /** The latest of my messages in a direct room, and whether the other person got / read it. */
  receiptFor(roomId: string): { messageId: string; label: 'Sent' | 'Delivered' | 'Read' } | undefined {
    const mine = [...(this.timelines.get(roomId)?.messages ?? [])].reverse().find((m) => m.authorId === this.session.userId && !m.isDeleted);
    if (!mine) return undefined;
    const others = [...(this.readUpTo.get(roomId) ?? [])].filter(([u]) => u !== this.session.userId);
    const r = this.receipts.get(mine.messageId);
    if (others.some(([, id]) => compare(id, mine.messageId) >= 0) || (r?.read.size ?? 0) > 0) return { messageId: mine.messageId, label: 'Read' };
    if ((r?.delivered.size ?? 0) > 0) return { messageId: mine.messageId, label: 'Delivered' };
    return { messageId: mine.messageId, label: 'Sent' };
  }

  typingIn(roomId: string): string[] {
    const now = Date.now();
    return [...(this.typing.get(roomId)?.entries() ?? [])].filter(([u, t]) => u !== this.session.userId && t.until > now).map(([, t]) => t.name);
  }

  flash(text: string): void {
    this.notice = text;
    this.changed();
    setTimeout(() => { if (this.notice === text) { this.notice = undefined; this.changed(); } }, 5000);
  }

  private async loadReceipt(roomId: string): Promise<void> {
    const mine = this.receiptFor(roomId);
    if (!mine) return;
    try {
      const status = await this.client.rest.messageStatus(roomId, mine.messageId);
      const r = this.receipt(mine.messageId);
      for (const s of status.statuses) {
        if (s.userId === this.session.userId) continue;
        if (s.status !== 'sent') r.delivered.add(s.userId);
        if (s.status === 'read') r.read.add(s.userId);
      }
      this.changed();
    } catch (err) {
      this.flash(describe(err));
    }
  }

  private onMessage(f: FrameOf<'new_message'>): void {
    // Kept even before the room's first page loads: a message stored after that page was read
    // would otherwise be in neither.
    const t = this.timeline(f.roomId);
    if (!t.messages.some((m) => m.messageId === f.message.messageId)) {
      t.messages = [...t.messages, f.message].sort((a, b) => compare(a.messageId, b.messageId));
    }
    this.typing.get(f.roomId)?.delete(f.message.authorId);
    const requestId = f.message.type === 'ai_response' ? f.message.metadata?.['requestId'] : undefined;
    if (typeof requestId === 'string') this.aiDrafts.get(f.roomId)?.delete(requestId);
    const room = this.room(f.roomId);
    if (room) room.lastActivity = f.message.timestamp;
    if (f.roomId === this.current) this.markRead(f.roomId);
    else if (f.message.authorId !== this.session.userId && room) this.setUnread(f.roomId, room.unreadCount + 1);
    if (!room) void this.refreshRooms();
    this.changed();
  }

  private onAiResponse(f: FrameOf<'ai_response'>): void {
    let room = this.aiDrafts.get(f.roomId);
    if (!room) this.aiDrafts.set(f.roomId, (room = new Map()));
    const draft = room.get(f.requestId) ?? { requestId: f.requestId, text: '', error: undefined };
    room.set(f.requestId, draft);
    if (!f.done) draft.text += f.chunk;
    else if (f.error) {
      draft.error = f.error.message;
      setTimeout(() => { room.delete(f.requestId); this.changed(); }, AI_ERROR_SHOW_MS);
    } else {
      // stored: the answer is (or will be) in the timeline as a message of type ai_response
      room.delete(f.requestId);
    }
    this.changed();
  }

  private onReaction(f: FrameOf<'reaction_updated'>): void {
    const m = this.find(f.roomId, f.messageId);
    if (!m) return;
    const users = new Set(m.reactions[f.emoji] ?? []);
    if (f.action === 'add') users.add(f.userId);
    else users.delete(f.userId);
    const reactions = { ...m.reactions };
    if (users.size) reactions[f.emoji] = [...users];
    else delete reactions[f.emoji];
    this.patch(f.roomId, f.messageId, { reactions });
  }

  private onTyping(f: FrameOf<'typing_indicator'>): void {
    let room = this.typing.get(f.roomId);
    if (!room) this.typing.set(f.roomId, (room = new Map()));
    if (f.isTyping) room.set(f.user.userId, { name: f.user.name, until: Date.now() + TYPING_SHOW_MS });
    else room.delete(f.user.userId);
    this.changed();
  }

  private onRead(roomId: string, userId: string, messageId: string): void {
    let room = this.readUpTo.get(roomId);
    if (!room) this.readUpTo.set(roomId, (room = new Map()));
    const prev = room.get(userId);
    if (prev === undefined || compare(messageId, prev) > 0) room.set(userId, messageId);
    this.changed();
  }

  private onStatus(f: FrameOf<'message_status'>): void {
    if (f.userId === this.session.userId) return; // my own read marks say nothing about the other person
    if (f.status === 'sent' || f.status === 'failed') return; // a channel platform's word, not a reader's
    const r = this.receipt(f.messageId);
    r.delivered.add(f.userId);
    if (f.status === 'read') r.read.add(f.userId);
    this.changed();
  }

  private receipt(messageId: string): Receipt {
    let r = this.receipts.get(messageId);
    if (!r) this.receipts.set(messageId, (r = { delivered: new Set(), read: new Set() }));
    return r;
  }

  private expireTyping(): void {
    const now = Date.now();
    let any = false;
    for (const room of this.typing.values()) {
      for (const [u, t] of room) if (t.until <= now) { room.delete(u); any = true; }
    }
    if (any) this.changed();
  }

  private setUnread(roomId: string, n: number): void {
    this.rooms = this.rooms.map((r) => (r.roomId === roomId ? { ...r, unreadCount: n } : r));
  }

  private timeline(roomId: string): Timeline {
    let t = this.timelines.get(roomId);
    if (!t) this.timelines.set(roomId, (t = { messages: [], hasMore: true, loading: false, loaded: false }));
    return t;
  }

  private find(roomId: string, messageId: string): Message | undefined {
    return this.timelines.get(roomId)?.messages.find((m) => m.messageId === messageId);
  }

  private patch(roomId: string, messageId: string, fields: Partial<Message>): void {
    const t = this.timelines.get(roomId);
    if (!t) return;
    t.messages = t.messages.map((m) => (m.messageId === messageId ? { ...m, ...fields } : m));
    this.changed();
  }

  private async run(work: Promise<unknown>): Promise<void> {
    try {
      await work;
    } catch (err) {
      this.flash(describe(err));
    }
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }
}

/** Message ids are decimal strings of up to 20 digits: compare by length, then text. */
export function compare(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function describe(err: unknown): string {
  if (err instanceof ChatClientError) return err.message;
  return err instanceof Error ? err.message : String(err);
}
