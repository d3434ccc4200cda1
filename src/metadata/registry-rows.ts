import type { Transaction } from 'kysely';
import type { ManifestReference } from '../core/manifest.js';
import type { ManifestWrites, NewManifest, RepositoryWrites } from '../core/ports.js';
import { insertIfAbsent, insertOrKeep, insertOrUpdate, lockForUpdate, lockShared, type Dialect } from './dialect.js';
import type { Database } from './tables.js';

/**
 * The registry's rows, written inside one transaction. These classes move rows and take
 * the locks core asks for; the rules (what must exist, what a tag move means, which events
 * follow) are core's (src/core/registry.ts).
 */
export class RepositoryRows implements RepositoryWrites {
  constructor(
    private readonly trx: Transaction<Database>,
    private readonly dialect: Dialect,
  ) {}

  async id(repository: string): Promise<number | null> {
    const row = await this.trx.selectFrom('repositories').select('id').where('name', '=', repository).executeTakeFirst();
    return row ? Number(row.id) : null;
  }

  async ensure(repository: string): Promise<{ id: number; created: boolean }> {
    const created = await insertIfAbsent(
      this.trx.insertInto('repositories').values({ name: repository, created_at: Date.now() }),
      this.dialect,
      ['name'],
    );
    const row = await this.trx.selectFrom('repositories').select('id').where('name', '=', repository).executeTakeFirstOrThrow();
    return { id: Number(row.id), created };
  }

  async recordBlob(digest: string, size: number): Promise<void> {
    await insertOrKeep(this.trx.insertInto('blobs').values({ digest, size, created_at: Date.now() }), this.dialect, ['digest']).execute();
  }

  async lockBlob(digest: string): Promise<boolean> {
    const row = await lockShared(
      this.trx.selectFrom('blobs').select('digest').where('digest', '=', digest),
      this.dialect,
    ).executeTakeFirst();
    return row !== undefined;
  }

  async link(repositoryId: number, digest: string): Promise<void> {
    const now = Date.now();
    await insertOrUpdate(
      this.trx.insertInto('repository_blobs').values({ repository_id: repositoryId, digest, created_at: now }),
      this.dialect,
      ['repository_id', 'digest'],
      {
        created_at: now,
      },
    ).execute();
  }

