import type Database from 'better-sqlite3';

const MESSAGE_COLUMNS = `CAST(message_id AS TEXT) AS id, room_id, author_id, CAST(thread_id AS TEXT) AS thread_id,
  body, content, edited_at, deleted_at, pinned`;

/** The (content_at, content_id) of the incoming row beats the stored one. */
const CONTENT_WINS = `(content_at IS NULL OR excluded.content_at > content_at
  OR (excluded.content_at = content_at AND excluded.content_id > content_id))`;

const UPSERT_RETURNING = 'created, deleted_at IS NULL AS live, content';

const ROLE_ORDER = `CASE role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 WHEN 'moderator' THEN 2 ELSE 3 END`;

/** The archive filter of listRooms: off while @archiveUser is null, else the user's archive state must equal @archived. */
const ARCHIVED = (rooms: string) =>
  `AND (@archiveUser IS NULL OR EXISTS (SELECT 1 FROM archives a WHERE a.room_id = ${rooms}.room_id AND a.user_id = @archiveUser) = @archived)`;

export type SqliteStatements = ReturnType<typeof prepareStatements>;

/**
 * Every statement, prepared once. CROSS JOIN and INDEXED BY pin plans that the planner of a young
 * database (no statistics) would not pick: start from the user's memberships rather than from all
 * of a tenant's rooms, and read one thread through its index rather than the room's whole timeline.
 */
