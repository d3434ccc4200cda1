import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it, type TestContext } from 'node:test';
import { OciClient } from '../../src/client/index.js';
import type { Execution, Task } from '../../src/replication/ports.js';
import { api, basic } from '../auth/support.js';
import { startDistribution, type DistributionServer } from '../helpers/distribution.js';
import { createTestDatabase as createMysqlDatabase } from '../helpers/mysql.js';
import { createTestDatabase as createPostgresDatabase, type TestDatabase } from '../helpers/postgres.js';
import { makeImage, type Image } from '../helpers/registry-client.js';
import { startLocalS3, type LocalS3 } from '../helpers/s3.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { s3Env } from '../robustness/faults.js';
import { FAST_RETRY, pushImage, RecordingFront } from './support.js';

/**
 * Several replicas, one replication: two `berth serve` processes on one database and one S3
 * bucket (replicas share nothing else) with one push policy to CNCF
 * Distribution, triggered by cron every second and by manual runs asked of either replica.
 * Both replicas run the leased `replication` job every 200 ms, so they contend for every
 * execution. Asserted: each execution was started by exactly one process, its tasks are not
 * duplicated, the cron executions were queued once per due time, and the destination received
 * each blob once (one upload session and one closing PUT per digest, counted on the requests
 * it got) and each manifest once.
 */
/**
 * The shared database: PostgreSQL in the PostgreSQL pass; SQLite cannot be shared, so the
 * default pass runs the replicas on MySQL/MariaDB (started by scripts/test.sh), and the two
 * passes cover both back ends a cluster can use.
 */
const DRIVER = process.env.BERTH_TEST_METADATA === 'postgres' ? 'postgres' : 'mysql';
const PASSWORD = 'replicas-admin-1';
const admin = basic('admin', PASSWORD);
const IMAGES = 6;
const MANUAL_RUNS = 6;
const CRON_RUNS = 3;

