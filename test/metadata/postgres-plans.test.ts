import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { CompiledQuery, sql, type Kysely, type KyselyPlugin, type RootOperationNode } from 'kysely';
import { KyselyMetadataStore } from '../../src/metadata/kysely-store.js';
import { createPostgresKysely, migratePostgres } from '../../src/metadata/postgres.js';
import type { Database } from '../../src/metadata/tables.js';
import { createTestDatabase, postgresOptions, type TestDatabase } from '../helpers/postgres.js';

/**
 * The hot listing queries must stay index-driven at scale: with 50,000 tags in one
 * repository (and 50,000 repositories), EXPLAIN of the tag page (`n=100&last=…`) and of
 * the catalog page shows index scans and no sequential scan, and the page query is timed.
 */
const TAG_COUNT = 50_000;
const REPOSITORY = 'big/app';

/** Records the query trees the store builds, so the test explains exactly what the store runs. */
class CaptureQueries implements KyselyPlugin {
  last: RootOperationNode | undefined;
  transformQuery(args: { node: RootOperationNode }): RootOperationNode {
    this.last = args.node;
    return args.node;
  }
  async transformResult<R>(args: { result: R }): Promise<R> {
    return args.result;
  }
}

describe('PostgreSQL query plans with 50,000 tags', () => {
  let database: TestDatabase;
  let db: Kysely<Database>;
  let store: KyselyMetadataStore;
  const capture = new CaptureQueries();

  before(async () => {
    database = await createTestDatabase();
    await migratePostgres(postgresOptions(database.url));
    db = createPostgresKysely(postgresOptions(database.url));
    store = new KyselyMetadataStore(db.withPlugin(capture), 'postgres', async () => {});
    const payload = Buffer.from('{"schemaVersion":2}');
    await store.transaction(async (tx) => {
      const { id } = await tx.repositories.ensure(REPOSITORY);
      await tx.manifests.put(
        {
          repositoryId: id,
          digest: 'sha256:' + 'a'.repeat(64),
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          artifactType: null,
          subjectDigest: null,
          annotations: null,
          size: payload.length,
          payload,
        },
        [],
      );
    });
    await sql`
      insert into tags (repository_id, name, manifest_digest, updated_at)
      select r.id, 'v' || lpad(i::text, 6, '0'), ${'sha256:' + 'a'.repeat(64)}, 0
      from repositories r, generate_series(1, ${TAG_COUNT}) as i
      where r.name = ${REPOSITORY}`.execute(db);
    await sql`
      insert into repositories (name, created_at)
      select 'team-' || (i % 100) || '/app-' || lpad(i::text, 6, '0'), 0 from generate_series(1, ${TAG_COUNT}) as i`.execute(db);
    await sql`analyze`.execute(db);
  });
  after(async () => {
    await db?.destroy();
    await database?.drop();
  });

  /** Runs `run` through the store, then EXPLAIN ANALYZEs the SQL it issued. */
  async function explainLast(run: () => Promise<unknown>): Promise<string> {
    await run();
    assert.ok(capture.last, 'the store issued a query');
    const compiled = db.getExecutor().compileQuery(capture.last, { queryId: 'explain' });
    const { rows } = await db.executeQuery<{ 'QUERY PLAN': string }>(
      CompiledQuery.raw(`explain (analyze, costs off) ${compiled.sql}`, [...compiled.parameters]),
    );
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  }

  /** Median wall time of `run` over `times` calls, in milliseconds. */
  async function medianMs(run: () => Promise<unknown>, times = 25): Promise<number> {
    await run(); // warm the connection and caches; the first call is not representative
    const samples: number[] = [];
    for (let i = 0; i < times; i++) {
      const start = performance.now();
      await run();
      samples.push(performance.now() - start);
    }
    samples.sort((a, b) => a - b);
    return Math.round(samples[Math.floor(times / 2)]! * 100) / 100;
  }

  it('tag page n=100&last=… uses the tags index, and is timed', async () => {
    const page = await store.manifests.tags(REPOSITORY, { limit: 100, after: 'v025000' });
    assert.equal(page.items.length, 100);
    assert.equal(page.items[0], 'v025001');
    assert.equal(page.more, true);

    const plan = await explainLast(() => store.manifests.tags(REPOSITORY, { limit: 100, after: 'v025000' }));
    console.log(`tag page plan:\n${plan}`);
    assert.doesNotMatch(plan, /Seq Scan on tags/);
    assert.match(plan, /Index (Only )?Scan using tags_pk on tags/);
    assert.doesNotMatch(plan, /Sort Method/, "rows come in index order; no sort over the repository's tags");

    const middle = await medianMs(() => store.manifests.tags(REPOSITORY, { limit: 100, after: 'v025000' }));
    const first = await medianMs(() => store.manifests.tags(REPOSITORY, { limit: 100 }));
    const last = await medianMs(() => store.manifests.tags(REPOSITORY, { limit: 100, after: 'v049950' }));
    console.log(
      `tag page timings (median of 25, ${TAG_COUNT} tags): first page ${first} ms, last=v025000 ${middle} ms, last page ${last} ms`,
    );
    assert.ok(middle < 250, `a tag page took ${middle} ms`);
  });

  it('catalog page n=100&last=… uses the repositories name index, and is timed', async () => {
    const page = await store.repositories.list({ limit: 100, after: 'team-5/' });
    assert.equal(page.items.length, 100);
    assert.ok(page.items.every((name) => name > 'team-5/'));

    const plan = await explainLast(() => store.repositories.list({ limit: 100, after: 'team-5/' }));
    console.log(`catalog page plan:\n${plan}`);
    assert.doesNotMatch(plan, /Seq Scan/);
    assert.match(plan, /Index (Only )?Scan using repositories_name_key on repositories/);

    const ms = await medianMs(() => store.repositories.list({ limit: 100, after: 'team-5/' }));
    console.log(`catalog page timing (median of 25, ${TAG_COUNT + 1} repositories): ${ms} ms`);
    assert.ok(ms < 250, `a catalog page took ${ms} ms`);
  });
});
