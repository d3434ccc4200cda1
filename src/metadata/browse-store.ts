import { sql, type Kysely, type RawBuilder } from 'kysely';
import type {
  After,
  BrowseQueries,
  ManifestRow,
  Order,
  RepositoryRow,
  RepositorySort,
  RepositoryStats,
  ScanBadgeRow,
  TagRow,
  TagSort,
} from '../browse/ports.js';
import type { Dialect } from './dialect.js';
import type { Database } from './tables.js';

type Row = Record<string, unknown>;

/** `%q%` for LIKE, lower-cased, with LIKE's own characters escaped by '!'. */
function containing(q: string): string {
  return `%${q.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`)}%`;
}

function like(column: string, q: string | undefined): RawBuilder<unknown> {
  return q ? sql`and lower(${sql.ref(column)}) like ${containing(q)} escape '!'` : sql``;
}

function inList(values: readonly (string | number)[]): RawBuilder<unknown> {
  return sql`(${sql.join(values.map((v) => sql`${v}`))})`;
}

const asNumber = (v: unknown): number => Number(v ?? 0);

/** The search index's unit: a query shorter than this is answered by the scan alone. */
const TRIGRAM = 3;

/** The distinct 3-character windows of the lower-cased `q` (MySQL's trigram tables). */
function trigramsOf(q: string): string[] {
  const lower = [...q.toLowerCase()];
  return [...new Set(lower.slice(0, lower.length - TRIGRAM + 1).map((_, i) => lower.slice(i, i + TRIGRAM).join('')))];
}

/** `q` as an FTS5 phrase: with the trigram tokenizer, the rows whose name contains it (case-insensitive). */
function ftsPhrase(q: string): string {
  return `"${q.replace(/"/g, '""')}"`;
}

function manifestRow(r: Row): ManifestRow {
  return {
    digest: r.digest as string,
    mediaType: r.media_type as string,
    artifactType: (r.artifact_type as string | null) ?? null,
    annotations: (r.annotations as string | null) ?? null,
    subject: (r.subject_digest as string | null) ?? null,
    size: asNumber(r.size),
    payload: r.payload as Uint8Array,
    createdAt: asNumber(r.created_at),
  };
}

/**
 * The web UI's listings on Kysely, one SQL text for SQLite, PostgreSQL and MySQL. Repository
 * pages walk the unique index on repositories.name (a project is the range [p/, p0) plus p
 * itself, byte order); tag pages walk tags' primary key (repository, name) or tags_updated
 * (repository, updated_at, name) from migration 0024. Badges are one statement per page.
 */
