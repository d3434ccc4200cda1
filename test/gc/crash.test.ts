import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryClient, makeBlob, makeImage, type Image } from '../helpers/registry-client.js';
import { ROOT, startTestServer, tempDir, testMetadataEnv, type TestServer } from '../helpers/server.js';
import { assertConsistent } from './support.js';

const GARBAGE_IMAGES = 40;
/** The killed collector's lease blocks the next run this long. */
const LEASE_TTL_MS = 5000;

interface GcProcess {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/**
 * Runs `berth gc` as a real child process on the data directory, one candidate per batch
 * (one progress line per deletion). With `killAfterBlobs`, SIGKILLs it as soon as it has
 * logged that many blob deletions.
 */
async function runGcProcess(dataDir: string, killAfterBlobs?: number): Promise<GcProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'gc'], {
    cwd: ROOT,
    env: {
      ...process.env,
      BERTH_DATA_DIR: dataDir,
      BERTH_GC_BATCHSIZE: '1',
      BERTH_GC_GRACEPERIOD: '0',
      BERTH_GC_LEASETTL: `${LEASE_TTL_MS}ms`,
      BERTH_TAGS_HISTORY_PROTECTGC: 'false',
      ...(await testMetadataEnv(dataDir)),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString();
    const blobs = [...output.matchAll(/, (\d+) blobs, /g)].map((m) => Number(m[1]));
    if (killAfterBlobs !== undefined && blobs.some((n) => n >= killAfterBlobs) && child.exitCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, output })));
}

describe('gc: crash safety (berth gc killed with SIGKILL mid-run)', () => {
  const dataDir = tempDir('berth-gc-crash-');
  let live: Image;
  let garbage: Image[];
  let server: TestServer | undefined;

  before(async () => {
    const seeding = await startTestServer({ data: { dir: dataDir }, gc: { enabled: false }, tags: { history: { protectgc: false } } });
    const client = new RegistryClient(seeding.url);
    live = makeImage({ layers: 2 });
    await client.pushImage('crash/live', 'v1', live);
    garbage = Array.from({ length: GARBAGE_IMAGES }, () => makeImage({ layers: 2, layerSize: 256 }));
    for (const [i, image] of garbage.entries()) {
      await client.pushImage('crash/junk', `t${i}`, image);
      await client.fetch(`/v2/crash/junk/manifests/t${i}`, { method: 'DELETE' });
    }
    await client.pushBlob('crash/loose', makeBlob(777));
    await seeding.close();
  });
  after(async () => server?.destroy());

  it('leaves a consistent registry, and the next run finishes the work', async () => {
    const killed = await runGcProcess(dataDir, 3);
    const killedAt = Date.now();
    assert.equal(killed.signal, 'SIGKILL', `gc should have been killed mid-run, it exited with ${killed.code}:\n${killed.output}`);

    server = await startTestServer({ data: { dir: dataDir }, gc: { enabled: false }, tags: { history: { protectgc: false } } });
    const db = server.stores.metadata.db;
    assert.notEqual(
      await server.stores.leases.holder('gc', Date.now()),
      null,
      'the killed collector still holds its lease until it expires',
    );
    await assertConsistent(server);
    // Manifests are reviewed first (their tags went first), then the links and blobs they cascade to.
    const blobRows = await db.selectFrom('blobs').select('digest').execute();
    const garbageBlobs = GARBAGE_IMAGES * 3 + 1;
    assert.ok(
      blobRows.length > 3 && blobRows.length < 3 + garbageBlobs,
      `the kill should land mid-run (${blobRows.length - 3} of ${garbageBlobs} garbage blobs left)`,
    );
    await server.close();

    await sleep(Math.max(0, killedAt + LEASE_TTL_MS - Date.now()));
    const finished = await runGcProcess(dataDir);
    assert.equal(finished.code, 0, finished.output);
    server = await startTestServer({ data: { dir: dataDir }, gc: { enabled: false }, tags: { history: { protectgc: false } } });
    await assertConsistent(server);
    const client = new RegistryClient(server.url);
    for (const image of garbage) {
      assert.equal((await client.fetch(`/v2/crash/junk/manifests/${image.manifest.digest}`, { method: 'HEAD' })).status, 404);
      for (const blob of [image.config, ...image.layers])
        assert.equal(await server.stores.blobs.stat(blob.digest), null, `bytes of ${blob.digest} left behind`);
    }
    for (const blob of [live.config, ...live.layers]) {
      const res = await client.fetch(`/v2/crash/live/blobs/${blob.digest}`);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), blob.data);
    }
    const pending = await server.stores.metadata.db.selectFrom('blobs').select('digest').execute();
    assert.equal(pending.length, 3, 'only the live image blobs remain');
  });
});
