import { sql, type Generated, type Kysely, type RawBuilder, type Selectable, type Transaction } from 'kysely';
import type {
  AuditEntry,
  AuditQuery,
  AuditRecord,
  AuthStore,
  ChangeActor,
  DatedAuditEntry,
  IdentityBindingRecord,
  IdentityBindingRows,
  MemberRecord,
  ProjectGrant,
  ProjectRecord,
  ProjectTxRows,
  RefreshTokenRecord,
  RobotPermission,
  RobotRecord,
  SigningKeyRecord,
  UserRecord,
} from '../auth/ports.js';
import { strongestRole } from '../auth/ports.js';
import type { Role } from '../auth/permissions.js';
import type { AuditOutcome, DomainEvent } from '../core/events.js';
import type { MetadataTx } from '../core/ports.js';
import { insertIfAbsent, insertOrUpdate, insertReturningId, lockForUpdate, writeTransaction, type Dialect } from './dialect.js';
import { OutboxAppender } from './outbox-store.js';
import { orphanRepositoryNames, projectHasRepositories } from './fsck-store.js';
import { KyselyIdentityBindings, type IdentityTables } from './identity-store.js';
import { transactionOf } from './kysely-store.js';
import type { Database } from './tables.js';

/** Row types of the auth tables (DDL in migrations/0003-auth.ts; identity tables: 0011-identity.ts). */
export interface AuthTables extends IdentityTables {
  users: { username: string; password_hash: string; admin: number; created_at: number; updated_at: number };
  projects: { name: string; public: number; created_by: string | null; created_at: number };
  project_members: { project: string; username: string; role: string };
  robots: {
    name: string;
    project: string | null;
    secret_hash: string;
    permissions: string;
    description: string | null;
    expires_at: number | null;
    created_by: string;
    created_at: number;
  };
  signing_keys: { kid: string; private_jwk: string; public_jwk: string; created_at: number; retired_at: number | null };
  refresh_tokens: { hash: string; username: string; client_id: string; created_at: number; expires_at: number };
  audit_log: {
    id: Generated<number>;
    at: number;
    actor: string;
    action: string;
    target: string;
    ip: string | null;
    detail: string | null;
    /** migrations/0009-audit.ts */
    project: string | null;
    outcome: string;
  };
}

/** What a change that happened records: its domain event and (when the caller named an actor) its audit entry. */
interface Outcome {
  event: DomainEvent;
  action: string;
  target: string;
  detail?: unknown;
}

/**
 * The AuthStore on Kysely: the same queries serve SQLite, PostgreSQL and MySQL (upserts through
 * dialect.ts). Every mutating method of users, projects, members and robots is one write
 * transaction holding its rows, its domain event (outbox) and its audit entry (see `change`).
 */
export class KyselyAuthStore implements AuthStore {
  private readonly db: Kysely<AuthTables>;
  /** Identity bindings and external users' grants (identity-store.ts), changed through `change`. */
  private readonly bindings: IdentityBindingRows;

