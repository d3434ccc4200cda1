import { sql, type Kysely } from 'kysely';
import type { BlobRow, BrokenReference, FsckMetadata, ManifestRow, ManifestUse, UploadRow } from '../fsck/types.js';
import { firstPathSegment, type AnyDb, type Dialect } from './dialect.js';
import type { Database } from './tables.js';
import { repositoriesLinking } from './kysely-store.js';

/**
 * The queries `berth fsck` needs, on Kysely (SQLite, PostgreSQL and MySQL alike: plain
 * SELECTs and DELETEs, nothing dialect-specific; `dialect` is kept for parity with the other adapters).
 */
export class KyselyFsckStore implements FsckMetadata {
  constructor(
    private readonly db: Kysely<Database>,
    readonly dialect: Dialect = 'sqlite',
  ) {}

  async blobRows(after: string | undefined, limit: number): Promise<BlobRow[]> {
    let query = this.db.selectFrom('blobs').select(['digest', 'size']).orderBy('digest').limit(limit);
    if (after !== undefined) query = query.where('digest', '>', after);
    return (await query.execute()).map((r) => ({ digest: r.digest, size: Number(r.size) }));
  }

  async knownBlobs(digests: string[]): Promise<Set<string>> {
    if (digests.length === 0) return new Set();
    const rows = await this.db.selectFrom('blobs').select('digest').where('digest', 'in', digests).execute();
    return new Set(rows.map((r) => r.digest));
  }

  async linkingRepositories(digest: string): Promise<string[]> {
    return repositoriesLinking(this.db, digest);
  }

  async manifestsUsing(digest: string): Promise<ManifestUse[]> {
    const rows = await this.db
      .selectFrom('manifest_references as mr')
      .innerJoin('repositories as r', 'r.id', 'mr.repository_id')
      .select(['r.name', 'mr.manifest_digest'])
      .where('mr.child_digest', '=', digest)
      .orderBy('r.name')
      .orderBy('mr.manifest_digest')
      .execute();
    return rows.map((r) => ({ repository: r.name, manifest: r.manifest_digest }));
  }

  async brokenReferences(limit: number): Promise<BrokenReference[]> {
    const toBlobs = await this.db
      .selectFrom('manifest_references as mr')
      .innerJoin('repositories as r', 'r.id', 'mr.repository_id')
      .leftJoin('repository_blobs as rb', (join) =>
        join.onRef('rb.repository_id', '=', 'mr.repository_id').onRef('rb.digest', '=', 'mr.child_digest'),
      )
      .select(['r.name', 'mr.manifest_digest', 'mr.child_digest', 'mr.kind'])
      .where('mr.kind', '!=', 'manifest')
      .where('rb.digest', 'is', null)
      .orderBy('r.name')
      .orderBy('mr.manifest_digest')
      .limit(limit)
      .execute();
    const toManifests = await this.db
      .selectFrom('manifest_references as mr')
      .innerJoin('repositories as r', 'r.id', 'mr.repository_id')
      .leftJoin('manifests as m', (join) =>
        join.onRef('m.repository_id', '=', 'mr.repository_id').onRef('m.digest', '=', 'mr.child_digest'),
      )
      .select(['r.name', 'mr.manifest_digest', 'mr.child_digest', 'mr.kind'])
      .where('mr.kind', '=', 'manifest')
      .where('m.digest', 'is', null)
      .orderBy('r.name')
      .orderBy('mr.manifest_digest')
      .limit(limit)
      .execute();
    return [...toBlobs, ...toManifests]
      .slice(0, limit)
      .map((r) => ({ repository: r.name, manifest: r.manifest_digest, child: r.child_digest, kind: r.kind }));
  }

  async manifests(after: { repository: string; digest: string } | undefined, limit: number): Promise<ManifestRow[]> {
    let query = this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['r.name', 'm.digest', 'm.payload'])
      .orderBy('r.name')
      .orderBy('m.digest')
      .limit(limit);
    if (after !== undefined) {
      query = query.where((eb) =>
        eb.or([eb('r.name', '>', after.repository), eb.and([eb('r.name', '=', after.repository), eb('m.digest', '>', after.digest)])]),
      );
    }
    return (await query.execute()).map((r) => ({
      repository: r.name,
      digest: r.digest,
      payload: Buffer.isBuffer(r.payload) ? r.payload : Buffer.from(r.payload),
    }));
  }

  async countManifests(): Promise<number> {
    const row = await this.db
      .selectFrom('manifests')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async uploadRows(after: string | undefined, limit: number): Promise<UploadRow[]> {
    let query = this.db.selectFrom('uploads').select(['id', 'repository', 'size', 'updated_at']).orderBy('id').limit(limit);
    if (after !== undefined) query = query.where('id', '>', after);
    return (await query.execute()).map((r) => ({
      id: r.id,
      repository: r.repository,
      size: Number(r.size),
      updatedAt: new Date(Number(r.updated_at)),
    }));
  }

  async knownUploads(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.db.selectFrom('uploads').select('id').where('id', 'in', ids).execute();
    return new Set(rows.map((r) => r.id));
  }

  async deleteUnreferencedBlobRow(digest: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const used = await trx
        .selectFrom('manifest_references')
        .select('child_digest')
        .where('child_digest', '=', digest)
        .limit(1)
        .executeTakeFirst();
      if (used) return false;
      await trx.deleteFrom('repository_blobs').where('digest', '=', digest).execute();
      const result = await trx.deleteFrom('blobs').where('digest', '=', digest).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }

  async deleteUploadRow(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('uploads').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  orphanRepositories(after: string | undefined, limit: number): Promise<string[]> {
    return orphanRepositoryNames(this.db, this.dialect, after, limit);
  }
}

/**
 * Repositories whose project (the first path component) has no `projects` row, by name,
 * strictly after `after`: content pushed with auth.mode none, or by an admin with project
 * autocreation off. (Shared by fsck and the auth store's start-up adoption of orphans.)
 */
export async function orphanRepositoryNames(
  db: AnyDb<Database>,
  dialect: Dialect,
  after: string | undefined,
  limit: number,
): Promise<string[]> {
  const project = firstPathSegment('r.name', dialect);
  const from = after === undefined ? sql`` : sql`and r.name > ${after}`;
  const rows = await sql<{ name: string }>`
    select r.name from repositories r
    where not exists (select 1 from projects p where p.name = ${project}) ${from}
    order by r.name limit ${sql.raw(String(Math.max(0, Math.trunc(limit))))}`.execute(db);
  return rows.rows.map((r) => r.name);
}

/** Whether repository `project` or any `project/…` exists (names compare bytewise; '/' + 1 is '0'). */
export async function projectHasRepositories(db: AnyDb<Database>, project: string): Promise<boolean> {
  const row = await db
    .selectFrom('repositories')
    .select('name')
    .where((eb) => eb.or([eb('name', '=', project), eb.and([eb('name', '>', `${project}/`), eb('name', '<', `${project}0`)])]))
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}
