import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import SQLite from 'better-sqlite3';
import { sql, type Kysely } from 'kysely';
import { applyEnvOverrides, resolveConfigPaths } from '../../src/config/load.js';
import { configSchema, type BerthConfig } from '../../src/config/schema.js';
import { EVENTS_LEASE } from '../../src/events/dispatcher.js';
import { GC_REVIEW_CONSUMER } from '../../src/gc/review-consumer.js';
import { openStores, type Stores } from '../../src/stores.js';
import * as mysqlHelper from '../helpers/mysql.js';
import * as postgresHelper from '../helpers/postgres.js';
import { makeBlob, makeImage, RegistryClient, type Blob, type Image } from '../helpers/registry-client.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';

/**
 * The outbox survives kill -9 between commit and consumption, and the gc-review consumer
 * (transactional: its queue rows and its cursor commit together) sees every event exactly
 * once, on every metadata database.
 *
 * 1. Pushes with the dispatcher idle (events.interval 1h), kill -9: the events are committed
 *    and unsequenced, the consumer has no cursor. A restart (interval 200ms) consumes them:
 *    the queue holds exactly the expected candidates. Then the queue is emptied (as a GC
 *    review would) and the process is killed and restarted again: any redelivery would
 *    re-create rows, so an empty queue and an unchanged cursor show none happened.
 * 2. kill -9 DURING consumption: many events (several 500-event batches). PostgreSQL/MySQL:
 *    the test holds an uncommitted queue row of an event in the second batch, so the consumer's
 *    second transaction blocks on it after the first committed; the process is killed while
 *    that transaction is open. SQLite (one writer): the test takes the write lock as soon as
 *    the cursor is seen between the first and the last position, and kills the process
 *    while its dispatch round is stuck. The rows of the committed batch are then deleted
 *    (GC reviewed them while the process was down): after the restart they must stay gone
 *    (no redelivery of the committed batch), and every later event must be queued once.
 */

type Db = 'sqlite' | 'postgres' | 'mysql';
const BATCH = 500; // EventDispatcher's default batch size (compose.ts does not change it)
const BULK_BLOBS = 1_200;

interface Deployment {
  dataDir: string;
  env: NodeJS.ProcessEnv;
  config: BerthConfig;
  drop(): Promise<void>;
}

async function deploy(db: Db): Promise<Deployment> {
  const dataDir = tempDir(`berth-outbox-${db}-`);
  let drop = async () => {};
  const env: NodeJS.ProcessEnv = { BERTH_DATA_DIR: dataDir, BERTH_GC_ENABLED: 'false', BERTH_METADATA_DRIVER: db };
  if (db !== 'sqlite') {
    // Throws (the test fails, never skips) with a message naming the unreachable server.
    const database = await (db === 'postgres' ? postgresHelper : mysqlHelper).createTestDatabase('berth_outbox');
    env.BERTH_METADATA_URL = database.url;
    drop = () => database.drop();
  }
  const config = resolveConfigPaths(configSchema.parse(applyEnvOverrides({ data: { dir: dataDir } }, env)));
  return { dataDir, env, config, drop };
}

// The test reads tables of several features (outbox, GC queue, leases) by name.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyTables = any;

function dbOf(stores: Stores): Kysely<AnyTables> {
  return stores.metadata.db as unknown as Kysely<AnyTables>;
}

interface QueueRow {
  key: string;
  kind: string;
  repository: string;
  digest: string;
  queuedAt: number;
}

async function readQueue(stores: Stores): Promise<QueueRow[]> {
  const rows = await dbOf(stores)
    .selectFrom('gc_review_queue as q')
    .leftJoin('repositories as r', 'r.id', 'q.repository_id')
    .select(['q.kind', 'q.digest', 'q.queued_at', 'r.name'])
    .execute();
  return rows.map((r) => ({
    key: `${r.kind} ${r.name ?? ''} ${r.digest}`,
    kind: r.kind,
    repository: r.name ?? '',
    digest: r.digest,
    queuedAt: Number(r.queued_at),
  }));
}

async function readEvents(
  stores: Stores,
): Promise<{ id: number; seq: number | null; type: string; createdAt: number; payload: Record<string, unknown> }[]> {
  const rows = await dbOf(stores).selectFrom('events').select(['id', 'seq', 'type', 'payload', 'created_at']).orderBy('id').execute();
  return rows.map((r) => ({
    id: Number(r.id),
    seq: r.seq === null ? null : Number(r.seq),
    type: r.type,
    createdAt: Number(r.created_at),
    payload: JSON.parse(r.payload),
  }));
}

