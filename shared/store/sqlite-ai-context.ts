import type { AiContext } from '../domain/models.ts';
import type { SqliteContext } from './sqlite-context.ts';
import type { Store } from './store.ts';

/** The users' AI contexts, one JSON row per (tenant, user); expired rows are swept by writes. */
export function sqliteAiContext({ db, run }: SqliteContext): Pick<Store, 'getAiContext' | 'putAiContext'> {
  const get = db.prepare('SELECT body FROM ai_contexts WHERE tenant = ? AND user_id = ? AND expires_at > ?');
  const put = db.prepare(`INSERT INTO ai_contexts (tenant, user_id, body, expires_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (tenant, user_id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at`);
  const sweep = db.prepare('DELETE FROM ai_contexts WHERE expires_at <= ?');
  return {
    getAiContext: (tenant, userId, nowMs) => run('getAiContext', () => {
      const row = get.get(tenant, userId, nowMs) as { body: string } | undefined;
      return row === undefined ? undefined : JSON.parse(row.body) as AiContext;
    }),
    putAiContext: (tenant, context) => run('putAiContext', () => {
      sweep.run(Date.now());
      put.run(tenant, context.userId, JSON.stringify(context), Date.parse(context.expiresAt));
    }),
  };
}
