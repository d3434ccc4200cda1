/**
 * GC cost is proportional to the garbage, not to the registry: collects 1,000 garbage blobs
 * in a registry that also holds 1,000 and then 50,000 live blobs, and prints both times
 * (plus the storage-accounting query at each size).
 *
 *   node --import tsx bench/gc-scaling.ts [liveSizes…]      e.g. … 1000 50000 200000
 *
 * The registry is seeded directly through the metadata database (bulk inserts, not HTTP),
 * then the garbage is made the way users make it: tags deleted through core, whose events
 * GC's review-queue consumer turns into candidates at the start of the run. The collector then runs for real (SQLite file,
 * filesystem blob store, bytes deleted).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { GarbageCollector } from '../src/gc/collector.js';
import { Registry } from '../src/core/registry.js';
import { EventDispatcher } from '../src/events/dispatcher.js';
import { gcReviewConsumer } from '../src/gc/review-consumer.js';
import { KyselyGcStore } from '../src/metadata/gc-store.js';
import { transactionOf, type KyselyMetadataStore } from '../src/metadata/kysely-store.js';
import { KyselyOutboxStore } from '../src/metadata/outbox-store.js';
import { openSqliteMetadata } from '../src/metadata/sqlite.js';
import { FilesystemBlobStore } from '../src/storage/filesystem.js';

const GARBAGE_BLOBS = 1_000;
const BLOBS_PER_MANIFEST = 10;
const CHUNK = 500;

interface Result {
  live: number;
  gcMs: number;
  deleted: { manifests: number; links: number; blobs: number };
  reviewed: number;
  storageQueryMs: number;
}

const digestOf = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function scenario(liveBlobs: number): Promise<Result> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-gc-bench-'));
  const metadata = await openSqliteMetadata(path.join(dir, 'berth.db'));
  const blobs = await new FilesystemBlobStore(path.join(dir, 'storage')).init();
  try {
    await seedManifests(metadata, 'live', liveBlobs);
    const garbageTags = await seedManifests(metadata, 'junk', GARBAGE_BLOBS, blobs);
    // Through core, as a client's DELETE would: each deletion appends a tag.deleted event.
    const registry = new Registry(blobs, metadata, {
      deleteEnabled: true,
      maxManifestSize: 1 << 22,
      maxBlobSize: 0,
      maxConcurrentUploads: 1,
      maxPageSize: 100,
    });
    for (const { repository, tag } of garbageTags) await registry.deleteManifest(repository, tag);

    const logger = pino({ level: 'silent' });
    const store = new KyselyGcStore(metadata.db, metadata.dialect, transactionOf);
    const events = new EventDispatcher(
      metadata,
      new KyselyOutboxStore(metadata.db, metadata.dialect, transactionOf),
      [gcReviewConsumer(store)],
      logger,
    );
    // The run includes delivering the deletions' events to GC's review queue (as every run does).
    const collector = new GarbageCollector(blobs, store, store, { gracePeriodMs: 0, untagged: 'delete', batchSize: 100 }, logger, () =>
      events.drain(store),
    );
    const started = performance.now();
    const report = await collector.run();
    const gcMs = performance.now() - started;
    if (report.counts.blobs !== GARBAGE_BLOBS) throw new Error(`expected ${GARBAGE_BLOBS} blobs collected, got ${report.counts.blobs}`);
    const usageStarted = performance.now();
    await store.storageUsage();
    return {
      live: liveBlobs,
      gcMs,
      deleted: { manifests: report.counts.manifests, links: report.counts.links, blobs: report.counts.blobs },
      reviewed: report.counts.reviewed,
      storageQueryMs: performance.now() - usageStarted,
    };
  } finally {
    await metadata.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Inserts `count` blobs in manifests of BLOBS_PER_MANIFEST layers, each manifest tagged, spread
 * over repositories of 100 manifests, as if reviewed long ago (nothing queued). With `bytes`,
 * the blobs' files are written too, so the collector has files to delete.
 */
async function seedManifests(
  metadata: KyselyMetadataStore,
  prefix: string,
  count: number,
  bytes?: FilesystemBlobStore,
): Promise<{ repository: string; tag: string }[]> {
  const db = metadata.db;
  const now = Date.now() - 3_600_000;
  const manifests = Math.ceil(count / BLOBS_PER_MANIFEST);
  const tags: { repository: string; tag: string }[] = [];
  await db.transaction().execute(async (trx) => {
    const repositoryIds = new Map<string, number>();
    const blobRows = [];
    const linkRows = [];
    const manifestRows = [];
    const referenceRows = [];
    const tagRows = [];
    for (let m = 0; m < manifests; m++) {
      const repository = `${prefix}/repo${Math.floor(m / 100)}`;
      if (!repositoryIds.has(repository)) {
        const row = await trx
          .insertInto('repositories')
          .values({ name: repository, created_at: now })
          .returning('id')
          .executeTakeFirstOrThrow();
        repositoryIds.set(repository, Number(row.id));
      }
      const repositoryId = repositoryIds.get(repository)!;
      const payload = Buffer.from(JSON.stringify({ schemaVersion: 2, nonce: randomBytes(8).toString('hex'), m }));
      const manifestDigest = digestOf(payload);
      for (let b = 0; b < BLOBS_PER_MANIFEST && m * BLOBS_PER_MANIFEST + b < count; b++) {
        const data = randomBytes(64);
        const digest = digestOf(data);
        blobRows.push({ digest, size: data.length, created_at: now });
        linkRows.push({ repository_id: repositoryId, digest, created_at: now });
        referenceRows.push({ repository_id: repositoryId, manifest_digest: manifestDigest, child_digest: digest, kind: 'layer' });
        if (bytes) {
          const file = bytes.blobPath(digest);
          await mkdir(path.dirname(file), { recursive: true });
          await writeFile(file, data);
        }
      }
      manifestRows.push({
        repository_id: repositoryId,
        digest: manifestDigest,
        media_type: 'application/vnd.oci.image.manifest.v1+json',
        artifact_type: null,
        subject_digest: null,
        annotations: null,
        size: payload.length,
        payload,
        created_at: now,
      });
      tagRows.push({ repository_id: repositoryId, name: `t${m}`, manifest_digest: manifestDigest, updated_at: now });
      tags.push({ repository, tag: `t${m}` });
    }
    for (const [table, rows] of [
      ['blobs', blobRows],
      ['repository_blobs', linkRows],
      ['manifests', manifestRows],
      ['manifest_references', referenceRows],
      ['tags', tagRows],
    ] as const) {
      for (let i = 0; i < rows.length; i += CHUNK)
        await trx
          .insertInto(table)
          .values(rows.slice(i, i + CHUNK) as never)
          .execute();
    }
  });
  return tags;
}

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const results: Result[] = [];
for (const live of sizes.length > 0 ? sizes : [1_000, 50_000]) {
  const result = await scenario(live);
  results.push(result);
  console.log(
    `live blobs ${String(live).padStart(7)}: collected ${result.deleted.blobs} blobs, ${result.deleted.links} links, ${result.deleted.manifests} manifests ` +
      `(${result.reviewed} queue rows) in ${result.gcMs.toFixed(0)} ms; storage accounting query ${result.storageQueryMs.toFixed(1)} ms`,
  );
}
if (results.length > 1) {
  const [first, last] = [results[0]!, results[results.length - 1]!];
  console.log(`registry ${(last.live / first.live).toFixed(0)}x larger -> GC time x${(last.gcMs / first.gcMs).toFixed(2)}`);
}