async function leaseHolder(stores: Stores, name: string): Promise<string | null> {
  const row = await dbOf(stores).selectFrom('leases').select(['holder']).where('name', '=', name).executeTakeFirst();
  return row?.holder ?? null;
}

/** Polls until every event is sequenced and the gc-review cursor reached the last position. */
async function waitConsumed(stores: Stores, seen: number[], timeoutMs = 60_000): Promise<{ lastSeq: number; cursor: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await stores.outbox.status();
    const cursor = status.cursors[GC_REVIEW_CONSUMER];
    if (cursor !== undefined) seen.push(cursor);
    if (status.unsequenced === 0 && status.lastSeq > 0 && cursor === status.lastSeq) return { lastSeq: status.lastSeq, cursor };
    if (Date.now() > deadline) throw new Error(`events not consumed within ${timeoutMs} ms: ${JSON.stringify(status)}`);
    await sleep(50);
  }
}

function assertMonotonic(seen: number[], what: string): void {
  for (let i = 1; i < seen.length; i++)
    assert.ok(seen[i]! >= seen[i - 1]!, `${what}: the gc-review cursor went backwards (${seen[i - 1]} → ${seen[i]})`);
}

async function pushBlobs(client: RegistryClient, repo: string, blobs: Blob[], concurrency = 8): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < blobs.length) {
        const blob = blobs[next++]!;
        const res = await client.pushBlob(repo, blob);
        assert.equal(res.status, 201, `blob push: ${res.status} ${await res.text()}`);
      }
    }),
  );
}

const linkKeys = (repo: string, image: Image) => [image.config, ...image.layers].map((b) => `link ${repo} ${b.digest}`);

