import { sql, type Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Indexed name search for GET /api/v1/search and the listings' `q` (docs/ui-api-notes.md › Search):
 * - PostgreSQL: `pg_trgm` GIN indexes on lower(name) of repositories and tags; the search keeps
 *   its `lower(name) like '%q%'` predicate, which the planner answers from them (a trusted
 *   extension: the database owner may create it since PostgreSQL 13).
 * - SQLite: FTS5 tables with the trigram tokenizer over the same rows (external content: they
 *   hold only the index), kept by triggers; the search asks them for candidates (q of 3
 *   characters or more) and rechecks the same LIKE, so the answers equal the scan's.
 * - MySQL/MariaDB: `tag_trigrams` and `repository_trigrams`, the distinct 3-character windows of
 *   each lower-cased name, kept by triggers (MariaDB has no ngram FULLTEXT parser); the search
 *   takes the names holding every trigram of q and rechecks the LIKE. Foreign-key cascades do not
 *   fire MySQL triggers, so a manifest's delete trigger drops its tags' trigrams first, and the
 *   search joins the tags table (a stale trigram row can never answer).
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  if (ctx.dialect === 'postgres') {
    await sql`create extension if not exists pg_trgm`.execute(db);
    await sql`create index repositories_name_trgm on repositories using gin (lower(name) gin_trgm_ops)`.execute(db);
    await sql`create index tags_name_trgm on tags using gin (lower(name) gin_trgm_ops)`.execute(db);
    return;
  }
  if (ctx.dialect === 'sqlite') {
    for (const [table, key] of [
      ['repositories', 'id'],
      ['tags', 'rowid'],
    ] as const) {
      const fts = sql.raw(`${table}_search`);
      const t = sql.raw(table);
      const k = sql.raw(key);
      await sql`create virtual table ${fts} using fts5(name, content='${t}', content_rowid='${k}', tokenize='trigram')`.execute(db);
      await sql`insert into ${fts}(${fts}) values ('rebuild')`.execute(db);
      await sql`create trigger ${sql.raw(`${table}_search_insert`)} after insert on ${t} begin
        insert into ${fts}(rowid, name) values (new.${k}, new.name); end`.execute(db);
      await sql`create trigger ${sql.raw(`${table}_search_delete`)} after delete on ${t} begin
        insert into ${fts}(${fts}, rowid, name) values ('delete', old.${k}, old.name); end`.execute(db);
      await sql`create trigger ${sql.raw(`${table}_search_update`)} after update of name on ${t} begin
        insert into ${fts}(${fts}, rowid, name) values ('delete', old.${k}, old.name);
        insert into ${fts}(rowid, name) values (new.${k}, new.name); end`.execute(db);
    }
    return;
  }
  await mysqlTrigrams(db, ctx);
}

async function mysqlTrigrams(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  await sql`create table repository_trigrams (
      gram ${t.key(3)} not null, repository_id bigint not null,
      primary key (gram, repository_id), key repository_trigrams_repository (repository_id))`.execute(db);
  await sql`create table tag_trigrams (
      gram ${t.key(3)} not null, repository_id bigint not null, name ${t.key(128)} not null,
      primary key (gram, repository_id, name), key tag_trigrams_tag (repository_id, name))`.execute(db);
  // One row per distinct 3-character window of the lower-cased name (a name may repeat a window).
  const windows = (target: string, columns: string) => `begin
      declare i int default 1;
      while i <= char_length(new.name) - 2 do
        insert ignore into ${target} values (substring(lower(new.name), i, 3), ${columns});
        set i = i + 1;
      end while;
    end`;
  const triggers = [
    `create trigger repository_trigrams_insert after insert on repositories for each row ${windows('repository_trigrams', 'new.id')}`,
    // A repository's delete cascades to its manifests and tags without firing their triggers.
    `create trigger repository_trigrams_delete after delete on repositories for each row begin
       delete from repository_trigrams where repository_id = old.id;
       delete from tag_trigrams where repository_id = old.id;
     end`,
    `create trigger tag_trigrams_insert after insert on tags for each row ${windows('tag_trigrams', 'new.repository_id, new.name')}`,
    `create trigger tag_trigrams_delete after delete on tags for each row delete from tag_trigrams where repository_id = old.repository_id and name = old.name`,
    // Tags deleted by the manifests' cascade fire no trigger on MySQL: drop their trigrams first.
    `create trigger tag_trigrams_manifest_delete before delete on manifests for each row
       delete g from tag_trigrams g join tags t on t.repository_id = g.repository_id and t.name = g.name
       where t.repository_id = old.repository_id and t.manifest_digest = old.digest`,
  ];
  for (const trigger of triggers) await sql.raw(trigger).execute(db);
  await sql`insert ignore into repository_trigrams (gram, repository_id)
    select substring(lower(r.name), w.i, 3), r.id from repositories r join (${windowNumbers()}) w on w.i <= char_length(r.name) - 2`.execute(
    db,
  );
  await sql`insert ignore into tag_trigrams (gram, repository_id, name)
    select substring(lower(t.name), w.i, 3), t.repository_id, t.name from tags t join (${windowNumbers()}) w on w.i <= char_length(t.name) - 2`.execute(
    db,
  );
}

/** 1…255 as a derived table (names are at most 255 characters). */
function windowNumbers() {
  return sql.raw(
    'select a.d + 16 * b.d + 1 as i from ' +
      [0, 1]
        .map((_, j) => `(${Array.from({ length: 16 }, (_, d) => `select ${d} as d`).join(' union all ')}) ${j === 0 ? 'a' : 'b'}`)
        .join(' cross join '),
  );
}