  /** `db` is the metadata store's Kysely instance (its schema includes the auth tables). */
  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect = 'sqlite',
  ) {
    this.db = db as unknown as Kysely<AuthTables>;
    this.bindings = new KyselyIdentityBindings(this.db, dialect, (actor, work) =>
      this.change(actor, work as (trx: Transaction<AuthTables>) => Promise<Outcome | null>),
    );
  }

  listBindings(filter?: { source?: string; project?: string }): Promise<IdentityBindingRecord[]> {
    return this.bindings.listBindings(filter);
  }

  getBinding(id: number): Promise<IdentityBindingRecord | null> {
    return this.bindings.getBinding(id);
  }

  createBinding(binding: Omit<IdentityBindingRecord, 'id' | 'createdAt'>, actor?: ChangeActor): Promise<IdentityBindingRecord | null> {
    return this.bindings.createBinding(binding, actor);
  }

  deleteBinding(id: number, actor?: ChangeActor): Promise<boolean> {
    return this.bindings.deleteBinding(id, actor);
  }

  candidateBindings(source: string, groups: string[], id: string | undefined): Promise<IdentityBindingRecord[]> {
    return this.bindings.candidateBindings(source, groups, id);
  }

  setGrants(username: string, source: string, grants: ProjectGrant[]): Promise<void> {
    return this.bindings.setGrants(username, source, grants);
  }

  async countUsers(): Promise<number> {
    const row = await this.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async getUser(username: string): Promise<UserRecord | null> {
    const row = await this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    return row ? toUser(row) : null;
  }

  async listUsers(): Promise<UserRecord[]> {
    return (await this.db.selectFrom('users').selectAll().orderBy('username').execute()).map(toUser);
  }

  async createUser(user: Omit<UserRecord, 'createdAt'>, actor?: ChangeActor): Promise<boolean> {
    return this.change(actor, async (trx) => {
      const now = Date.now();
      const insert = trx
        .insertInto('users')
        .values({ username: user.username, password_hash: user.passwordHash, admin: user.admin ? 1 : 0, created_at: now, updated_at: now });
      if (!(await insertIfAbsent(insert, this.dialect, ['username']))) return null;
      return {
        event: { type: 'user.created', username: user.username, admin: user.admin },
        action: 'user.create',
        target: user.username,
        detail: { admin: user.admin },
      };
    });
  }

  async setPassword(username: string, passwordHash: string, actor?: ChangeActor): Promise<boolean> {
    return this.change(actor, async (trx) => {
      const result = await trx
        .updateTable('users')
        .set({ password_hash: passwordHash, updated_at: Date.now() })
        .where('username', '=', username)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return null;
      await trx.deleteFrom('refresh_tokens').where('username', '=', username).execute();
      return { event: { type: 'user.updated', username, changes: ['password'] }, action: 'user.password', target: username };
    });
  }

  async setAdmin(username: string, admin: boolean, actor?: ChangeActor): Promise<boolean> {
    return this.change(actor, async (trx) => {
      const result = await trx
        .updateTable('users')
        .set({ admin: admin ? 1 : 0, updated_at: Date.now() })
        .where('username', '=', username)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return null;
      return {
        event: { type: 'user.updated', username, changes: ['admin'] },
        action: admin ? 'user.grant-admin' : 'user.revoke-admin',
        target: username,
      };
    });
  }

  async deleteUser(username: string, actor?: ChangeActor): Promise<boolean> {
    return this.change(actor, async (trx) => {
      await trx.deleteFrom('project_members').where('username', '=', username).execute();
      await trx.deleteFrom('refresh_tokens').where('username', '=', username).execute();
      const result = await trx.deleteFrom('users').where('username', '=', username).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return null;
      return { event: { type: 'user.deleted', username }, action: 'user.delete', target: username };
    });
  }

  async getProject(name: string): Promise<ProjectRecord | null> {
    const row = await this.db.selectFrom('projects').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toProject(row) : null;
  }

  async listProjects(): Promise<ProjectRecord[]> {
    return (await this.db.selectFrom('projects').selectAll().orderBy('name').execute()).map(toProject);
  }

  async createProject(project: Omit<ProjectRecord, 'createdAt'>, owner?: string, actor?: ChangeActor): Promise<boolean> {
    return this.change(actor, (trx) => insertProject(trx, this.dialect, project, owner));
  }

  projectHasRepositories(project: string): Promise<boolean> {
    return projectHasRepositories(this.db as unknown as Kysely<Database>, project);
  }

  orphanRepositories(after: string | undefined, limit: number): Promise<string[]> {
    return orphanRepositoryNames(this.db as unknown as Kysely<Database>, this.dialect, after, limit);
  }

  within(tx: MetadataTx): ProjectTxRows {
    const trx = transactionOf(tx) as unknown as Transaction<AuthTables>;
    const dialect = this.dialect;
    return {
      getProject: async (name) => {
        const row = await trx.selectFrom('projects').selectAll().where('name', '=', name).executeTakeFirst();
        return row ? toProject(row) : null;
      },
      getProjectAndRole: async (name, username) => {
        const row = await trx
          .selectFrom('projects as p')
          .leftJoin('project_members as m', (join) => join.onRef('m.project', '=', 'p.name').on('m.username', '=', username))
          // An external user's role through identity bindings (at most one row per user and project).
          .leftJoin('identity_grants as g', (join) => join.onRef('g.project', '=', 'p.name').on('g.username', '=', username))
          .select(['p.name', 'p.public', 'p.created_by', 'p.created_at', 'm.role', 'g.role as grant_role'])
          .where('p.name', '=', name)
          .executeTakeFirst();
        return row ? { project: toProject(row), role: strongestRole([row.role, row.grant_role]) } : null;
      },
      getRole: (project, username) => roleOf(trx, project, username),
      getUser: async (username) => {
        const row = await trx.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
        return row ? toUser(row) : null;
      },
      getRobot: async (name) => {
        const row = await trx.selectFrom('robots').selectAll().where('name', '=', name).executeTakeFirst();
        return row ? toRobot(row) : null;
      },
      projectHasRepositories: (project) => projectHasRepositories(trx as unknown as Transaction<Database>, project),
      createProject: async (project, owner, actor) => {
        const outcome = await insertProject(trx, dialect, project, owner);
        if (!outcome) return false;
        await record(trx, this.dialect, actor, outcome);
        return true;
      },
    };
  }

  async setProjectVisibility(name: string, isPublic: boolean, actor?: ChangeActor): Promise<boolean> {
    return this.change(actor, async (trx) => {
      const result = await trx
        .updateTable('projects')
        .set({ public: isPublic ? 1 : 0 })
        .where('name', '=', name)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return null;
      return {
        event: { type: 'project.updated', project: name, public: isPublic },
        action: 'project.visibility',
        target: name,
        detail: { public: isPublic },
      };
    });
  }

  async deleteProject(name: string, actor?: ChangeActor): Promise<boolean> {
    return this.change(actor, async (trx) => {
      await trx.deleteFrom('project_members').where('project', '=', name).execute();
      await trx.deleteFrom('robots').where('project', '=', name).execute();
      const result = await trx.deleteFrom('projects').where('name', '=', name).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return null;
      return { event: { type: 'project.deleted', project: name }, action: 'project.delete', target: name };
    });
  }

  getRole(project: string, username: string): Promise<Role | null> {
    return roleOf(this.db, project, username);
  }

  async listMembers(project: string): Promise<MemberRecord[]> {
    const rows = await this.db.selectFrom('project_members').selectAll().where('project', '=', project).orderBy('username').execute();
    const grants = await this.db.selectFrom('identity_grants').selectAll().where('project', '=', project).execute();
    return withGrants(rows.map(toMember), grants, (m) => m.username).sort((a, b) => byteCompare(a.username, b.username));
  }

  async listMemberships(username: string): Promise<MemberRecord[]> {
    const rows = await this.db.selectFrom('project_members').selectAll().where('username', '=', username).orderBy('project').execute();
    const grants = await this.db.selectFrom('identity_grants').selectAll().where('username', '=', username).execute();
    return withGrants(rows.map(toMember), grants, (m) => m.project).sort((a, b) => byteCompare(a.project, b.project));
  }

  async setMember(project: string, username: string, role: Role, actor?: ChangeActor): Promise<void> {
    await this.change(actor, async (trx) => {
      await insertOrUpdate(trx.insertInto('project_members').values({ project, username, role }), this.dialect, ['project', 'username'], {
        role,
      }).execute();
      return {
        event: { type: 'member.set', project, username, role },
        action: 'member.set',
        target: `${project}/${username}`,
        detail: { role },
      };
    });
  }

  async removeMember(project: string, username: string, actor?: ChangeActor): Promise<boolean> {
    return this.change(actor, async (trx) => {
      const result = await trx
        .deleteFrom('project_members')
        .where('project', '=', project)
        .where('username', '=', username)
        .executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return null;
      return { event: { type: 'member.removed', project, username }, action: 'member.remove', target: `${project}/${username}` };
    });
  }

  async getRobot(name: string): Promise<RobotRecord | null> {
    const row = await this.db.selectFrom('robots').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toRobot(row) : null;
  }

  async listRobots(project: string | null): Promise<RobotRecord[]> {
    let query = this.db.selectFrom('robots').selectAll().orderBy('name');
    query = project === null ? query.where('project', 'is', null) : query.where('project', '=', project);
    return (await query.execute()).map(toRobot);
  }

  async createRobot(robot: Omit<RobotRecord, 'createdAt'>, actor?: ChangeActor): Promise<boolean> {
    return this.change(actor, async (trx) => {
      const insert = trx.insertInto('robots').values({
        name: robot.name,
        project: robot.project,
        secret_hash: robot.secretHash,
        permissions: JSON.stringify(robot.permissions),
        description: robot.description,
        expires_at: robot.expiresAt?.getTime() ?? null,
        created_by: robot.createdBy,
        created_at: Date.now(),
      });
      if (!(await insertIfAbsent(insert, this.dialect, ['name']))) return null;
      // The secret's hash stays in the robots row: neither the event nor the audit entry carries it.
      const permissions = robot.permissions.map((p) => ({ project: p.project, repository: p.repository, actions: [...p.actions] }));
      return {
        event: { type: 'robot.created', robot: robot.name, project: robot.project, permissions },
        action: 'robot.create',
        target: robot.name,
        detail: { permissions, expiresAt: robot.expiresAt },
      };
    });
  }

  async deleteRobot(name: string, actor?: ChangeActor): Promise<boolean> {
    return this.change(actor, async (trx) => {
      const row = await trx.selectFrom('robots').select('project').where('name', '=', name).executeTakeFirst();
      if (!row) return null;
      const result = await trx.deleteFrom('robots').where('name', '=', name).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return null;
      return { event: { type: 'robot.deleted', robot: name, project: row.project }, action: 'robot.delete', target: name };
    });
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    const rows = await this.db.selectFrom('signing_keys').selectAll().orderBy('created_at', 'desc').execute();
    return rows.map((r) => ({
      kid: r.kid,
      privateJwk: r.private_jwk,
      publicJwk: r.public_jwk,
      createdAt: new Date(Number(r.created_at)),
      retiredAt: r.retired_at === null ? null : new Date(Number(r.retired_at)),
    }));
  }

  async addSigningKey(key: Omit<SigningKeyRecord, 'retiredAt'>): Promise<void> {
    await writeTransaction(this.db, async (trx) => {
      // Lock every key row first (not only the active one), then retire in a statement of its
      // own. Under READ COMMITTED a concurrent rotation waits on those locks until this one
      // committed, and its UPDATE, a later statement, sees (and retires) the key added here.
      // Locking only the active row let a third rotation through as soon as the first retired
      // it (the row no longer matched), beside the second: two active keys on PostgreSQL.
      // In kid order, so that concurrent rotations take the locks in one order (no deadlock).
      await lockForUpdate(trx.selectFrom('signing_keys').select('kid').orderBy('kid'), this.dialect).execute();
      const now = Date.now();
      await trx.updateTable('signing_keys').set({ retired_at: now }).where('retired_at', 'is', null).execute();
      await trx
        .insertInto('signing_keys')
        .values({
          kid: key.kid,
          private_jwk: key.privateJwk,
          public_jwk: key.publicJwk,
          created_at: key.createdAt.getTime(),
          retired_at: null,
        })
        .execute();
    });
  }

  async saveRefreshToken(token: RefreshTokenRecord): Promise<void> {
    await this.db
      .insertInto('refresh_tokens')
      .values({
        hash: token.hash,
        username: token.username,
        client_id: token.clientId,
        created_at: token.createdAt.getTime(),
        expires_at: token.expiresAt.getTime(),
      })
      .execute();
    // Housekeeping: expired rows are useless; dropping them here keeps the table small.
    await this.db.deleteFrom('refresh_tokens').where('expires_at', '<', Date.now()).execute();
  }

  async getRefreshToken(hash: string): Promise<RefreshTokenRecord | null> {
    const row = await this.db.selectFrom('refresh_tokens').selectAll().where('hash', '=', hash).executeTakeFirst();
    if (!row) return null;
    return {
      hash: row.hash,
      username: row.username,
      clientId: row.client_id,
      createdAt: new Date(Number(row.created_at)),
      expiresAt: new Date(Number(row.expires_at)),
    };
  }

  async revokeRefreshToken(hash: string): Promise<boolean> {
    const result = await this.db.deleteFrom('refresh_tokens').where('hash', '=', hash).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async audit(entry: AuditEntry): Promise<void> {
    await writeTransaction(this.db, (trx) => insertAudit(trx, this.dialect, entry));
  }

  /**
   * Runs a change in one write transaction. When `work` reports that it happened, its event is
   * appended to the outbox and (with an `actor`) its audit entry written, in that transaction;
   * when it returns null (nothing to change: taken name, unknown row) neither is.
   */
  private change(actor: ChangeActor | undefined, work: (trx: Transaction<AuthTables>) => Promise<Outcome | null>): Promise<boolean> {
    return writeTransaction(this.db, async (trx) => {
      const outcome = await work(trx);
      if (!outcome) return false;
      await record(trx, this.dialect, actor, outcome);
      return true;
    });
  }

  async auditWithin(tx: MetadataTx, entries: DatedAuditEntry[]): Promise<void> {
    const trx = transactionOf(tx) as unknown as Transaction<AuthTables>;
    for (const entry of entries) await insertAudit(trx, this.dialect, entry, entry.at.getTime());
  }

  listAudit(limit: number, beforeId?: number): Promise<AuditRecord[]> {
    return this.queryAudit({ limit, beforeId });
  }

  async queryAudit(q: AuditQuery): Promise<AuditRecord[]> {
    let query = this.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(q.limit);
    if (q.beforeId !== undefined) query = query.where('id', '<', q.beforeId);
    if (q.actor !== undefined) query = query.where('actor', '=', q.actor);
    if (q.action !== undefined) query = query.where('action', '=', q.action);
    if (q.project !== undefined) query = query.where('project', '=', q.project);
    if (q.outcome !== undefined) query = query.where('outcome', '=', q.outcome);
    if (q.from !== undefined) query = query.where('at', '>=', q.from);
    if (q.to !== undefined) query = query.where('at', '<', q.to);
    if (q.resource !== undefined) {
      const resource = q.resource;
      const under = (separator: string) => startsWith('target', resource + separator, this.dialect);
      query = query.where((eb) => eb.or([eb('target', '=', resource), under('/'), under(':'), under('@')]));
    }
    return (await query.execute()).map(toAuditRecord);
  }
}

/** Appends a change's event to the outbox and (with an `actor`) writes its audit entry, in `trx`. */
async function record(trx: Transaction<AuthTables>, dialect: Dialect, actor: ChangeActor | undefined, outcome: Outcome): Promise<void> {
  await new OutboxAppender(trx as unknown as Transaction<Database>).append([outcome.event], actor?.name ?? null);
  if (!actor) return;
  const override = actor.audit;
  await insertAudit(trx, dialect, {
    actor: actor.name,
    // Project, member and robot changes belong to their project (its admins may read them); user changes are system-wide.
    project: 'project' in outcome.event ? outcome.event.project : null,
    action: override?.action ?? outcome.action,
    target: outcome.target,
    ip: actor.ip,
    detail: override && 'detail' in override ? override.detail : outcome.detail,
  });
}

/** Inserts the project row (and its owner's membership); null when the name is taken. */
async function insertProject(
  trx: Transaction<AuthTables>,
  dialect: Dialect,
  project: Omit<ProjectRecord, 'createdAt'>,
  owner: string | undefined,
): Promise<Outcome | null> {
  const insert = trx
    .insertInto('projects')
    .values({ name: project.name, public: project.public ? 1 : 0, created_by: project.createdBy, created_at: Date.now() });
  if (!(await insertIfAbsent(insert, dialect, ['name']))) return null;
  if (owner !== undefined) {
    await trx.insertInto('project_members').values({ project: project.name, username: owner, role: 'project-admin' }).execute();
  }
  return {
    event: { type: 'project.created', project: project.name, public: project.public, owner: owner ?? null },
    action: 'project.create',
    target: project.name,
    detail: { public: project.public, owner },
  };
}

/**
 * Writes an audit entry and, in the same transaction, its `audit.recorded` event: the audit
 * sinks (src/audit) export from the outbox, so an entry is exported exactly when it committed.
 */
async function insertAudit(trx: Transaction<AuthTables>, dialect: Dialect, entry: AuditEntry, at = Date.now()): Promise<void> {
  const row = {
    at,
    actor: entry.actor,
    action: entry.action,
    target: entry.target,
    ip: entry.ip,
    detail: entry.detail === undefined ? null : JSON.stringify(entry.detail),
    project: entry.project ?? null,
    outcome: entry.outcome ?? 'success',
  };
  const id = await insertReturningId(trx.insertInto('audit_log').values(row), dialect);
  const { detail: _json, ...fields } = row;
  const event: DomainEvent = { type: 'audit.recorded', id, ...fields, ...(entry.detail === undefined ? {} : { detail: entry.detail }) };
  await new OutboxAppender(trx as unknown as Transaction<Database>).append([event], entry.actor);
}

function toAuditRecord(r: Selectable<AuthTables['audit_log']>): AuditRecord {
  return {
    id: Number(r.id),
    at: new Date(Number(r.at)),
    actor: r.actor,
    action: r.action,
    target: r.target,
    ip: r.ip,
    detail: r.detail === null ? undefined : (JSON.parse(r.detail) as unknown),
    project: r.project,
    outcome: r.outcome as AuditOutcome,
  };
}

/**
 * `column` starts with `prefix`, case-sensitively and served by an index on each database:
 * GLOB on SQLite (its LIKE ignores case, and no index serves it), LIKE elsewhere (PostgreSQL:
 * the text_pattern_ops index of migrations/0009-audit.ts; MySQL: binary collation). '!' escapes
 * LIKE's wildcards: the same ESCAPE clause works on PostgreSQL and MySQL ('\\' does not on MySQL).
 */
function startsWith(column: string, prefix: string, dialect: Dialect): RawBuilder<boolean> {
  if (dialect === 'sqlite') return sql<boolean>`${sql.ref(column)} glob ${`${prefix.replace(/[*?[]/g, (c) => `[${c}]`)}*`}`;
  return sql<boolean>`${sql.ref(column)} like ${`${prefix.replace(/[!%_]/g, (c) => `!${c}`)}%`} escape '!'`;
}

function toUser(row: AuthTables['users']): UserRecord {
  return {
    username: row.username,
    passwordHash: row.password_hash,
    admin: Number(row.admin) === 1,
    createdAt: new Date(Number(row.created_at)),
  };
}

function toProject(row: AuthTables['projects']): ProjectRecord {
  return { name: row.name, public: Number(row.public) === 1, createdBy: row.created_by, createdAt: new Date(Number(row.created_at)) };
}

/** A user's role in a project: their membership or their grant through bindings, whichever is stronger. */
async function roleOf(db: Kysely<AuthTables> | Transaction<AuthTables>, project: string, username: string): Promise<Role | null> {
  const rows = await db
    .selectFrom('project_members')
    .select('role')
    .where('project', '=', project)
    .where('username', '=', username)
    .unionAll(db.selectFrom('identity_grants').select('role').where('project', '=', project).where('username', '=', username))
    .execute();
  return strongestRole(rows.map((r) => r.role));
}

/** Members plus grants through bindings; one entry per key, the stronger role (a grant that wins carries its source). */
function withGrants(members: MemberRecord[], grants: AuthTables['identity_grants'][], key: (m: MemberRecord) => string): MemberRecord[] {
  const byKey = new Map(members.map((m) => [key(m), m]));
  for (const g of grants) {
    const granted: MemberRecord = { project: g.project, username: g.username, role: g.role as Role, source: g.source };
    const member = byKey.get(key(granted));
    if (!member || strongestRole([member.role, granted.role]) !== member.role) byKey.set(key(granted), granted);
  }
  return [...byKey.values()];
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function toMember(row: AuthTables['project_members']): MemberRecord {
  return { project: row.project, username: row.username, role: row.role as Role };
}

function toRobot(row: AuthTables['robots']): RobotRecord {
  return {
    name: row.name,
    project: row.project,
    secretHash: row.secret_hash,
    permissions: JSON.parse(row.permissions) as RobotPermission[],
    description: row.description,
    expiresAt: row.expires_at === null ? null : new Date(Number(row.expires_at)),
    createdBy: row.created_by,
    createdAt: new Date(Number(row.created_at)),
  };
}