// OUTBOX_ONLY=sqlite|postgres|mysql runs one database (debugging); by default all three.
for (const db of (process.env.OUTBOX_ONLY ? [process.env.OUTBOX_ONLY] : ['sqlite', 'postgres', 'mysql']) as Db[]) {
  describe(`outbox crash safety on ${db}: kill -9 between commit and consumption, exactly-once gc-review`, () => {
    let deployment: Deployment;
    let stores: Stores | undefined;
    let server: BerthProcess | undefined;
    const start = async (interval: string) => {
      server = await startBerthProcess({ ...deployment.env, BERTH_EVENTS_INTERVAL: interval, BERTH_LOG_LEVEL: 'info' });
      return server;
    };
    const kill = async () => {
      await server?.kill();
      server = undefined;
    };

    before(async () => {
      deployment = await deploy(db);
    });
    after(async () => {
      await kill();
      await stores?.close();
      await deployment?.drop();
      if (deployment) rmSync(deployment.dataDir, { recursive: true, force: true });
    });

    it('events committed before kill -9 are consumed exactly once after restart; a second restart redelivers nothing', async (t) => {
      const began = Date.now();
      const client = new RegistryClient((await start('1h')).url);
      const app = 'outbox/app';
      const other = 'outbox/other';
      const a = makeImage();
      const b = makeImage();
      const c = makeImage();
      const d = makeImage({ layers: 1 });
      await client.pushImage(app, 'v1', a);
      await client.pushImage(app, 'v1', b); // v1 moves from a to b
      await client.pushImage(app, c.manifest.digest, c); // untagged
      await client.pushImage(other, 'latest', d);
      const mount = await client.fetch(`/v2/${other}/blobs/uploads/?mount=${a.layers[0]!.digest}&from=${app}`, { method: 'POST' });
      assert.equal(mount.status, 201, 'cross-repository mount');
      await kill();

      stores = await openStores(deployment.config);
      const before = await stores.outbox.status();
      const events = await readEvents(stores);
      assert.ok(events.length > 0 && events.every((e) => e.seq === null), 'every event is committed and none is sequenced');
      assert.equal(before.unsequenced, events.length);
      assert.equal(before.lastSeq, 0);
      assert.equal(before.cursors[GC_REVIEW_CONSUMER], undefined, 'the gc-review consumer has no cursor yet');
      assert.deepEqual(await readQueue(stores), [], 'nothing queued before consumption');
      const types = new Set(events.map((e) => e.type));
      for (const type of ['repository.created', 'blob.committed', 'blob.mounted', 'manifest.pushed', 'tag.created', 'tag.moved'])
        assert.ok(types.has(type), `an ${type} event was committed`);

      const expected = new Set([
        ...linkKeys(app, a),
        ...linkKeys(app, b),
        ...linkKeys(app, c),
        ...linkKeys(other, d),
        `link ${other} ${a.layers[0]!.digest}`, // the mount
        `manifest ${app} ${a.manifest.digest}`, // the tag moved away from it
        `manifest ${app} ${c.manifest.digest}`, // pushed untagged
      ]);

      const seen: number[] = [];
      await start('200ms');
      const consumed = await waitConsumed(stores, seen);
      assert.equal(consumed.lastSeq, events.length, 'every event got a position, once');
      assertMonotonic(seen, 'first consumption');
      const queue = await readQueue(stores);
      assert.deepEqual(queue.map((r) => r.key).sort(), [...expected].sort(), 'the review queue holds exactly the expected candidates');
      const times = new Set(events.map((e) => e.createdAt));
      for (const row of queue) assert.ok(times.has(row.queuedAt), `${row.key} is queued at its event's time`);

      // GC reviews the queue (empties it); a redelivery of anything would queue it again.
      await dbOf(stores).deleteFrom('gc_review_queue').execute();
      await kill();
      await start('200ms');
      await sleep(1_500); // several dispatch rounds
      await kill();
      const again = await stores.outbox.status();
      // Other consumers (webhooks) keep cursors of their own; this test is about gc-review's.
      const gcCursor = { ...again, cursors: { [GC_REVIEW_CONSUMER]: again.cursors[GC_REVIEW_CONSUMER] } };
      assert.deepEqual(
        gcCursor,
        { unsequenced: 0, lastSeq: consumed.lastSeq, cursors: { [GC_REVIEW_CONSUMER]: consumed.cursor } },
        'restarting changes neither positions nor the cursor',
      );
      assert.deepEqual(await readQueue(stores), [], 'restarting redelivers nothing to gc-review');
      t.diagnostic(`${db}: ${events.length} events, ${queue.length} candidates, ${Date.now() - began} ms`);
    });

    it('kill -9 during consumption (after the first batch committed) still delivers every event exactly once', async (t) => {
      const began = Date.now();
      assert.ok(stores, 'runs after the first test');
      const prior = await stores.outbox.status();
      const prev = prior.cursors[GC_REVIEW_CONSUMER] ?? 0;
      assert.equal(prev, prior.lastSeq);

      const repo = 'outbox/bulk';
      const blobs = Array.from({ length: BULK_BLOBS }, () => makeBlob(48));
      const client = new RegistryClient((await start('1h')).url);
      await pushBlobs(client, repo, blobs);
      await kill();

      const pending = (await readEvents(stores)).filter((e) => e.seq === null);
      assert.ok(pending.length >= BULK_BLOBS && pending.length > 2 * BATCH, `${pending.length} events waiting: more than two batches`);
      const expected = new Set(blobs.map((b) => `link ${repo} ${b.digest}`));
      const eventTime = new Map(pending.filter((e) => e.type === 'blob.committed').map((e) => [e.payload.digest as string, e.createdAt]));
      const seen: number[] = [prev];

      let killedPid: number;
      let committed: QueueRow[];
      if (db === 'sqlite') {
        // One writer at a time, so no row can be held open as below. Instead a trigger makes
        // the second batch's transaction fail on one of its rows (rolled back whole): the
        // consumer is stuck after its first batch, retrying every round, when it is killed.
        const target = pending[BATCH + 200]!;
        assert.equal(target.type, 'blob.committed');
        assert.match(target.payload.digest as string, /^sha256:[0-9a-f]{64}$/);
        const lite = new SQLite(deployment.config.metadata.path!);
        lite.pragma('busy_timeout = 10000');
        lite
          .prepare(
            `create trigger outbox_test_hold before insert on gc_review_queue when new.digest = '${target.payload.digest as string}' begin select raise(abort, 'test: the second batch is held'); end`,
          )
          .run();
        try {
          const proc = await start('200ms');
          const deadline = Date.now() + 40_000;
          let parkedSince = Infinity;
          for (;;) {
            const cursor = (await stores.outbox.status()).cursors[GC_REVIEW_CONSUMER] ?? prev;
            seen.push(cursor);
            if (cursor !== prev + BATCH) parkedSince = Infinity;
            else if (parkedSince === Infinity) parkedSince = Date.now();
            if (Date.now() - parkedSince > 1_500) break; // parked after the first batch for several rounds
            assert.ok(cursor <= prev + BATCH, `the second batch committed past the held row (cursor ${cursor})`);
            assert.ok(Date.now() < deadline, 'the consumer never parked after its first batch');
            await sleep(20);
          }
          killedPid = proc.child.pid!;
          committed = await readQueue(stores);
          await kill();
        } finally {
          lite.prepare('drop trigger if exists outbox_test_hold').run();
          lite.close();
        }
        assert.ok(!committed.some((r) => r.digest === target.payload.digest), 'the held event was not committed');
      } else {
        // Hold an uncommitted queue row of an event in the second batch: the consumer's second
        // transaction waits on it (after inserting the rows before it), with the first committed.
        const target = pending[BATCH + 200]!;
        assert.equal(target.type, 'blob.committed');
        const blocker = await openStores(deployment.config);
        const repositoryId = Number(
          (await dbOf(stores).selectFrom('repositories').select('id').where('name', '=', repo).executeTakeFirstOrThrow()).id,
        );
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        let ready!: () => void;
        const inserted = new Promise<void>((resolve) => (ready = resolve));
        class Rollback extends Error {}
        const holding = dbOf(blocker)
          .transaction()
          .execute(async (trx) => {
            await trx
              .insertInto('gc_review_queue')
              .values({ kind: 'link', repository_id: repositoryId, digest: target.payload.digest, queued_at: 0 })
              .execute();
            ready();
            await released;
            throw new Rollback();
          })
          .catch((err) => {
            if (!(err instanceof Rollback)) throw err;
          });
        try {
          await inserted;
          const proc = await start('200ms');
          // PostgreSQL shows the waiting backend; on MariaDB/MySQL the second batch cannot
          // commit past the held row, so a cursor parked at the first batch's end for 1.5s is
          // a round stuck inside its second batch (the lock wait lasts innodb_lock_wait_timeout, 50s).
          const waiters = sql<{
            n: number;
          }>`select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`;
          const deadline = Date.now() + 40_000;
          let parkedSince = Infinity;
          for (;;) {
            const status = await stores.outbox.status();
            const cursor = status.cursors[GC_REVIEW_CONSUMER] ?? prev;
            seen.push(cursor);
            if (cursor !== prev + BATCH) parkedSince = Infinity;
            else if (parkedSince === Infinity) parkedSince = Date.now();
            const blocked =
              db === 'postgres' ? Number((await waiters.execute(dbOf(stores))).rows[0]?.n ?? 0) > 0 : Date.now() - parkedSince > 1_500;
            if (blocked && cursor > prev) {
              assert.equal(cursor, prev + BATCH, 'the first batch committed, the second is open and waiting');
              break;
            }
            assert.ok(Date.now() < deadline, `the consumer never blocked on the held row: ${JSON.stringify(status)}`);
            await sleep(20);
          }
          killedPid = proc.child.pid!;
          committed = await readQueue(stores);
          await kill(); // inside the consumer's open transaction
        } finally {
          release();
          await holding;
          await blocker.close();
        }
        assert.ok(!committed.some((r) => r.digest === target.payload.digest), 'the blocked event was not committed');
      }

      const cursorAtKill = (await stores.outbox.status()).cursors[GC_REVIEW_CONSUMER]!;
      seen.push(cursorAtKill);
      assert.ok(
        cursorAtKill > prev && cursorAtKill < prev + pending.length,
        `killed mid-consumption (cursor ${cursorAtKill}, from ${prev} to ${prev + pending.length})`,
      );
      assert.ok(committed.length > 0 && committed.every((r) => expected.has(r.key)), 'the committed batch queued its candidates');
      assert.ok(committed.length <= cursorAtKill - prev, 'no more rows than events delivered');
      // The killed process held the events lease (its round was in progress); it would expire
      // after its TTL (10 s). Expire it now instead of waiting.
      // (SQLite: the stuck consumer's rounds end between retries, so the lease may be free.)
      if (db !== 'sqlite')
        assert.match((await leaseHolder(stores, EVENTS_LEASE)) ?? '', new RegExp(`:${killedPid}:`), 'the killed process was dispatching');
      await dbOf(stores).updateTable('leases').set({ expires_at: 0 }).where('name', '=', EVENTS_LEASE).execute();

      // GC reviewed the committed batch's rows while the process was down: a redelivery of that
      // batch would bring them back.
      for (const row of committed)
        await dbOf(stores).deleteFrom('gc_review_queue').where('kind', '=', row.kind).where('digest', '=', row.digest).execute();

      await start('200ms');
      const consumed = await waitConsumed(stores, seen);
      assertMonotonic(seen, 'kill during consumption');
      assert.equal(consumed.lastSeq, prev + pending.length, 'every event got a position, once');
      const queue = await readQueue(stores);
      const gone = new Set(committed.map((r) => r.key));
      assert.deepEqual(
        queue.map((r) => r.key).sort(),
        [...expected].filter((k) => !gone.has(k)).sort(),
        'exactly the candidates of the uncommitted batches: none of the committed batch came back, none is missing',
      );
      for (const row of queue) assert.equal(row.queuedAt, eventTime.get(row.digest), `${row.key} queued at its own event's time`);
      await kill();
      t.diagnostic(
        `${db}: ${pending.length} events, killed at cursor ${cursorAtKill - prev}/${pending.length}, ${committed.length} rows committed before the kill, ${Date.now() - began} ms`,
      );
    });
  });
}
