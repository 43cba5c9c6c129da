import { DEFAULT_ROOM_SETTINGS, type DurableEvent, type Message, type Room, type RoomMember } from '../../shared/domain/index.ts';

/**
 * The rooms and messages the store benchmarks write (history, store): a public room with its owner,
 * and `message.created` events shaped like the ones a gateway publishes.
 */
export function benchRoom(roomId: string, at: number): { room: Room; members: RoomMember[] } {
  const iso = new Date(at).toISOString();
  const room: Room = {
    roomId, tenant: 'default', name: roomId, description: '', type: 'public', createdBy: 'u0', createdAt: iso,
    updatedAt: iso, memberCount: 0, maxMembers: 10_000, lastActivity: iso, settings: { ...DEFAULT_ROOM_SETTINGS }, isActive: true, tags: [],
  };
  return { room, members: [{ roomId, userId: 'u0', displayName: 'u0', role: 'owner', joinedAt: iso, isMuted: false, isBanned: false }] };
}

export function benchMessage(roomId: string, messageId: string, i: number, at: number, content: string): Message {
  return {
    messageId, roomId, authorId: `u${i % 20}`, authorName: `User ${i % 20}`, content, type: 'text',
    timestamp: new Date(at).toISOString(), reactions: {}, replyTo: null, threadId: null, mentions: [], attachments: [],
    isEdited: false, isDeleted: false, isPinned: false, isAnonymous: false,
  };
}

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];

/** Ordinary chat text of a usual length (~90 characters), a few distinct words per message for search. */
export function chatText(i: number): string {
  return `message ${i} ${WORDS[i % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]} and some ordinary chat text of a usual length`;
}

export function messageCreated(roomId: string, id: string, i: number, at: number, content = chatText(i)): DurableEvent {
  return { kind: 'message.created', id, at, roomId, message: benchMessage(roomId, id, i, at, content) };
}

/**
 * What the bare driver loops write for a message besides its ids and content: the JSON body of the
 * fields the stores keep in one column, and the distinct lower-case words the search index holds.
 */
export function storedFields(m: Message): { body: string; terms: string[] } {
  return {
    body: JSON.stringify({ authorName: m.authorName, type: m.type, timestamp: m.timestamp, replyTo: null, mentions: [], attachments: [], isAnonymous: false }),
    terms: [...new Set(m.content.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean))],
  };
}