export class KyselyBrowseStore implements BrowseQueries {
  private readonly db: Kysely<Database>;
  private readonly dialect: Dialect;

  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.db = db;
    this.dialect = dialect;
  }

  /**
   * Candidates from the search index of migration 0027 (repositories by id, tags by row), ANDed
   * with the LIKE that decides: SQLite's FTS5 trigram table, MySQL's trigram table; on PostgreSQL
   * the LIKE itself is answered from the pg_trgm GIN index. Empty below 3 characters (the scan).
   */
  private indexed(kind: 'repositories' | 'tags', q: string): RawBuilder<unknown> {
    if ([...q].length < TRIGRAM || this.dialect === 'postgres') return sql``;
    if (this.dialect === 'sqlite') {
      return kind === 'repositories'
        ? sql`and r.id in (select rowid from repositories_search where repositories_search match ${ftsPhrase(q)})`
        : sql`and t.rowid in (select rowid from tags_search where tags_search match ${ftsPhrase(q)})`;
    }
    const grams = trigramsOf(q);
    return kind === 'repositories'
      ? sql`and r.id in (select g.repository_id from repository_trigrams g where g.gram in ${inList(grams)} group by g.repository_id having count(*) = ${grams.length})`
      : sql`and (t.repository_id, t.name) in (select g.repository_id, g.name from tag_trigrams g where g.gram in ${inList(grams)} group by g.repository_id, g.name having count(*) = ${grams.length})`;
  }

  private async rows(query: RawBuilder<unknown>): Promise<Row[]> {
    return (await query.execute(this.db)).rows as Row[];
  }

  async repositoryId(name: string): Promise<number | null> {
    const [row] = await this.rows(sql`select id from repositories where name = ${name}`);
    return row ? asNumber(row.id) : null;
  }

  private projectRange(project: string): RawBuilder<unknown> {
    // One index range [p, p0) (an OR of two ranges would make SQLite sort the whole project),
    // then names between p and p/ that belong to other projects (p-x, p.x) are filtered out.
    return sql`r.name >= ${project} and r.name < ${`${project}0`} and (r.name = ${project} or r.name >= ${`${project}/`}) and exists (select 1 from manifests m where m.repository_id = r.id)`;
  }

  async repositories(
    project: string,
    q: string | undefined,
    sort: RepositorySort,
    order: Order,
    limit: number,
    after: After | null,
  ): Promise<RepositoryRow[]> {
    const cmp = order === 'asc' ? sql`>` : sql`<`;
    const dir = order === 'asc' ? sql`asc` : sql`desc`;
    const pushed = sql`(select max(m2.created_at) from manifests m2 where m2.repository_id = r.id)`;
    const pulls = sql`(select coalesce(sum(p.pulls), 0) from pull_stats p where p.repository_id = r.id)`;
    let rows: Row[];
    if (sort === 'name') {
      rows = await this.rows(sql`
        select r.id, r.name, ${pushed} as pushed_at, ${pulls} as pulls from repositories r
        where ${this.projectRange(project)} ${like('r.name', q)} ${after ? sql`and r.name ${cmp} ${after.name}` : sql``}
        order by r.name ${dir} limit ${limit}`);
    } else {
      // Sorting by an aggregate reads the project's repositories once (their manifests' or pull
      // statistics' primary keys), then pages on (key, name).
      const key = sort === 'pushed' ? sql.ref('t.pushed_at') : sql.ref('t.pulls');
      rows = await this.rows(sql`
        select * from (select r.id, r.name, ${pushed} as pushed_at, ${pulls} as pulls from repositories r
          where ${this.projectRange(project)} ${like('r.name', q)}) t
        ${after ? sql`where (${key} ${cmp} ${after.key ?? 0} or (${key} = ${after.key ?? 0} and t.name ${cmp} ${after.name}))` : sql``}
        order by ${key} ${dir}, t.name ${dir} limit ${limit}`);
    }
    return rows.map((r) => ({
      id: asNumber(r.id),
      name: r.name as string,
      pushedAt: r.pushed_at === null ? null : asNumber(r.pushed_at),
      pulls: asNumber(r.pulls),
    }));
  }

  async countRepositories(project: string, q: string | undefined): Promise<number> {
    const [row] = await this.rows(sql`select count(*) as c from repositories r where ${this.projectRange(project)} ${like('r.name', q)}`);
    return asNumber(row?.c);
  }

  async repositoryStats(ids: number[]): Promise<Map<number, RepositoryStats>> {
    const stats = new Map<number, RepositoryStats>(ids.map((id) => [id, { tagCount: 0, size: 0 }]));
    if (ids.length === 0) return stats;
    for (const r of await this.rows(
      sql`select repository_id, count(*) as c from tags where repository_id in ${inList(ids)} group by repository_id`,
    )) {
      stats.get(asNumber(r.repository_id))!.tagCount = asNumber(r.c);
    }
    for (const r of await this.rows(
      sql`select rb.repository_id, sum(b.size) as s from repository_blobs rb join blobs b on b.digest = rb.digest where rb.repository_id in ${inList(ids)} group by rb.repository_id`,
    )) {
      stats.get(asNumber(r.repository_id))!.size = asNumber(r.s);
    }
    return stats;
  }

  async tags(
    repositoryId: number,
    q: string | undefined,
    sort: TagSort,
    order: Order,
    limit: number,
    after: After | null,
  ): Promise<TagRow[]> {
    const cmp = order === 'asc' ? sql`>` : sql`<`;
    const dir = order === 'asc' ? sql`asc` : sql`desc`;
    const keyset = !after
      ? sql``
      : sort === 'name'
        ? sql`and t.name ${cmp} ${after.name}`
        : sql`and (t.updated_at ${cmp} ${after.key ?? 0} or (t.updated_at = ${after.key ?? 0} and t.name ${cmp} ${after.name}))`;
    const orderBy = sort === 'name' ? sql`t.name ${dir}` : sql`t.updated_at ${dir}, t.name ${dir}`;
    // The page of tags first (an index range and LIMIT), then its manifests: a planner that
    // misjudges the repository's size (stale statistics after a bulk push) joins 51 rows, not 20,000.
    const rows = await this.rows(sql`
      select t.name as tag, t.manifest_digest as digest, t.updated_at, m.media_type, m.artifact_type, m.annotations, m.size, m.payload
      from (select t.repository_id, t.name, t.manifest_digest, t.updated_at from tags t
            where t.repository_id = ${repositoryId} ${like('t.name', q)} ${keyset}
            order by ${orderBy} limit ${limit}) t
      join manifests m on m.repository_id = t.repository_id and m.digest = t.manifest_digest
      order by ${orderBy}`);
    return rows.map((r) => ({
      tag: r.tag as string,
      digest: r.digest as string,
      mediaType: r.media_type as string,
      artifactType: (r.artifact_type as string | null) ?? null,
      annotations: (r.annotations as string | null) ?? null,
      size: asNumber(r.size),
      payload: r.payload as Uint8Array,
      pushedAt: asNumber(r.updated_at),
    }));
  }

  async countTags(repositoryId: number, q: string | undefined): Promise<number> {
    const [row] = await this.rows(sql`select count(*) as c from tags t where t.repository_id = ${repositoryId} ${like('t.name', q)}`);
    return asNumber(row?.c);
  }

  async manifests(repositoryId: number, digests: string[]): Promise<ManifestRow[]> {
    if (digests.length === 0) return [];
    return (await this.rows(sql`select * from manifests where repository_id = ${repositoryId} and digest in ${inList(digests)}`)).map(
      manifestRow,
    );
  }

  async referrersOf(repositoryId: number, digests: string[]): Promise<ManifestRow[]> {
    if (digests.length === 0) return [];
    return (
      await this.rows(sql`select * from manifests where repository_id = ${repositoryId} and subject_digest in ${inList(digests)}`)
    ).map(manifestRow);
  }

  async existingTags(repositoryId: number, names: string[]): Promise<Map<string, string>> {
    if (names.length === 0) return new Map();
    const rows = await this.rows(
      sql`select name, manifest_digest from tags where repository_id = ${repositoryId} and name in ${inList(names)}`,
    );
    return new Map(rows.map((r) => [r.name as string, r.manifest_digest as string]));
  }

  async tagDigest(repositoryId: number, tag: string): Promise<string | null> {
    const [row] = await this.rows(sql`select manifest_digest from tags where repository_id = ${repositoryId} and name = ${tag}`);
    return row ? (row.manifest_digest as string) : null;
  }

  async tagsOf(repositoryId: number, digest: string): Promise<string[]> {
    const rows = await this.rows(
      sql`select name from tags where repository_id = ${repositoryId} and manifest_digest = ${digest} order by name`,
    );
    return rows.map((r) => r.name as string);
  }

  async pulls(repositoryId: number, digests: string[]): Promise<Map<string, { pulls: number; lastPulledAt: number }>> {
    const out = new Map<string, { pulls: number; lastPulledAt: number }>();
    if (digests.length === 0) return out;
    for (const r of await this.rows(
      sql`select digest, pulls, last_pulled_at from pull_stats where repository_id = ${repositoryId} and digest in ${inList(digests)}`,
    )) {
      out.set(r.digest as string, { pulls: asNumber(r.pulls), lastPulledAt: asNumber(r.last_pulled_at) });
    }
    return out;
  }

  async scans(digests: string[]): Promise<ScanBadgeRow[]> {
    if (digests.length === 0) return [];
    const rows = await this.rows(sql`select digest, status, summary from scan_results where digest in ${inList(digests)}`);
    return rows.map((r) => ({ digest: r.digest as string, status: r.status as string, summary: r.summary as string }));
  }

  async searchRepositories(q: string, limit: number, after: string | null): Promise<string[]> {
    const rows = await this.rows(sql`
      select r.name from repositories r
      where lower(r.name) like ${containing(q)} escape '!' ${this.indexed('repositories', q)} ${after !== null ? sql`and r.name > ${after}` : sql``}
        and exists (select 1 from manifests m where m.repository_id = r.id)
      order by r.name limit ${limit}`);
    return rows.map((r) => r.name as string);
  }

  async searchTags(
    q: string,
    limit: number,
    after: { repository: string; tag: string } | null,
  ): Promise<{ repository: string; tag: string; digest: string }[]> {
    const rows = await this.rows(sql`
      select r.name as repository, t.name as tag, t.manifest_digest as digest from tags t join repositories r on r.id = t.repository_id
      where lower(t.name) like ${containing(q)} escape '!' ${this.indexed('tags', q)}
        ${after ? sql`and (r.name > ${after.repository} or (r.name = ${after.repository} and t.name > ${after.tag}))` : sql``}
      order by r.name, t.name limit ${limit}`);
    return rows.map((r) => ({ repository: r.repository as string, tag: r.tag as string, digest: r.digest as string }));
  }

  async manifestDigests(repositoryId: number): Promise<string[]> {
    const rows = await this.rows(sql`select digest, subject_digest from manifests where repository_id = ${repositoryId}`);
    return rows.sort((a, b) => Number(b.subject_digest !== null) - Number(a.subject_digest !== null)).map((r) => r.digest as string);
  }
}
