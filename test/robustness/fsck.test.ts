import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { RegistryClient, makeBlob, makeImage, type Image } from '../helpers/registry-client.js';
import { startTestServer, tempDir } from '../helpers/server.js';
import { blobFile, fsck, fsckInProcess, problemsOf, runCli, stagingFile } from './support.js';

/**
 * `berth fsck` against real stores: each test builds a registry through the HTTP API,
 * stops the server, damages the store the way a crash, a full disk or an operator
 * would, and checks what the real CLI reports, its exit code, and what --repair does.
 */
describe('berth fsck', () => {
  /** A data dir holding one pushed image, with the server stopped. */
  async function registryWithImage(repo = 'fsck/app'): Promise<{ dataDir: string; image: Image }> {
    const dataDir = tempDir('berth-fsck-');
    const server = await startTestServer({ data: { dir: dataDir } });
    const image = makeImage({ layers: 2, layerSize: 4096 });
    await new RegistryClient(server.url).pushImage(repo, 'v1', image);
    await server.close();
    return { dataDir, image };
  }

  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  async function fresh(repo?: string) {
    const made = await registryWithImage(repo);
    dirs.push(made.dataDir);
    return made;
  }

  it('a healthy store is consistent: exit 0, no problems, every row and blob counted', async () => {
    const { dataDir } = await fresh();
    const run = await fsck(dataDir, ['--verify-content']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(run.report.problems, []);
    assert.equal(run.report.checked.blobRows, 3);
    assert.equal(run.report.checked.blobFiles, 3);
    assert.equal(run.report.checked.manifests, 1);
    assert.equal(run.report.checked.contentVerified, true);
  });

  it('the text report ends with a verdict line', async () => {
    const { dataDir } = await fresh();
    const run = await runCli(['fsck'], { BERTH_DATA_DIR: dataDir });
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^checked 3 blob rows, 3 stored blobs, 1 manifests/);
    assert.match(run.stdout, /result: consistent\n$/);
  });

  it('usage errors exit 2: an unknown flag, a bad --grace', async () => {
    const { dataDir } = await fresh();
    const unknown = await runCli(['fsck', '--frobnicate'], { BERTH_DATA_DIR: dataDir });
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /unknown option/);
    const grace = await runCli(['fsck', '--grace', 'soon'], { BERTH_DATA_DIR: dataDir });
    assert.equal(grace.code, 2, grace.stderr);
    assert.match(grace.stderr, /grace/);
  });

  it('orphan bytes and orphan staging are leftovers (exit 0); --repair removes them, keeping recorded data', async () => {
    const { dataDir, image } = await fresh();
    const orphan = makeBlob(777);
    mkdirSync(path.dirname(blobFile(dataDir, orphan.digest)), { recursive: true });
    writeFileSync(blobFile(dataDir, orphan.digest), orphan.data);
    writeFileSync(stagingFile(dataDir, 'b2f1c7de-0000-4000-8000-000000000001'), 'partial chunk');

    const report = await fsckInProcess(dataDir);
    assert.equal(report.code, 0, 'leftovers alone are not corruption');
    assert.deepEqual(
      problemsOf(report.report, 'orphan-blob').map((p) => p.subject),
      [orphan.digest],
    );
    assert.deepEqual(
      problemsOf(report.report, 'orphan-staging').map((p) => p.subject),
      ['b2f1c7de-0000-4000-8000-000000000001'],
    );
    assert.ok(report.report.problems.every((p) => p.severity === 'leftover'));

    // Default grace (1h): fresh leftovers may be in flight, so --repair leaves them.
    const graced = await fsckInProcess(dataDir, { repair: true });
    assert.ok(graced.report.problems.every((p) => !p.repaired && !p.repairable));
    assert.ok(existsSync(blobFile(dataDir, orphan.digest)));

    const repaired = await fsck(dataDir, ['--repair', '--grace', '0s']);
    assert.equal(repaired.code, 0);
    assert.equal(repaired.report.problems.length, 2);
    assert.ok(repaired.report.problems.every((p) => p.repaired === true));
    assert.equal(existsSync(blobFile(dataDir, orphan.digest)), false);
    assert.equal(existsSync(stagingFile(dataDir, 'b2f1c7de-0000-4000-8000-000000000001')), false);
    for (const blob of [image.config, ...image.layers]) assert.ok(existsSync(blobFile(dataDir, blob.digest)), 'recorded blob kept');

    const after = await fsckInProcess(dataDir, { verifyContent: true });
    assert.deepEqual(after.report.problems, []);
  });

  it('missing bytes of a layer a manifest needs: exit 1, dangling-blob naming the manifest, never "repaired" away', async () => {
    const { dataDir, image } = await fresh('fsck/lost');
    const lost = image.layers[0]!;
    rmSync(blobFile(dataDir, lost.digest));
    const run = await fsck(dataDir, ['--repair', '--grace', '0s']);
    assert.equal(run.code, 1);
    const [problem, ...rest] = problemsOf(run.report, 'dangling-blob');
    assert.equal(rest.length, 0);
    assert.equal(problem!.subject, lost.digest);
    assert.equal(problem!.severity, 'corruption');
    assert.equal(problem!.repairable, false);
    assert.equal(problem!.repaired, undefined);
    assert.match(problem!.message, new RegExp(`fsck/lost@${image.manifest.digest}`));
    // Still reported on the next run: the rows were kept.
    assert.equal((await fsckInProcess(dataDir)).code, 1);
  });

  it('a blob row without bytes that no manifest uses is repaired: its rows go, so a client re-pushes it', async () => {
    const { dataDir } = await fresh();
    const server = await startTestServer({ data: { dir: dataDir } });
    const loose = makeBlob(999);
    const client = new RegistryClient(server.url);
    assert.equal((await client.pushBlob('fsck/app', loose)).status, 201);
    await server.close();
    rmSync(blobFile(dataDir, loose.digest));

    const run = await fsckInProcess(dataDir, { repair: true });
    assert.equal(run.code, 0, 'repaired corruption leaves the store consistent');
    assert.deepEqual(
      problemsOf(run.report, 'dangling-blob').map((p) => [p.subject, p.repaired]),
      [[loose.digest, true]],
    );

    const again = await startTestServer({ data: { dir: dataDir } });
    try {
      const head = await new RegistryClient(again.url).fetch(`/v2/fsck/app/blobs/${loose.digest}`, { method: 'HEAD' });
      assert.equal(head.status, 404);
    } finally {
      await again.close();
    }
  });

  it('bit rot: same-size corruption is found only with --verify-content; truncation always (size-mismatch)', async () => {
    const { dataDir, image } = await fresh();
    const rotten = image.layers[0]!;
    writeFileSync(blobFile(dataDir, rotten.digest), Buffer.alloc(rotten.size, 'x'));
    truncateSync(blobFile(dataDir, image.layers[1]!.digest), 10);

    const quick = await fsckInProcess(dataDir);
    assert.equal(quick.code, 1);
    assert.deepEqual(
      problemsOf(quick.report, 'size-mismatch').map((p) => p.subject),
      [image.layers[1]!.digest],
    );
    assert.deepEqual(problemsOf(quick.report, 'digest-mismatch'), []);

    const deep = await fsckInProcess(dataDir, { verifyContent: true });
    assert.equal(deep.code, 1);
    assert.deepEqual(
      problemsOf(deep.report, 'digest-mismatch').map((p) => p.subject),
      [rotten.digest],
    );
  });

  it('a manifest whose layer was unlinked from its repository is reported as missing-reference', async () => {
    const { dataDir, image } = await fresh('fsck/unlinked');
    const server = await startTestServer({ data: { dir: dataDir } });
    const del = await new RegistryClient(server.url).fetch(`/v2/fsck/unlinked/blobs/${image.layers[1]!.digest}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    await server.close();
    const run = await fsckInProcess(dataDir);
    assert.equal(run.code, 1);
    const missing = problemsOf(run.report, 'missing-reference');
    assert.equal(missing.length, 1);
    assert.equal(missing[0]!.subject, image.layers[1]!.digest);
    assert.match(missing[0]!.message, /fsck\/unlinked@sha256:/);
  });

  it('upload sessions: staging that lost acknowledged bytes is broken (exit 1), staging gone is stale; --repair ends both', async () => {
    const { dataDir } = await fresh();
    const server = await startTestServer({ data: { dir: dataDir } });
    const client = new RegistryClient(server.url);
    const start = await client.fetch('/v2/fsck/app/blobs/uploads/', { method: 'POST' });
    const id = start.headers.get('docker-upload-uuid')!;
    const patch = await client.fetch(start.headers.get('location')!, { method: 'PATCH', body: new Uint8Array(Buffer.alloc(2048, 1)) });
    assert.equal(patch.status, 202);
    const idle = await client.fetch('/v2/fsck/app/blobs/uploads/', { method: 'POST' });
    const idleId = idle.headers.get('docker-upload-uuid')!;
    await server.close();

    assert.deepEqual((await fsckInProcess(dataDir)).report.problems, [], 'sessions in progress are not problems');
    truncateSync(stagingFile(dataDir, id), 100);
    rmSync(stagingFile(dataDir, idleId));
    const run = await fsckInProcess(dataDir, { graceMs: 0 });
    assert.equal(run.code, 1);
    assert.deepEqual(
      problemsOf(run.report, 'broken-upload').map((p) => p.subject),
      [id],
    );
    assert.deepEqual(
      problemsOf(run.report, 'stale-upload').map((p) => [p.subject, p.severity]),
      [[idleId, 'leftover']],
    );

    const repaired = await fsckInProcess(dataDir, { repair: true, graceMs: 0 });
    assert.equal(repaired.code, 0);
    assert.equal((await fsckInProcess(dataDir)).report.checked.uploadRows, 0);
    assert.equal(existsSync(stagingFile(dataDir, id)), false);
  });
});