  async unlink(repositoryId: number, digest: string): Promise<boolean> {
    const result = await this.trx
      .deleteFrom('repository_blobs')
      .where('repository_id', '=', repositoryId)
      .where('digest', '=', digest)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

export class ManifestRows implements ManifestWrites {
  constructor(
    private readonly trx: Transaction<Database>,
    private readonly dialect: Dialect,
  ) {}

  async missingReferences(repositoryId: number, refs: ManifestReference[]): Promise<ManifestReference[]> {
    const blobDigests = refs.filter((r) => r.kind !== 'manifest').map((r) => r.digest);
    const manifestDigests = refs.filter((r) => r.kind === 'manifest').map((r) => r.digest);
    const found = new Set<string>();
    for (const chunk of chunks(blobDigests, 500)) {
      const query = this.trx
        .selectFrom('repository_blobs')
        .select('digest')
        .where('repository_id', '=', repositoryId)
        .where('digest', 'in', chunk);
      for (const row of await lockShared(query, this.dialect).execute()) found.add(row.digest);
    }
    for (const chunk of chunks(manifestDigests, 500)) {
      const query = this.trx
        .selectFrom('manifests')
        .select('digest')
        .where('repository_id', '=', repositoryId)
        .where('digest', 'in', chunk);
      for (const row of await lockShared(query, this.dialect).execute()) found.add(row.digest);
    }
    return refs.filter((r) => !found.has(r.digest));
  }

  async put(m: NewManifest, references: ManifestReference[]): Promise<void> {
    const now = Date.now();
    await insertOrUpdate(
      this.trx.insertInto('manifests').values({
        repository_id: m.repositoryId,
        digest: m.digest,
        media_type: m.mediaType,
        artifact_type: m.artifactType,
        subject_digest: m.subjectDigest,
        annotations: m.annotations ? JSON.stringify(m.annotations) : null,
        size: m.size,
        payload: m.payload,
        created_at: now,
      }),
      this.dialect,
      ['repository_id', 'digest'],
      // Re-pushing refreshes created_at, which is the GC grace period's start for untagged
      // manifests; on PostgreSQL the upsert also waits for a collector deleting the row.
      { created_at: now },
    ).execute();
    if (references.length === 0) return;
    const rows = references.map((r) => ({
      repository_id: m.repositoryId,
      manifest_digest: m.digest,
      child_digest: r.digest,
      kind: r.kind,
    }));
    for (const chunk of chunks(rows, 500)) {
      await insertOrKeep(this.trx.insertInto('manifest_references').values(chunk), this.dialect, [
        'repository_id',
        'manifest_digest',
        'child_digest',
      ]).execute();
    }
  }

  async lock(repositoryId: number, digest: string): Promise<{ subject: string | null } | null> {
    const query = this.trx
      .selectFrom('manifests')
      .select('subject_digest')
      .where('repository_id', '=', repositoryId)
      .where('digest', '=', digest);
    const row = await lockForUpdate(query, this.dialect).executeTakeFirst();
    return row ? { subject: row.subject_digest } : null;
  }

  async references(repositoryId: number, digest: string): Promise<ManifestReference[]> {
    const rows = await this.trx
      .selectFrom('manifest_references')
      .select(['child_digest', 'kind'])
      .where('repository_id', '=', repositoryId)
      .where('manifest_digest', '=', digest)
      .orderBy('child_digest')
      .execute();
    return rows.map((r) => ({ digest: r.child_digest, kind: r.kind as ManifestReference['kind'] }));
  }

  async delete(repositoryId: number, digest: string): Promise<string[]> {
    const tags = await this.trx
      .selectFrom('tags')
      .select('name')
      .where('repository_id', '=', repositoryId)
      .where('manifest_digest', '=', digest)
      .orderBy('name')
      .execute();
    await this.trx.deleteFrom('tags').where('repository_id', '=', repositoryId).where('manifest_digest', '=', digest).execute();
    await this.trx
      .deleteFrom('manifest_references')
      .where('repository_id', '=', repositoryId)
      .where('manifest_digest', '=', digest)
      .execute();
    await this.trx.deleteFrom('manifests').where('repository_id', '=', repositoryId).where('digest', '=', digest).execute();
    return tags.map((t) => t.name);
  }

  async tagTargets(repositoryId: number, tags: string[]): Promise<Map<string, string>> {
    const targets = new Map<string, string>();
    for (const chunk of chunks(tags, 500)) {
      const rows = await this.trx
        .selectFrom('tags')
        .select(['name', 'manifest_digest'])
        .where('repository_id', '=', repositoryId)
        .where('name', 'in', chunk)
        .execute();
      for (const row of rows) targets.set(row.name, row.manifest_digest);
    }
    return targets;
  }

  async setTag(repositoryId: number, tag: string, digest: string): Promise<void> {
    const now = Date.now();
    await insertOrUpdate(
      this.trx.insertInto('tags').values({ repository_id: repositoryId, name: tag, manifest_digest: digest, updated_at: now }),
      this.dialect,
      ['repository_id', 'name'],
      {
        manifest_digest: digest,
        updated_at: now,
      },
    ).execute();
  }

  async deleteTag(repositoryId: number, tag: string): Promise<string | null> {
    const row = await this.trx
      .selectFrom('tags')
      .select('manifest_digest')
      .where('repository_id', '=', repositoryId)
      .where('name', '=', tag)
      .executeTakeFirst();
    if (!row) return null;
    await this.trx.deleteFrom('tags').where('repository_id', '=', repositoryId).where('name', '=', tag).execute();
    return row.manifest_digest;
  }

  async deleteTags(repositoryId: number, tags: string[]): Promise<void> {
    for (const chunk of chunks(tags, 500))
      await this.trx.deleteFrom('tags').where('repository_id', '=', repositoryId).where('name', 'in', chunk).execute();
  }
}

function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
