import { sql, type Generated, type Kysely, type Transaction } from 'kysely';
import type { MetadataTx } from '../core/ports.js';
import type {
  Decoration,
  HistoryQuery,
  ImmutableRule,
  ImmutableRuleInput,
  RuleSnapshot,
  TagChange,
  TagChangeKind,
  TagHistoryEntry,
  TagsMetadata,
  TagsTxQueries,
} from '../tags/ports.js';
import { insertOrUpdate, insertReturningId, type AnyDb, type Dialect } from './dialect.js';
import { precompiledOn } from './precompiled.js';
import type { Database } from './tables.js';

/** Row types of migrations/0006-tags.ts. */
export interface TagsTables {
  immutable_rules: {
    id: Generated<number>;
    project: string;
    repository_pattern: string;
    repository_decoration: string;
    tag_pattern: string;
    tag_decoration: string;
    disabled: number;
    created_by: string | null;
    created_at: number;
  };
  immutable_rule_versions: { project: string; version: number };
  tag_history: {
    id: Generated<number>;
    repository_id: number;
    tag: string;
    old_digest: string | null;
    new_digest: string | null;
    at: number;
    actor: string | null;
    via: string;
  };
}

type TagsDatabase = Database & TagsTables;
type Db = AnyDb<TagsDatabase>;

type RuleRow = Omit<TagsTables['immutable_rules'], 'id'> & { id: number };

function ruleOf(row: RuleRow): ImmutableRule {
  return {
    id: Number(row.id),
    project: row.project,
    repository: { pattern: row.repository_pattern, decoration: row.repository_decoration as Decoration },
    tag: { pattern: row.tag_pattern, decoration: row.tag_decoration as Decoration },
    disabled: Number(row.disabled) === 1,
    createdBy: row.created_by,
    createdAt: new Date(Number(row.created_at)),
  };
}

function ruleColumns(rule: ImmutableRuleInput) {
  return {
    repository_pattern: rule.repository.pattern,
    repository_decoration: rule.repository.decoration,
    tag_pattern: rule.tag.pattern,
    tag_decoration: rule.tag.decoration,
    disabled: rule.disabled ? 1 : 0,
  };
}

async function ruleVersion(db: Db, project: string): Promise<number> {
  const row = await db.selectFrom('immutable_rule_versions').select('version').where('project', '=', project).executeTakeFirst();
  return row ? Number(row.version) : 0;
}

async function rulesOf(db: Db, project: string): Promise<RuleSnapshot> {
  const version = await ruleVersion(db, project);
  const rows = await db.selectFrom('immutable_rules').selectAll().where('project', '=', project).orderBy('id').execute();
  return { version, rules: rows.map(ruleOf) };
}

/**
 * The last time a tag of the repository stopped pointing to `digest` (moved away or deleted),
 * or null: what GC's liveness check consults (src/metadata/gc-store.ts) to keep manifests a
 * tag pointed to within the history window. A tag that still points to it keeps it anyway
 * (tagged), and every entry that set a tag to `digest` precedes the one that moved it away, so
 * the old digest alone answers it: one look-up in tag_history_old.
 */
export async function lastPointedAt(db: AnyDb<Database>, repositoryId: number, digest: string): Promise<number | null> {
  const row = await (db as unknown as Db)
    .selectFrom('tag_history')
    .select((eb) => eb.fn.max('at').as('at'))
    .where('repository_id', '=', repositoryId)
    .where('old_digest', '=', digest)
    .executeTakeFirst();
  return row?.at === null || row?.at === undefined ? null : Number(row.at);
}

/**
 * The two statements every tag change of a push runs, compiled once (Kysely's builder costs
 * more CPU than the indexed SQLite statements it builds; bench/tags-overhead.ts).
 */
function historyStatements(db: Kysely<TagsDatabase>) {
  return {
    repositoryId: precompiledOn<TagsDatabase, [string], { id: number }>((name) =>
      db.selectFrom('repositories').select('id').where('name', '=', name),
    ),
    insert: precompiledOn<TagsDatabase, [string, string, string, string, string, string, string], never>(
      (repositoryId, tag, oldDigest, newDigest, at, actor, via) =>
        db.insertInto('tag_history').values({
          repository_id: repositoryId as unknown as number,
          tag,
          old_digest: oldDigest,
          new_digest: newDigest,
          at: at as unknown as number,
          actor,
          via,
        }),
    ),
  };
}

type HistoryStatements = ReturnType<typeof historyStatements>;

/** TagsTxQueries on one Kysely transaction (core's, joined through `within`). */
class TagsTxRows implements TagsTxQueries {
  constructor(
    private readonly db: Transaction<TagsDatabase>,
    private readonly dialect: Dialect,
    private readonly statements: HistoryStatements,
  ) {}

  ruleVersion(project: string): Promise<number> {
    return ruleVersion(this.db, project);
  }

  rules(project: string): Promise<RuleSnapshot> {
    return rulesOf(this.db, project);
  }