export function prepareStatements(db: Database.Database) {
  return {
    ping: db.prepare('SELECT 1'),

    // rooms
    // no conflict target: a taken room id and a taken (tenant, match_id) both insert nothing
    insertRoom: db.prepare(`INSERT INTO rooms (room_id, tenant, name, description, type, avatar, banner, created_by,
        created_at, updated_at, member_count, max_members, last_activity, last_activity_ms, settings, is_active, tags, match_id)
      VALUES (@roomId, @tenant, @name, @description, @type, @avatar, @banner, @createdBy, @createdAt, @updatedAt, 0,
        @maxMembers, @lastActivity, @lastActivityMs, @settings, @isActive, @tags, @matchId)
      ON CONFLICT DO NOTHING`),
    matchRoom: db.prepare('SELECT * FROM rooms WHERE tenant = ? AND match_id = ?'),
    getRoom: db.prepare('SELECT * FROM rooms WHERE room_id = ?'),
    roomExists: db.prepare('SELECT 1 FROM rooms WHERE room_id = ?'),
    updateRoom: db.prepare(`UPDATE rooms SET name = @name, description = @description, avatar = @avatar, banner = @banner,
      settings = @settings, tags = @tags, max_members = @maxMembers, updated_at = @updatedAt WHERE room_id = @roomId`),
    touchRoom: db.prepare(`UPDATE rooms SET last_activity = @iso, last_activity_ms = @ms
      WHERE room_id = @roomId AND last_activity_ms < @ms`),
    listRooms: db.prepare(`SELECT * FROM rooms WHERE tenant = @tenant
      AND (@type IS NULL OR type = @type) AND (@discoverable = 0 OR type IN ('public', 'announcement'))
      ${ARCHIVED('rooms')}
      ORDER BY last_activity_ms DESC, room_id LIMIT @limit OFFSET @offset`),
    countRooms: db.prepare(`SELECT count(*) AS n FROM rooms WHERE tenant = @tenant
      AND (@type IS NULL OR type = @type) AND (@discoverable = 0 OR type IN ('public', 'announcement'))
      ${ARCHIVED('rooms')}`),
    listRoomsOf: db.prepare(`SELECT r.* FROM members m CROSS JOIN rooms r ON r.room_id = m.room_id
      WHERE m.user_id = @memberOf AND m.is_banned = 0 AND r.tenant = @tenant
      AND (@type IS NULL OR r.type = @type) AND (@discoverable = 0 OR r.type IN ('public', 'announcement'))
      ${ARCHIVED('r')}
      ORDER BY r.last_activity_ms DESC, r.room_id LIMIT @limit OFFSET @offset`),
    countRoomsOf: db.prepare(`SELECT count(*) AS n FROM members m CROSS JOIN rooms r ON r.room_id = m.room_id
      WHERE m.user_id = @memberOf AND m.is_banned = 0 AND r.tenant = @tenant
      AND (@type IS NULL OR r.type = @type) AND (@discoverable = 0 OR r.type IN ('public', 'announcement'))
      ${ARCHIVED('r')}`),
    findDirectRoom: db.prepare(`SELECT r.* FROM members a CROSS JOIN rooms r ON r.room_id = a.room_id
      WHERE a.user_id = @userA AND r.tenant = @tenant AND r.type = 'direct'
      AND EXISTS (SELECT 1 FROM members b WHERE b.room_id = r.room_id AND b.user_id = @userB)
      ORDER BY r.room_id LIMIT 1`),

    // members
    upsertMember: db.prepare(`INSERT INTO members (room_id, user_id, display_name, avatar, role, joined_at, is_muted, is_banned)
      VALUES (@roomId, @userId, @displayName, @avatar, @role, @joinedAt, @isMuted, @isBanned)
      ON CONFLICT (room_id, user_id) DO UPDATE SET display_name = excluded.display_name, avatar = excluded.avatar,
        role = excluded.role, joined_at = excluded.joined_at, is_muted = excluded.is_muted, is_banned = excluded.is_banned`),
    memberBanned: db.prepare('SELECT is_banned FROM members WHERE room_id = ? AND user_id = ?'),
    deleteMember: db.prepare('DELETE FROM members WHERE room_id = ? AND user_id = ?'),
    addMemberCount: db.prepare('UPDATE rooms SET member_count = member_count + ? WHERE room_id = ?'),
    recountMembers: db.prepare(`UPDATE rooms SET member_count =
      (SELECT count(*) FROM members WHERE members.room_id = rooms.room_id AND is_banned = 0) WHERE room_id = ?`),
    getMember: db.prepare('SELECT * FROM members WHERE room_id = ? AND user_id = ?'),
    listMembers: db.prepare(`SELECT * FROM members WHERE room_id = ? ORDER BY joined_at, ${ROLE_ORDER}, user_id LIMIT ? OFFSET ?`),
    countMembers: db.prepare('SELECT count(*) AS n FROM members WHERE room_id = ?'),
    roomsOfUser: db.prepare(`SELECT m.room_id FROM members m CROSS JOIN rooms r ON r.room_id = m.room_id
      WHERE m.user_id = ? AND m.is_banned = 0 AND r.tenant = ? ORDER BY m.room_id`),
    putArchive: db.prepare(`INSERT INTO archives (room_id, user_id, archived_at) VALUES (?, ?, ?)
      ON CONFLICT (room_id, user_id) DO UPDATE SET archived_at = excluded.archived_at`),
    deleteArchive: db.prepare('DELETE FROM archives WHERE room_id = ? AND user_id = ?'),
    getArchive: db.prepare('SELECT archived_at FROM archives WHERE room_id = ? AND user_id = ?'),

    // message events: positional parameters, in the order of each comment (binding by position
    // costs less than by name, and these run once per event)
    /** roomId, messageId, authorId, threadId, body, content, at, eventId */
    insertMessage: db.prepare(`INSERT INTO messages (room_id, message_id, created, author_id, thread_id, body, content, content_at, content_id)
      VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (room_id, message_id) DO NOTHING`),
    /** as insertMessage */
    createMessage: db.prepare(`INSERT INTO messages (room_id, message_id, created, author_id, thread_id, body, content, content_at, content_id)
      VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (room_id, message_id) DO UPDATE SET
        created = 1,
        author_id = CASE WHEN created = 1 THEN author_id ELSE excluded.author_id END,
        thread_id = CASE WHEN created = 1 THEN thread_id ELSE excluded.thread_id END,
        body = CASE WHEN created = 1 THEN body ELSE excluded.body END,
        content = CASE WHEN deleted_at IS NOT NULL THEN '' WHEN ${CONTENT_WINS} THEN excluded.content ELSE content END,
        edited_at = CASE WHEN ${CONTENT_WINS} THEN NULL ELSE edited_at END,
        content_at = CASE WHEN ${CONTENT_WINS} THEN excluded.content_at ELSE content_at END,
        content_id = CASE WHEN ${CONTENT_WINS} THEN excluded.content_id ELSE content_id END
      RETURNING ${UPSERT_RETURNING}`),
    /** roomId, messageId, content, at, eventId, at */
    editMessage: db.prepare(`INSERT INTO messages (room_id, message_id, content, content_at, content_id, edited_at)
      VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (room_id, message_id) DO UPDATE SET
        content = CASE WHEN deleted_at IS NOT NULL THEN '' WHEN ${CONTENT_WINS} THEN excluded.content ELSE content END,
        edited_at = CASE WHEN ${CONTENT_WINS} THEN excluded.edited_at ELSE edited_at END,
        content_at = CASE WHEN ${CONTENT_WINS} THEN excluded.content_at ELSE content_at END,
        content_id = CASE WHEN ${CONTENT_WINS} THEN excluded.content_id ELSE content_id END
      RETURNING ${UPSERT_RETURNING}`),
    // Deleted stays deleted whatever comes later; deleted_at itself is LWW like every other field.
    /** roomId, messageId, at */
    deleteMessage: db.prepare(`INSERT INTO messages (room_id, message_id, content, deleted_at) VALUES (?, ?, '', ?)
      ON CONFLICT (room_id, message_id) DO UPDATE SET content = '',
        deleted_at = CASE WHEN deleted_at IS NULL OR excluded.deleted_at > deleted_at THEN excluded.deleted_at ELSE deleted_at END
      RETURNING created`),
    ftsInsert: db.prepare('INSERT INTO message_fts (rowid, content) VALUES (?, ?)'),
    ftsReplace: db.prepare('INSERT OR REPLACE INTO message_fts (rowid, content) VALUES (?, ?)'),
    ftsDelete: db.prepare('DELETE FROM message_fts WHERE rowid = ?'),
    // Pins and reactions: LWW by time; on equal times the removal wins.
    /** roomId, messageId, at (also unpinMessage) */
    pinMessage: db.prepare(`INSERT INTO messages (room_id, message_id, pinned, pinned_at) VALUES (?, ?, 1, ?)
      ON CONFLICT (room_id, message_id) DO UPDATE SET pinned = 1, pinned_at = excluded.pinned_at
      WHERE pinned_at IS NULL OR excluded.pinned_at > pinned_at`),
    unpinMessage: db.prepare(`INSERT INTO messages (room_id, message_id, pinned, pinned_at) VALUES (?, ?, 0, ?)
      ON CONFLICT (room_id, message_id) DO UPDATE SET pinned = 0, pinned_at = excluded.pinned_at
      WHERE pinned_at IS NULL OR excluded.pinned_at >= pinned_at`),
    /** roomId, messageId, emoji, userId, at (also removeReaction) */
    addReaction: db.prepare(`INSERT INTO reactions (room_id, message_id, emoji, user_id, present, at)
      VALUES (?, ?, ?, ?, 1, ?)
      ON CONFLICT (room_id, message_id, emoji, user_id) DO UPDATE SET present = 1, at = excluded.at WHERE excluded.at > at`),
    removeReaction: db.prepare(`INSERT INTO reactions (room_id, message_id, emoji, user_id, present, at)
      VALUES (?, ?, ?, ?, 0, ?)
      ON CONFLICT (room_id, message_id, emoji, user_id) DO UPDATE SET present = 0, at = excluded.at WHERE excluded.at >= at`),
    /** roomId, userId, messageId, at */
    markRead: db.prepare(`INSERT INTO read_marks (room_id, user_id, message_id, at) VALUES (?, ?, ?, ?)
      ON CONFLICT (room_id, user_id, message_id) DO UPDATE SET at = excluded.at WHERE excluded.at < at`),
    // A message is delivered (or read up to an id) when that first happened: the earliest time stays.
    /** roomId, messageId, userId, at */
    markDelivered: db.prepare(`INSERT INTO deliveries (room_id, message_id, user_id, at) VALUES (?, ?, ?, ?)
      ON CONFLICT (room_id, message_id, user_id) DO UPDATE SET at = excluded.at WHERE excluded.at < at`),

    // message reads
    getMessage: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND message_id = ? AND created = 1`),
    reactionsOf: db.prepare(`SELECT CAST(message_id AS TEXT) AS id, emoji, user_id FROM reactions
      WHERE room_id = ? AND message_id IN (SELECT value FROM json_each(?)) AND present = 1
      ORDER BY message_id, at, user_id, emoji`),
    historyDesc: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages
      WHERE room_id = @roomId AND message_id < @before AND message_id > @after AND created = 1 AND thread_id IS NULL
      ORDER BY message_id DESC LIMIT @limit`),
    historyAsc: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages
      WHERE room_id = @roomId AND message_id < @before AND message_id > @after AND created = 1 AND thread_id IS NULL
      ORDER BY message_id ASC LIMIT @limit`),
    threadDesc: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages INDEXED BY messages_by_thread
      WHERE room_id = @roomId AND thread_id = @threadId AND message_id < @before AND message_id > @after AND created = 1
      ORDER BY message_id DESC LIMIT @limit`),
    threadAsc: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages INDEXED BY messages_by_thread
      WHERE room_id = @roomId AND thread_id = @threadId AND message_id < @before AND message_id > @after AND created = 1
      ORDER BY message_id ASC LIMIT @limit`),
    pinned: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages
      WHERE room_id = ? AND pinned = 1 AND created = 1 AND deleted_at IS NULL ORDER BY pinned_at DESC, message_id DESC`),
    search: db.prepare(`SELECT CAST(m.message_id AS TEXT) AS id, m.room_id, m.author_id, CAST(m.thread_id AS TEXT) AS thread_id,
        m.body, m.content, m.edited_at, m.deleted_at, m.pinned
      FROM message_fts f JOIN messages m ON m.message_id = f.rowid
      WHERE message_fts MATCH @match AND m.room_id IN (SELECT value FROM json_each(@rooms))
        AND m.created = 1 AND m.deleted_at IS NULL
      ORDER BY f.rowid DESC LIMIT @limit`),
    readState: db.prepare(`SELECT CAST(message_id AS TEXT) AS id, at FROM read_marks
      WHERE room_id = ? AND user_id = ? ORDER BY message_id DESC LIMIT 1`),
    countUnread: db.prepare(`SELECT count(*) AS n FROM (SELECT 1 FROM messages
      WHERE room_id = @roomId AND message_id > @after AND created = 1 AND thread_id IS NULL AND deleted_at IS NULL
        AND author_id IS NOT @userId LIMIT @cap)`),
    messageStatus: db.prepare(`WITH users (user_id) AS (
        SELECT user_id FROM deliveries WHERE room_id = @roomId AND message_id = @messageId
        UNION SELECT user_id FROM read_marks WHERE room_id = @roomId AND message_id >= @messageId)
      SELECT u.user_id,
        (SELECT at FROM deliveries d WHERE d.room_id = @roomId AND d.message_id = @messageId AND d.user_id = u.user_id) AS delivered_at,
        (SELECT min(at) FROM read_marks r WHERE r.room_id = @roomId AND r.user_id = u.user_id AND r.message_id >= @messageId) AS read_at
      FROM users u
      WHERE u.user_id IS NOT (SELECT author_id FROM messages WHERE room_id = @roomId AND message_id = @messageId AND created = 1)
      ORDER BY u.user_id`),
  };
}
