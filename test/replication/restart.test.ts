import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startBerth, type BenchServer } from '../../bench/servers.js';
import { OciClient } from '../../src/client/index.js';
import { api, basic } from '../auth/support.js';
import { startDistribution, type DistributionServer } from '../helpers/distribution.js';
import { bigImage, FAST_RETRY, pushImage, RecordingFront } from './support.js';

/**
 * kill -9 of the Berth running a replication execution, in the middle of a big blob: the
 * restarted process (same data directory) continues the execution — the leased job picks the
 * orphaned `running` row — and the blob continues from the upload checkpoint in the metadata
 * DB, with Range on the download, instead of starting over. Bytes are counted at the source.
 */
const MiB = 1024 * 1024;
const SIZE = 128 * MiB;
const PASSWORD = 'restart-admin-1';

describe('replication survives kill -9 of the Berth running it', () => {
  let source: DistributionServer;
  let front: RecordingFront;
  let berth: BenchServer | undefined;
  let restarted: BenchServer | undefined;
  const env = { BERTH_AUTH_MODE: 'basic', BERTH_ADMIN_PASSWORD: PASSWORD, BERTH_REPLICATION_INTERVAL: '200ms', BERTH_REPLICATION_BACKOFF: '50ms', BERTH_LOG_LEVEL: 'warn' };
  const admin = basic('admin', PASSWORD);

  before(async () => {
    source = await startDistribution();
    front = await RecordingFront.start(source.url);
  });
  after(async () => {
    await front.close();
    await Promise.all([berth?.stop(), restarted?.stop(), source.stop()]);
  });

  it(`a ${SIZE / MiB} MiB layer: the execution completes after the restart without starting the blob over`, async () => {
    const image = bigImage(SIZE);
    await pushImage(new OciClient({ baseUrl: source.url, retry: FAST_RETRY }), 'big/app', 'v1', image);
    berth = await startBerth({ runtime: 'tsx', env });
    const call = async (server: BenchServer, method: string, path: string, body?: unknown) => {
      const res = await api(server, method, path, admin, body);
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    };
    assert.equal((await call(berth, 'POST', '/registries', { name: 'src', url: front.url, kind: 'distribution' })).status, 201);
    // 32 MiB/s: the copy takes ~4 s, so the kill lands mid-blob.
    const created = await call(berth, 'POST', '/replication/policies', { name: 'big', direction: 'pull', registry: 'src', repositories: ['big/app'], bandwidth: 32 * MiB });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const queued = await call(berth, 'POST', '/replication/policies/big/run');
    assert.equal(queued.status, 202);

    const deadline = Date.now() + 60_000;
    while (front.bytesOut < 48 * MiB) {
      assert.ok(Date.now() < deadline, `only ${front.bytesOut} bytes moved`);
      await new Promise((r) => setTimeout(r, 20));
    }
    process.kill(berth.pid, 'SIGKILL');
    await berth.stop({ keepData: true });
    const beforeKill = front.bytesOut;
    assert.ok(beforeKill < SIZE, 'killed mid-blob');

    restarted = await startBerth({ runtime: 'tsx', env }, { seedFrom: berth.dataDir });
    const afterRestart = front.bytesOut;
    let execution;
    for (;;) {
      execution = (await call(restarted, 'GET', `/replication/executions/${queued.body.id}`)).body;
      if (!['pending', 'running'].includes(execution.status)) break;
      assert.ok(Date.now() < deadline + 60_000, `execution still ${execution.status}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(execution.status, 'succeeded', JSON.stringify(execution));
    const tasks = (await call(restarted, 'GET', `/replication/executions/${queued.body.id}/tasks`)).body;
    assert.equal(tasks.length, 1);
    assert.equal(tasks[0].status, 'copied');
    const second = front.bytesOut - afterRestart;
    console.log(`kill -9 of Berth mid-blob: ${beforeKill} B downloaded before the kill, ${second} B after the restart (blob ${SIZE} B); task resumed at ${tasks[0].resumedBytes} B and uploaded ${tasks[0].bytes} B`);
    // What the destination session held at the kill (whole 8 MiB chunks; bytes in flight are read again).
    assert.ok(tasks[0].resumedBytes >= 16 * MiB, `resumed at ${tasks[0].resumedBytes}`);
    const sent = tasks[0].resumedBytes + tasks[0].bytes;
    assert.ok(sent >= SIZE && sent <= SIZE + image.config.size, `the upload continued the session: every byte of the layer sent once in all (${sent})`);
    assert.ok(second <= SIZE - tasks[0].resumedBytes + 64 * 1024, `the restart downloaded ${second} bytes: only the rest of the blob (Range), not all of it`);
    const local = new OciClient({ baseUrl: restarted.url, credentials: { username: 'admin', password: PASSWORD }, retry: FAST_RETRY });
    assert.equal((await local.headManifest('big/app', 'v1'))?.digest, image.manifest.digest);
    assert.deepEqual(await local.headBlob('big/app', image.layers[0]!.digest), { digest: image.layers[0]!.digest, size: SIZE });
  });
});