/** An admin API call; `T` is what the caller expects on success (an error body otherwise). */
async function call<T = { id: number }>(
  server: { url: string },
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await api(server, method, path, admin, body);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** The `replication execution started` log lines of a process: the execution ids it ran. */
function startedExecutions(process: BerthProcess): number[] {
  const ids: number[] = [];
  for (const line of process.logOutput().split('\n')) {
    if (!line.includes('replication execution started')) continue;
    ids.push((JSON.parse(line) as { execution: number }).execution);
  }
  return ids;
}

describe(`two replicas on one ${DRIVER} database: each replication execution runs once`, () => {
  let db: TestDatabase;
  let s3: LocalS3;
  let destination: DistributionServer;
  let front: RecordingFront;
  const replicas: BerthProcess[] = [];
  const dirs: string[] = [];
  const images: Image[] = [];

  before(async () => {
    db = await (DRIVER === 'postgres' ? createPostgresDatabase : createMysqlDatabase)('berth_repl_replicas');
    s3 = await startLocalS3('berth-repl-replicas');
    destination = await startDistribution();
    front = await RecordingFront.start(destination.url);
    const shared = {
      BERTH_METADATA_DRIVER: DRIVER,
      BERTH_METADATA_URL: db.url,
      ...s3Env(s3, 'replicas'),
      BERTH_AUTH_MODE: 'basic',
      BERTH_ADMIN_PASSWORD: PASSWORD,
      BERTH_REPLICATION_INTERVAL: '200ms',
    };
    const started = await Promise.allSettled(
      [0, 1].map(async () => {
        const dataDir = tempDir('berth-repl-replica-');
        dirs.push(dataDir);
        const replica = await startBerthProcess({ ...shared, BERTH_DATA_DIR: dataDir });
        replicas.push(replica);
        return replica;
      }),
    );
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const client = new OciClient({ baseUrl: replicas[0]!.url, credentials: { username: 'admin', password: PASSWORD }, retry: FAST_RETRY });
    for (let i = 0; i < IMAGES; i++) {
      const image = makeImage({ layers: 2, layerSize: 40_000 + i });
      images.push(image);
      await pushImage(client, `rep/app${i % 2}`, `v${i}`, image);
    }
  });
  after(async () => {
    await front?.close();
    await Promise.all(replicas.map((r) => r.stop()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await destination?.stop();
    await s3?.close();
    await db?.drop();
  });

  it('cron and manual executions asked of both replicas: each ran on exactly one process, each blob reached the destination once', async (t: TestContext) => {
    const [a, b] = replicas as [BerthProcess, BerthProcess];
    assert.equal((await call(a, 'POST', '/registries', { name: 'dist', url: front.url, kind: 'distribution' })).status, 201);
    // Made through one replica, used by both: the policy is a row in the shared database.
    const created = await call(b, 'POST', '/replication/policies', {
      name: 'to-dist',
      direction: 'push',
      registry: 'dist',
      repositories: ['rep/**'],
      trigger: 'cron',
      cron: '* * * * * *',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const manual: number[] = [];
    for (let i = 0; i < MANUAL_RUNS; i++) {
      const queued = await call(i % 2 === 0 ? a : b, 'POST', '/replication/policies/to-dist/run');
      assert.equal(queued.status, 202, JSON.stringify(queued.body));
      manual.push(queued.body.id);
    }

    // Until the manual runs ended and a few cron runs did; then the policy stops queueing.
    const deadline = Date.now() + 180_000;
    const list = async (via: BerthProcess) =>
      (await call<Execution[]>(via, 'GET', '/replication/executions?policy=to-dist&limit=100')).body;
    const ended = (e: Execution) => !['pending', 'running', 'stopping'].includes(e.status);
    for (;;) {
      const executions = await list(a);
      const done = executions.filter(ended);
      const cronDone = done.filter((e) => e.trigger === 'cron').length;
      if (manual.every((id) => done.some((e) => e.id === id)) && cronDone >= CRON_RUNS) break;
      assert.ok(Date.now() < deadline, `executions still running: ${JSON.stringify(executions.map((e) => [e.id, e.trigger, e.status]))}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal((await call(a, 'PUT', '/replication/policies/to-dist', { enabled: false })).status, 200);
    let executions: Execution[];
    for (;;) {
      executions = await list(b);
      if (executions.every(ended)) break;
      assert.ok(Date.now() < deadline, 'an execution queued before the policy was disabled did not end');
      await new Promise((r) => setTimeout(r, 200));
    }

    // Every execution: succeeded, started by one process exactly once, one task per tag.
    const byA = startedExecutions(a);
    const byB = startedExecutions(b);
    const tags = IMAGES;
    for (const e of executions) {
      assert.equal(e.status, 'succeeded', JSON.stringify(e));
      const runs = byA.filter((id) => id === e.id).length + byB.filter((id) => id === e.id).length;
      assert.equal(runs, 1, `execution ${e.id} was started ${runs} times (replica a: ${byA.join(',')}; b: ${byB.join(',')})`);
      const tasks = (await call<Task[]>(b, 'GET', `/replication/executions/${e.id}/tasks?limit=1000`)).body;
      const refs = tasks.map((task) => `${task.sourceRepository}:${task.reference}`);
      assert.equal(refs.length, tags, `execution ${e.id}: ${refs.join(' ')}`);
      assert.equal(new Set(refs).size, tags, `execution ${e.id} did a tag twice: ${refs.join(' ')}`);
    }
    assert.equal(executions.filter((e) => e.copied > 0).length, 1, 'one execution copied; every later one found everything there');
    // Cron: queued by the lease holder only, once per due second.
    const cronSeconds = executions.filter((e) => e.trigger === 'cron').map((e) => Math.floor(e.createdAt / 1000));
    assert.equal(new Set(cronSeconds).size, cronSeconds.length, `two cron executions for one due time: ${cronSeconds.join(',')}`);

    // What the destination received: one upload session and one closing PUT per blob, each manifest once.
    const blobs = new Set(images.flatMap((image) => [image.config.digest, ...image.layers.map((l) => l.digest)]));
    const completes = front.seen
      .filter((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/'))
      .map((r) => new URL(r.url, front.url).searchParams.get('digest'));
    assert.deepEqual([...completes].sort(), [...blobs].sort(), 'each blob uploaded once');
    const sessions = front.seen.filter((r) => r.method === 'POST' && r.url.includes('/blobs/uploads/'));
    assert.equal(sessions.length, blobs.size, 'one upload session per blob');
    for (const image of images) {
      const puts = front.seen.filter(
        (r) => r.method === 'PUT' && decodeURIComponent(r.url).endsWith(`/manifests/${image.manifest.digest}`),
      );
      assert.equal(puts.length, 1, `manifest ${image.manifest.digest} put ${puts.length} times`);
    }
    t.diagnostic(
      `${executions.length} executions (${MANUAL_RUNS} manual, ${executions.length - MANUAL_RUNS} cron): replica a ran ${byA.length} [${byA.join(',')}], replica b ran ${byB.length} [${byB.join(',')}]; ` +
        `the destination got ${sessions.length} upload sessions and ${completes.length} blob PUTs for ${blobs.size} blobs`,
    );
  });
});
