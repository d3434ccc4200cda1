/**
 * Retention at scale: a project of 500 repositories × 50 tags (each tag its own image: a config
 * and a layer), policy "keep the 10 latest pushed" — so a run removes 40 tags per repository,
 * 20,000 in all. Times a dry run, then the real run, on the same wiring as the server (core with
 * every registered policy hook, so each tag delete pays what a DELETE /v2 would), and checks the
 * dry-run report equals the real one.
 *
 *   node --import tsx bench/retention-scaling.ts [sqlite|postgres] [repositories] [tags]
 *
 * PostgreSQL: a scratch database on BERTH_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
 * The metadata is seeded directly (bulk inserts, not HTTP); blob bytes are not needed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pino from 'pino';
import { compose } from '../src/compose.js';
import { resolveConfigPaths } from '../src/config/load.js';
import { configSchema } from '../src/config/schema.js';
import type { KyselyMetadataStore } from '../src/metadata/kysely-store.js';
import { openStores } from '../src/stores.js';
import { createTestDatabase, type TestDatabase } from '../test/helpers/postgres.js';

const [driver = 'sqlite', repositoriesArg = '500', tagsArg = '50'] = process.argv.slice(2);
const REPOSITORIES = Number(repositoriesArg);
const TAGS = Number(tagsArg);
const KEEP = 10;
const CHUNK = 500;

const digestOf = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** One project `bench` of REPOSITORIES × TAGS tagged images, pushed a second apart (so "latest" is well defined). */
async function seed(metadata: KyselyMetadataStore): Promise<void> {
  const db = metadata.db;
  const start = Date.now() - 86_400_000;
  for (let r = 0; r < REPOSITORIES; r++) {
    const row =
      (await db
        .insertInto('repositories')
        .values({ name: `bench/repo${r}`, created_at: start })
        .returning('id')
        .executeTakeFirst()) ??
      (await db.selectFrom('repositories').select('id').where('name', '=', `bench/repo${r}`).executeTakeFirstOrThrow());
    const repositoryId = Number(row.id);
    const blobs = [];
    const links = [];
    const manifests = [];
    const references = [];
    const tags = [];
    for (let t = 0; t < TAGS; t++) {
      const at = start + t * 1000;
      const config = randomBytes(32);
      const layer = randomBytes(64);
      const payload = Buffer.from(JSON.stringify({ schemaVersion: 2, config: digestOf(config), layers: [digestOf(layer)] }));
      const digest = digestOf(payload);
      for (const data of [config, layer]) {
        blobs.push({ digest: digestOf(data), size: data.length, created_at: at });
        links.push({ repository_id: repositoryId, digest: digestOf(data), created_at: at });
        references.push({
          repository_id: repositoryId,
          manifest_digest: digest,
          child_digest: digestOf(data),
          kind: data === config ? 'config' : 'layer',
        });
      }
      manifests.push({
        repository_id: repositoryId,
        digest,
        media_type: 'application/vnd.oci.image.manifest.v1+json',
        artifact_type: null,
        subject_digest: null,
        annotations: null,
        size: payload.length,
        payload,
        created_at: at,
      });
      tags.push({ repository_id: repositoryId, name: `v${t}`, manifest_digest: digest, updated_at: at });
    }
    for (const [table, rows] of [
      ['blobs', blobs],
      ['repository_blobs', links],
      ['manifests', manifests],
      ['manifest_references', references],
      ['tags', tags],
    ] as const) {
      for (let i = 0; i < rows.length; i += CHUNK)
        await db
          .insertInto(table)
          .values(rows.slice(i, i + CHUNK) as never)
          .execute();
    }
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-retention-bench-'));
  let database: TestDatabase | undefined;
  if (driver === 'postgres') database = await createTestDatabase('berth_retention_bench');
  const config = resolveConfigPaths(
    configSchema.parse({
      data: { dir },
      gc: { enabled: false },
      ...(database ? { metadata: { driver: 'postgres', url: database.url } } : {}),
    }),
  );
  const stores = await openStores(config);
  try {
    const { retention } = compose(config, stores, pino({ level: 'silent' }));
    const seeded = performance.now();
    await seed(stores.metadata);
    const seedMs = performance.now() - seeded;
    // Planner statistics, as a database that has been in use has them (a fresh bulk load has none).
    if (driver === 'postgres') await sql`analyze`.execute(stores.metadata.db);
    await retention.setPolicy('bench', { rules: [{ template: 'latestPushedK', count: KEEP }] }, 'bench');

    const timed = async (dryRun: boolean) => {
      const started = performance.now();
      const run = await retention.run('bench', { dryRun, trigger: 'manual', actor: 'bench' });
      if (run.status !== 'ok') throw new Error(`run failed: ${JSON.stringify(run.summary)}`);
      return { ms: performance.now() - started, run };
    };
    const dry = await timed(true);
    const real = await timed(false);
    const totals = real.run.report!.totals;
    const expected = REPOSITORIES * (TAGS - KEEP);
    if (totals.tagsRemoved !== expected) throw new Error(`expected ${expected} tags removed, got ${totals.tagsRemoved}`);
    const after = await stores.metadata.db
      .selectFrom('tags')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    console.log(
      JSON.stringify(
        {
          driver,
          repositories: REPOSITORIES,
          tagsPerRepository: TAGS,
          policy: `latestPushedK ${KEEP}`,
          seedMs: Math.round(seedMs),
          dryRunMs: Math.round(dry.ms),
          realRunMs: Math.round(real.ms),
          dryRunEqualsRealRun: isDeepStrictEqual(dry.run.report, real.run.report),
          totals,
          tagsLeft: Number(after.n),
        },
        null,
        2,
      ),
    );
  } finally {
    await stores.close();
    await database?.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
