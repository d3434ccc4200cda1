import type { Generated, Kysely, Transaction } from 'kysely';
import type { DomainEvent, StoredEvent } from '../core/events.js';
import type { EventAppender, MetadataTx } from '../core/ports.js';
import type { OutboxStore } from '../events/ports.js';
import { insertOrKeep, insertOrUpdate, lockForUpdate, writeTransaction, type Dialect } from './dialect.js';
import type { Database } from './tables.js';

/** Row types of migrations/0004-seams.ts. */
export interface OutboxTables {
  events: {
    id: Generated<number>;
    seq: number | null;
    type: string;
    repository: string | null;
    actor: string | null;
    payload: string;
    created_at: number;
  };
  event_cursors: { name: string; position: number; updated_at: number };
  pull_stats: { repository_id: number; digest: string; pulls: number; last_pulled_at: number };
}

type OutboxDb = Database & OutboxTables;

/** The sequencer's own row in event_cursors: the last position it gave. */
export const SEQUENCE_ROW = '$sequence';

/** Appends events inside core's transaction (see KyselyTx). */
export class OutboxAppender implements EventAppender {
  constructor(private readonly trx: Transaction<Database>) {}

  async append(events: DomainEvent[], actor: string | null): Promise<void> {
    const now = Date.now();
    const rows = events.map((event) => ({
      seq: null,
      type: event.type,
      repository: 'repository' in event ? event.repository : null,
      actor,
      payload: JSON.stringify(event),
      created_at: now,
    }));
    await (this.trx as unknown as Transaction<OutboxDb>).insertInto('events').values(rows).execute();
  }
}

export class KyselyOutboxStore implements OutboxStore {
  private readonly db: Kysely<OutboxDb>;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
    /** Binds a MetadataTx of the same database to its Kysely transaction. */
    private readonly transactionOf: (tx: MetadataTx) => Transaction<Database>,
  ) {
    this.db = db as unknown as Kysely<OutboxDb>;
  }

  async sequence(limit: number): Promise<number> {
    // Read-only when there is nothing to do: this runs every dispatch tick on every replica.
    const waiting = await this.db.selectFrom('events').select('id').where('seq', 'is', null).limit(1).executeTakeFirst();
    if (!waiting) return 0;
    return writeTransaction(this.db, async (trx) => {
      // One sequencer at a time: the counter row's lock orders them (SQLite: the write lock).
      await insertOrKeep(
        trx.insertInto('event_cursors').values({ name: SEQUENCE_ROW, position: 0, updated_at: Date.now() }),
        this.dialect,
        ['name'],
      ).execute();
      const counter = await lockForUpdate(
        trx.selectFrom('event_cursors').select('position').where('name', '=', SEQUENCE_ROW),
        this.dialect,
      ).executeTakeFirstOrThrow();
      const rows = await trx.selectFrom('events').select('id').where('seq', 'is', null).orderBy('id').limit(limit).execute();
      let next = Number(counter.position);
      for (const row of rows) {
        next++;
        await trx.updateTable('events').set({ seq: next }).where('id', '=', row.id).execute();
      }
      if (rows.length > 0)
        await trx.updateTable('event_cursors').set({ position: next, updated_at: Date.now() }).where('name', '=', SEQUENCE_ROW).execute();
      return rows.length;
    });
  }

  async read(after: number, limit: number): Promise<StoredEvent[]> {
    const rows = await this.db
      .selectFrom('events')
      .select(['seq', 'actor', 'payload', 'created_at'])
      .where('seq', '>', after)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map((row) => ({
      seq: Number(row.seq),
      at: Number(row.created_at),
      actor: row.actor,
      event: JSON.parse(row.payload) as DomainEvent,
    }));
  }

  async position(consumer: string): Promise<number> {
    const row = await this.db.selectFrom('event_cursors').select('position').where('name', '=', consumer).executeTakeFirst();
    return row ? Number(row.position) : 0;
  }

  async advance(consumer: string, position: number, tx?: MetadataTx): Promise<void> {
    const db = tx ? (this.transactionOf(tx) as unknown as Transaction<OutboxDb>) : this.db;
    const now = Date.now();
    await insertOrUpdate(db.insertInto('event_cursors').values({ name: consumer, position, updated_at: now }), this.dialect, ['name'], {
      position,
      updated_at: now,
    }).execute();
  }

  async prune(consumers: string[], before: number): Promise<number> {
    if (consumers.length === 0) return 0;
    const positions = await Promise.all(consumers.map((c) => this.position(c)));
    const passedByAll = Math.min(...positions);
    if (passedByAll <= 0) return 0;
    const result = await this.db.deleteFrom('events').where('seq', '<=', passedByAll).where('created_at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async status(): Promise<{ unsequenced: number; lastSeq: number; cursors: Record<string, number> }> {
    const waiting = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('seq', 'is', null)
      .executeTakeFirstOrThrow();
    const cursors = await this.db.selectFrom('event_cursors').select(['name', 'position']).execute();
    const all = Object.fromEntries(cursors.map((c) => [c.name, Number(c.position)]));
    const lastSeq = all[SEQUENCE_ROW] ?? 0;
    delete all[SEQUENCE_ROW];
    return { unsequenced: Number(waiting.n), lastSeq, cursors: all };
  }
}
