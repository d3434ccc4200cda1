import type { Kysely, Selectable, Transaction } from 'kysely';
import type { BindingKind, ChangeActor, IdentityBindingRecord, IdentityBindingRows, ProjectGrant } from '../auth/ports.js';
import type { Role } from '../auth/permissions.js';
import { insertIfAbsent, writeTransaction, type Dialect } from './dialect.js';

/** Row types of the identity tables (DDL in migrations/0011-identity.ts). */
export interface IdentityTables {
  identity_bindings: {
    id: number;
    source: string;
    kind: string;
    subject: string;
    project: string;
    role: string;
    created_by: string;
    created_at: number;
  };
  identity_grants: { username: string; project: string; role: string; source: string; updated_at: number };
}

/** A change that happened: its event and audit entry (the auth store's `change` records both in the transaction). */
export interface IdentityChange {
  event: {
    type: 'binding.created' | 'binding.deleted';
    id: number;
    source: string;
    kind: string;
    subject: string;
    project: string;
    role: string;
  };
  action: string;
  target: string;
  detail?: unknown;
}

/** The auth store's transaction runner: `work` returns what happened (or null: nothing), recorded with its event and audit entry. */
export type ChangeRunner = (
  actor: ChangeActor | undefined,
  work: (trx: Transaction<IdentityTables>) => Promise<IdentityChange | null>,
) => Promise<boolean>;

/**
 * Identity bindings and the grants derived from them, on Kysely (SQLite, PostgreSQL, MySQL).
 * The auth store delegates IdentityBindingRows here and runs each change through its own
 * `change`, so a binding change, its event and its audit entry commit together.
 */
export class KyselyIdentityBindings implements IdentityBindingRows {
  constructor(
    private readonly db: Kysely<IdentityTables>,
    private readonly dialect: Dialect,
    private readonly change: ChangeRunner,
  ) {}

  async listBindings(filter: { source?: string; project?: string } = {}): Promise<IdentityBindingRecord[]> {
    let query = this.db.selectFrom('identity_bindings').selectAll().orderBy('id');
    if (filter.source !== undefined) query = query.where('source', '=', filter.source);
    if (filter.project !== undefined) query = query.where('project', '=', filter.project);
    return (await query.execute()).map(toBinding);
  }

  async getBinding(id: number): Promise<IdentityBindingRecord | null> {
    const row = await this.db.selectFrom('identity_bindings').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toBinding(row) : null;
  }

  async createBinding(
    binding: Omit<IdentityBindingRecord, 'id' | 'createdAt'>,
    actor?: ChangeActor,
  ): Promise<IdentityBindingRecord | null> {
    let created: IdentityBindingRecord | null = null;
    await this.change(actor, async (trx) => {
      const values = {
        source: binding.source,
        kind: binding.kind,
        subject: binding.subject,
        project: binding.project,
        role: binding.role,
        created_by: binding.createdBy,
        created_at: Date.now(),
      };
      if (
        !(await insertIfAbsent(trx.insertInto('identity_bindings').values(values as never), this.dialect, [
          'source',
          'kind',
          'subject',
          'project',
        ]))
      )
        return null;
      const row = await trx
        .selectFrom('identity_bindings')
        .selectAll()
        .where('source', '=', binding.source)
        .where('kind', '=', binding.kind)
        .where('subject', '=', binding.subject)
        .where('project', '=', binding.project)
        .executeTakeFirstOrThrow();
      created = toBinding(row);
      return bindingChange('binding.created', 'binding.create', created);
    });
    return created;
  }

  async deleteBinding(id: number, actor?: ChangeActor): Promise<boolean> {
    return this.change(actor, async (trx) => {
      const row = await trx.selectFrom('identity_bindings').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) return null;
      const result = await trx.deleteFrom('identity_bindings').where('id', '=', id).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return null;
      await trx.deleteFrom('identity_grants').where('source', '=', row.source).where('project', '=', row.project).execute();
      return bindingChange('binding.deleted', 'binding.delete', toBinding(row));
    });
  }

  async candidateBindings(source: string, groups: string[], id: string | undefined): Promise<IdentityBindingRecord[]> {
    const rows = await this.db
      .selectFrom('identity_bindings')
      .selectAll()
      .where('source', '=', source)
      .where((eb) => {
        const alternatives = [eb('kind', '=', 'prefix')];
        if (groups.length > 0) alternatives.push(eb.and([eb('kind', '=', 'group'), eb('subject', 'in', groups)]));
        if (id !== undefined) alternatives.push(eb.and([eb('kind', '=', 'id'), eb('subject', '=', id)]));
        return eb.or(alternatives);
      })
      .orderBy('id')
      .execute();
    return rows.map(toBinding);
  }

  async setGrants(username: string, source: string, grants: ProjectGrant[]): Promise<void> {
    await writeTransaction(this.db, async (trx) => {
      const current = await trx
        .selectFrom('identity_grants')
        .select(['project', 'role', 'source'])
        .where('username', '=', username)
        .execute();
      const wanted = new Map(grants.map((g) => [g.project, g.role]));
      // Unchanged grants are left alone: a login with the same groups writes nothing.
      const same = current.length === wanted.size && current.every((g) => g.source === source && wanted.get(g.project) === g.role);
      if (same) return;
      await trx.deleteFrom('identity_grants').where('username', '=', username).execute();
      if (grants.length === 0) return;
      const now = Date.now();
      // A project deleted since the bindings were read: its grant is dropped, not an error.
      const existing = new Set(
        (
          await (trx as unknown as Transaction<{ projects: { name: string } }>)
            .selectFrom('projects')
            .select('name')
            .where('name', 'in', [...wanted.keys()])
            .execute()
        ).map((p) => p.name),
      );
      const rows = [...wanted]
        .filter(([project]) => existing.has(project))
        .map(([project, role]) => ({ username, project, role, source, updated_at: now }));
      if (rows.length > 0) await trx.insertInto('identity_grants').values(rows).execute();
    });
  }
}

function bindingChange(type: IdentityChange['event']['type'], action: string, b: IdentityBindingRecord): IdentityChange {
  const fields = { id: b.id, source: b.source, kind: b.kind, subject: b.subject, project: b.project, role: b.role };
  return { event: { type, ...fields }, action, target: `${b.source}:${b.kind}:${b.subject}`, detail: fields };
}

function toBinding(row: Selectable<IdentityTables['identity_bindings']>): IdentityBindingRecord {
  return {
    id: Number(row.id),
    source: row.source,
    kind: row.kind as BindingKind,
    subject: row.subject,
    project: row.project,
    role: row.role as Role,
    createdBy: row.created_by,
    createdAt: new Date(Number(row.created_at)),
  };
}
