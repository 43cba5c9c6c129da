export type CassandraQueries = ReturnType<typeof cassandraQueries>;

const MESSAGE_COLUMNS = 'message_id, created, author_id, thread_id, body, content, edited_at, deleted, deleted_at, pinned';

/**
 * Every CQL statement of the Cassandra store, with the keyspace written in (the client prepares
 * each once, on first use). USING TIMESTAMP is how events of any order end in one state: see the
 * write timestamps in cassandra-write-time.ts.
 */
export function cassandraQueries(ks: string) {
  const t = (name: string) => `${ks}.${name}`;
  return {
    // rooms
    claimRoom: `INSERT INTO ${t('rooms')} (room_id, claimed) VALUES (?, true) IF NOT EXISTS`,
    writeRoom: `UPDATE ${t('rooms')} USING TIMESTAMP ? SET tenant = ?, name = ?, description = ?, type = ?, avatar = ?, banner = ?,
      created_by = ?, created_at = ?, updated_at = ?, max_members = ?, settings = ?, is_active = ?, tags = ?, match_id = ? WHERE room_id = ?`,
    claimMatch: `INSERT INTO ${t('rooms_by_match')} (tenant, match_id, room_id) VALUES (?, ?, ?) IF NOT EXISTS`,
    releaseMatch: `DELETE FROM ${t('rooms_by_match')} WHERE tenant = ? AND match_id = ? IF room_id = ?`,
    updateRoom: `UPDATE ${t('rooms')} USING TIMESTAMP ? SET name = ?, description = ?, avatar = ?, banner = ?, settings = ?,
      tags = ?, max_members = ?, updated_at = ? WHERE room_id = ?`,
    roomActivity: `UPDATE ${t('rooms')} USING TIMESTAMP ? SET last_activity = ? WHERE room_id = ?`,
    memberCount: `UPDATE ${t('rooms')} USING TIMESTAMP ? SET member_count = ? WHERE room_id = ?`,
    getRoom: `SELECT * FROM ${t('rooms')} WHERE room_id = ?`,
    roomKey: `SELECT tenant, type, name FROM ${t('rooms')} WHERE room_id = ?`,
    tenantRoom: `INSERT INTO ${t('rooms_by_tenant')} (tenant, room_id, type) VALUES (?, ?, ?) USING TIMESTAMP ?`,
    tenantActivity: `UPDATE ${t('rooms_by_tenant')} USING TIMESTAMP ? SET last_activity = ? WHERE tenant = ? AND room_id = ?`,
    tenantRooms: `SELECT room_id, type, last_activity FROM ${t('rooms_by_tenant')} WHERE tenant = ?`,
    tenantRoomsIn: `SELECT room_id, type, last_activity FROM ${t('rooms_by_tenant')} WHERE tenant = ? AND room_id IN ?`,
    // members
    putMember: `INSERT INTO ${t('room_members')} (room_id, user_id, display_name, avatar, role, joined_at, is_muted, is_banned)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    putUserRoom: `INSERT INTO ${t('rooms_by_user')} (user_id, room_id, tenant, room_type, is_banned) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    deleteMember: `DELETE FROM ${t('room_members')} USING TIMESTAMP ? WHERE room_id = ? AND user_id = ?`,
    deleteUserRoom: `DELETE FROM ${t('rooms_by_user')} USING TIMESTAMP ? WHERE user_id = ? AND room_id = ?`,
    getMember: `SELECT * FROM ${t('room_members')} WHERE room_id = ? AND user_id = ?`,
    members: `SELECT * FROM ${t('room_members')} WHERE room_id = ?`,
    memberBans: `SELECT is_banned FROM ${t('room_members')} WHERE room_id = ?`,
    userRooms: `SELECT room_id, tenant, room_type, is_banned FROM ${t('rooms_by_user')} WHERE user_id = ?`,
    putArchive: `INSERT INTO ${t('archived_rooms')} (user_id, room_id, archived_at) VALUES (?, ?, ?) USING TIMESTAMP ?`,
    deleteArchive: `DELETE FROM ${t('archived_rooms')} USING TIMESTAMP ? WHERE user_id = ? AND room_id = ?`,
    getArchive: `SELECT archived_at FROM ${t('archived_rooms')} WHERE user_id = ? AND room_id = ?`,
    userArchives: `SELECT room_id FROM ${t('archived_rooms')} WHERE user_id = ?`,
    // message writes
    createMessage: `INSERT INTO ${t('messages')} (room_id, bucket, message_id, created, author_id, thread_id, body, content, content_terms, edited_at)
      VALUES (?, ?, ?, true, ?, ?, ?, ?, ?, 0) USING TIMESTAMP ?`,
    editMessage: `UPDATE ${t('messages')} USING TIMESTAMP ? SET content = ?, content_terms = ?, edited_at = ?
      WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    eraseMessage: `UPDATE ${t('messages')} USING TIMESTAMP ? SET deleted = true, content = '', content_terms = null
      WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    deletedAt: `UPDATE ${t('messages')} USING TIMESTAMP ? SET deleted_at = ? WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    pinMessage: `UPDATE ${t('messages')} USING TIMESTAMP ? SET pinned = true WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    unpinMessage: `DELETE pinned FROM ${t('messages')} USING TIMESTAMP ? WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    addPin: `INSERT INTO ${t('pins')} (room_id, message_id, pinned_at) VALUES (?, ?, ?) USING TIMESTAMP ?`,
    removePin: `DELETE FROM ${t('pins')} USING TIMESTAMP ? WHERE room_id = ? AND message_id = ?`,
    addBucket: `INSERT INTO ${t('room_buckets')} (room_id, bucket) VALUES (?, ?) USING TIMESTAMP ?`,
    addReply: `INSERT INTO ${t('thread_replies')} (room_id, thread_id, message_id) VALUES (?, ?, ?) USING TIMESTAMP ?`,
    // A removal is a row deletion: at equal timestamps Cassandra lets the deletion win, as the port asks.
    addReaction: `INSERT INTO ${t('reactions')} (room_id, bucket, message_id, emoji, user_id, at) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    removeReaction: `DELETE FROM ${t('reactions')} USING TIMESTAMP ? WHERE room_id = ? AND bucket = ? AND message_id = ? AND emoji = ? AND user_id = ?`,
    markRead: `INSERT INTO ${t('read_marks')} (room_id, user_id, message_id, at) VALUES (?, ?, ?, ?) USING TIMESTAMP ?`,
    readUser: `INSERT INTO ${t('read_users')} (room_id, user_id) VALUES (?, ?) USING TIMESTAMP ?`,
    markDelivered: `INSERT INTO ${t('deliveries')} (room_id, message_id, user_id, at) VALUES (?, ?, ?, ?) USING TIMESTAMP ?`,
    // message reads
    getMessage: `SELECT ${MESSAGE_COLUMNS} FROM ${t('messages')} WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    messagesIn: `SELECT ${MESSAGE_COLUMNS} FROM ${t('messages')} WHERE room_id = ? AND bucket = ? AND message_id IN ?`,
    buckets: `SELECT bucket FROM ${t('room_buckets')} WHERE room_id = ?`,
    timelineDesc: `SELECT ${MESSAGE_COLUMNS} FROM ${t('messages')}
      WHERE room_id = ? AND bucket = ? AND message_id < ? AND message_id > ? AND created = true AND thread_id = 0
      LIMIT ? ALLOW FILTERING`,
    timelineAsc: `SELECT ${MESSAGE_COLUMNS} FROM ${t('messages')}
      WHERE room_id = ? AND bucket = ? AND message_id < ? AND message_id > ? AND created = true AND thread_id = 0
      ORDER BY message_id ASC LIMIT ? ALLOW FILTERING`,
    repliesDesc: `SELECT message_id FROM ${t('thread_replies')} WHERE room_id = ? AND thread_id = ? AND message_id < ? AND message_id > ? LIMIT ?`,
    repliesAsc: `SELECT message_id FROM ${t('thread_replies')} WHERE room_id = ? AND thread_id = ? AND message_id < ? AND message_id > ?
      ORDER BY message_id ASC LIMIT ?`,
    unreadScan: `SELECT author_id, deleted FROM ${t('messages')}
      WHERE room_id = ? AND bucket = ? AND message_id > ? AND created = true AND thread_id = 0 ALLOW FILTERING`,
    reactionsIn: `SELECT message_id, emoji, user_id, at FROM ${t('reactions')} WHERE room_id = ? AND bucket = ? AND message_id IN ?`,
    pins: `SELECT message_id, pinned_at FROM ${t('pins')} WHERE room_id = ?`,
    readState: `SELECT message_id, at FROM ${t('read_marks')} WHERE room_id = ? AND user_id = ? LIMIT 1`,
    firstReadAt: `SELECT min(at) AS at FROM ${t('read_marks')} WHERE room_id = ? AND user_id = ? AND message_id >= ?`,
    readUsers: `SELECT user_id FROM ${t('read_users')} WHERE room_id = ?`,
    deliveries: `SELECT user_id, at FROM ${t('deliveries')} WHERE room_id = ? AND message_id = ?`,
    author: `SELECT created, author_id FROM ${t('messages')} WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    ping: 'SELECT release_version FROM system.local',
    /** Search by number of words (each word one CONTAINS), prepared as each count is first used. */
    search: (terms: number) => `SELECT ${MESSAGE_COLUMNS} FROM ${t('messages')} WHERE room_id = ? AND bucket = ? AND `
      + Array.from({ length: terms }, () => 'content_terms CONTAINS ?').join(' AND ') + ' LIMIT ?',
  } as const;
}
