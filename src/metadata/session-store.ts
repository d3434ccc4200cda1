import type { Kysely } from 'kysely';
import type { SessionRecord, SessionRows } from '../auth/ports.js';
import type { Database } from './tables.js';

/** Row type of migrations/0024-ui.ts. */
export interface SessionTables {
  ui_sessions: { id_hash: string; username: string; csrf_token: string; created_at: number; expires_at: number; last_seen_at: number };
}

/** Browser sessions on Kysely: the same queries on SQLite, PostgreSQL and MySQL. */
export class KyselySessionStore implements SessionRows {
  private readonly db: Kysely<Database & SessionTables>;

  constructor(db: Kysely<Database>) {
    this.db = db as unknown as Kysely<Database & SessionTables>;
  }

  async createSession(session: SessionRecord): Promise<void> {
    await this.db
      .insertInto('ui_sessions')
      .values({
        id_hash: session.idHash,
        username: session.username,
        csrf_token: session.csrfToken,
        created_at: session.createdAt.getTime(),
        expires_at: session.expiresAt.getTime(),
        last_seen_at: session.lastSeenAt.getTime(),
      })
      .execute();
  }

  async getSession(idHash: string): Promise<SessionRecord | null> {
    const row = await this.db.selectFrom('ui_sessions').selectAll().where('id_hash', '=', idHash).executeTakeFirst();
    if (!row) return null;
    return {
      idHash: row.id_hash,
      username: row.username,
      csrfToken: row.csrf_token,
      createdAt: new Date(Number(row.created_at)),
      expiresAt: new Date(Number(row.expires_at)),
      lastSeenAt: new Date(Number(row.last_seen_at)),
    };
  }

  async touchSession(idHash: string, at: Date): Promise<void> {
    await this.db
      .updateTable('ui_sessions')
      .set({ last_seen_at: at.getTime() })
      .where('id_hash', '=', idHash)
      .where('last_seen_at', '<', at.getTime())
      .execute();
  }

  async deleteSession(idHash: string): Promise<boolean> {
    const result = await this.db.deleteFrom('ui_sessions').where('id_hash', '=', idHash).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async deleteExpiredSessions(now: Date, idleBefore: Date): Promise<number> {
    const result = await this.db
      .deleteFrom('ui_sessions')
      .where((eb) => eb.or([eb('expires_at', '<=', now.getTime()), eb('last_seen_at', '<', idleBefore.getTime())]))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