  async addRule(project: string, rule: ImmutableRuleInput, actor: string | null, at: Date): Promise<ImmutableRule> {
    const row = { project, ...ruleColumns(rule), created_by: actor, created_at: at.getTime() };
    const id = await insertReturningId(this.db.insertInto('immutable_rules').values(row), this.dialect);
    await this.bumpVersion(project);
    return ruleOf({ ...row, id });
  }

  async updateRule(project: string, id: number, rule: ImmutableRuleInput): Promise<boolean> {
    const result = await this.db
      .updateTable('immutable_rules')
      .set(ruleColumns(rule))
      .where('project', '=', project)
      .where('id', '=', id)
      .executeTakeFirst();
    // MySQL counts changed rows, not matched ones: an update to the same values still names an existing rule.
    const found =
      Number(result.numUpdatedRows) > 0 ||
      (await this.db.selectFrom('immutable_rules').select('id').where('project', '=', project).where('id', '=', id).executeTakeFirst()) !==
        undefined;
    if (found) await this.bumpVersion(project);
    return found;
  }

  async deleteRule(project: string, id: number): Promise<boolean> {
    const result = await this.db.deleteFrom('immutable_rules').where('project', '=', project).where('id', '=', id).executeTakeFirst();
    const found = Number(result.numDeletedRows) > 0;
    if (found) await this.bumpVersion(project);
    return found;
  }

  async tagsOf(repository: string, digest: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('tags as t')
      .innerJoin('repositories as r', 'r.id', 't.repository_id')
      .select('t.name')
      .where('r.name', '=', repository)
      .where('t.manifest_digest', '=', digest)
      .orderBy('t.name')
      .execute();
    return rows.map((r) => r.name);
  }

  async record(repository: string, changes: TagChange[], at: Date): Promise<void> {
    if (changes.length === 0) return;
    const [repo] = await this.statements.repositoryId(this.db, repository);
    if (!repo) return;
    const repositoryId = Number(repo.id);
    for (const c of changes)
      await this.statements.insert(this.db, repositoryId, c.tag, c.oldDigest, c.newDigest, at.getTime(), c.actor, c.via);
  }

  private async bumpVersion(project: string): Promise<void> {
    await insertOrUpdate(this.db.insertInto('immutable_rule_versions').values({ project, version: 1 }), this.dialect, ['project'], {
      version: sql`${sql.ref('immutable_rule_versions.version')} + 1`,
    }).execute();
  }
}

/** The TagsMetadata port on the registry's Kysely database. */
export class KyselyTagsStore implements TagsMetadata {
  private readonly db: Kysely<TagsDatabase>;
  private readonly statements: HistoryStatements;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
    /** Binds a MetadataTx of the same database to its Kysely transaction. */
    private readonly transactionOf: (tx: MetadataTx) => Transaction<Database>,
  ) {
    this.db = db as unknown as Kysely<TagsDatabase>;
    this.statements = historyStatements(this.db);
  }

  within(tx: MetadataTx): TagsTxQueries {
    return new TagsTxRows(this.transactionOf(tx) as unknown as Transaction<TagsDatabase>, this.dialect, this.statements);
  }

  rules(project: string): Promise<RuleSnapshot> {
    return rulesOf(this.db, project);
  }

  async history(query: HistoryQuery): Promise<TagHistoryEntry[]> {
    let q = this.db
      .selectFrom('tag_history as h')
      .innerJoin('repositories as r', 'r.id', 'h.repository_id')
      .select(['h.id', 'r.name', 'h.tag', 'h.old_digest', 'h.new_digest', 'h.at', 'h.actor', 'h.via'])
      .where('r.name', '=', query.repository)
      .where('h.at', '>=', query.since.getTime());
    if (query.tag !== undefined) q = q.where('h.tag', '=', query.tag);
    if (query.beforeId !== undefined) q = q.where('h.id', '<', query.beforeId);
    const rows = await q.orderBy('h.id', 'desc').limit(query.limit).execute();
    return rows.map((r) => ({
      id: Number(r.id),
      repository: r.name,
      tag: r.tag,
      oldDigest: r.old_digest,
      newDigest: r.new_digest,
      at: new Date(Number(r.at)),
      actor: r.actor,
      via: r.via as TagChangeKind,
    }));
  }

  async pointedTo(repository: string, tag: string, digest: string, since: Date): Promise<boolean> {
    const row = await this.db
      .selectFrom('tag_history as h')
      .innerJoin('repositories as r', 'r.id', 'h.repository_id')
      .select('h.id')
      .where('r.name', '=', repository)
      .where('h.tag', '=', tag)
      .where('h.at', '>=', since.getTime())
      .where((eb) => eb.or([eb('h.old_digest', '=', digest), eb('h.new_digest', '=', digest)]))
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  async pruneHistory(before: Date): Promise<number> {
    const result = await this.db.deleteFrom('tag_history').where('at', '<', before.getTime()).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
