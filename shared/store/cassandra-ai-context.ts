import type { AiContext } from '../domain/models.ts';
import type { CassandraSession } from './cassandra-session.ts';
import type { Store } from './store.ts';

/** The users' AI contexts: one row per (tenant, user), written with a TTL so Cassandra drops it when it expires. */
export function cassandraAiContext(db: CassandraSession): Pick<Store, 'getAiContext' | 'putAiContext'> {
  const table = `${db.keyspace}.ai_contexts`;
  const get = `SELECT body, expires_at FROM ${table} WHERE tenant = ? AND user_id = ?`;
  const put = `INSERT INTO ${table} (tenant, user_id, body, expires_at) VALUES (?, ?, ?, ?) USING TTL ?`;
  return {
    async getAiContext(tenant, userId, nowMs) {
      const row = (await db.exec('getAiContext', get, [tenant, userId])).first();
      // the TTL is in whole seconds: the row may outlive expiresAt by less than one
      if (!row || Number(row.get('expires_at')) <= nowMs) return undefined;
      return JSON.parse(row.get('body') as string) as AiContext;
    },
    async putAiContext(tenant, context) {
      const expires = Date.parse(context.expiresAt);
      const ttl = Math.max(1, Math.ceil((expires - Date.now()) / 1000));
      await db.exec('putAiContext', put, [tenant, context.userId, JSON.stringify(context), BigInt(expires), ttl]);
    },
  };
}
