import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { RegistryClientError } from '../../src/client/index.js';
import { RegistryClient, errorCode, makeBlob, makeImage, sha256, type Blob, type Image } from '../helpers/registry-client.js';
import { startBerthProcess, startTestServer, tempDir, type BerthProcess } from '../helpers/server.js';
import { blobFile, fsck, fsckInProcess, stagingFile } from './support.js';

/**
 * kill -9 during pushes, then restart on the same data directory. What a client was
 * told (201 for a blob or manifest, 202 + Range for a chunk) must hold after the crash;
 * what it was not told must be either absent or complete and correct; interrupted
 * sessions must resume from their Range; and `berth fsck` must find no corruption.
 *
 * Kill points come from a seeded generator (fast-check), so a failure reproduces with
 * the seed printed in its message. Each iteration runs several pushers at once, mixing
 * monolithic and chunked uploads with slowly streamed chunks, so kills land mid-PATCH,
 * between blob commits and the manifest PUT, and during manifest PUTs.
 */
const SEED = Number(process.env.BERTH_CRASH_SEED ?? 20240607);
const TIME_BUDGET_MS = 40_000;
const MAX_ITERATIONS = 8;
const MIN_ITERATIONS = 3;

interface PusherPlan {
  monolithic: boolean;
  layerSizes: number[];
  chunkSize: number;
}
interface IterationPlan {
  killAfterMs: number;
  pushers: PusherPlan[];
}

const planArbitrary: fc.Arbitrary<IterationPlan> = fc.record({
  killAfterMs: fc.integer({ min: 30, max: 2_500 }),
  pushers: fc.array(
    fc.record({
      monolithic: fc.boolean(),
      layerSizes: fc.array(fc.integer({ min: 1024, max: 3 * 1024 * 1024 }), { minLength: 1, maxLength: 3 }),
      chunkSize: fc.integer({ min: 64 * 1024, max: 1024 * 1024 }),
    }),
    { minLength: 2, maxLength: 4 },
  ),
});

/** What clients were told, accumulated over every iteration. */
interface Ledger {
  /** Images whose manifest PUT answered 201. */
  images: { repo: string; tag: string; image: Image }[];
  /** Blobs whose upload answered 201, by repository. */
  blobs: { repo: string; blob: Blob }[];
  /** Blobs whose upload started but never answered 201. */
  unconfirmed: { repo: string; blob: Blob }[];
  /** Sessions open when the server died, with the bytes acknowledged by 202 + Range. */
  sessions: { repo: string; blob: Blob; location: string; acked: number }[];
  /** Manifest PUTs sent without an answer. */
  unansweredManifests: { repo: string; tag: string; image: Image }[];
}

describe('crash safety: kill -9 during pushes, restart, verify', () => {
  const dataDir = tempDir('berth-crash-');
  let server: BerthProcess | undefined;
  after(async () => {
    await server?.kill();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(`keeps every acknowledged push and resumes interrupted uploads (seed ${SEED})`, async (t) => {
    const plans = fc.sample(planArbitrary, { seed: SEED, numRuns: MAX_ITERATIONS });
    const ledger: Ledger = { images: [], blobs: [], unconfirmed: [], sessions: [], unansweredManifests: [] };
    const started = Date.now();
    let iteration = 0;
    for (const plan of plans) {
      if (iteration >= MIN_ITERATIONS && Date.now() - started > TIME_BUDGET_MS) break;
      const where = `seed ${SEED}, iteration ${iteration}, kill after ${plan.killAfterMs} ms`;
      server = await startBerthProcess({ BERTH_DATA_DIR: dataDir });
      const client = new RegistryClient(server.url);
      await verifyAfterCrash(client, ledger, where);

      const pushes = plan.pushers.map((p, k) => pushUntilKilled(client, `crash/p${k}`, `i${iteration}`, p, ledger));
      await sleep(plan.killAfterMs);
      await server.kill();
      server = undefined;
      await Promise.all(pushes);

      const check = await fsckInProcess(dataDir, { verifyContent: true, graceMs: 0 });
      const corrupt = check.report.problems.filter((p) => p.severity === 'corruption');
      assert.deepEqual(corrupt, [], `fsck found corruption after the crash (${where})`);
      iteration++;
    }
    t.diagnostic(
      `${iteration} crashes in ${Date.now() - started} ms; ${ledger.images.length} acknowledged images, ${ledger.blobs.length} blobs kept`,
    );
    assert.ok(iteration >= MIN_ITERATIONS);
    assert.ok(ledger.images.length > 0, 'some pushes completed between crashes (else the test proves nothing)');

    server = await startBerthProcess({ BERTH_DATA_DIR: dataDir });
    await verifyAfterCrash(new RegistryClient(server.url), ledger, `seed ${SEED}, final restart`);
    await server.kill();
    server = undefined;

    // The real CLI agrees, and its repair of leftovers keeps every acknowledged image.
    const cli = await fsck(dataDir, ['--repair', '--grace', '0s']);
    assert.equal(cli.code, 0, `berth fsck after ${iteration} crashes: ${cli.stdout}${cli.stderr}`);
    assert.ok(cli.report.problems.every((p) => p.severity === 'leftover' && p.repaired));
    server = await startBerthProcess({ BERTH_DATA_DIR: dataDir });
    await verifyImages(new RegistryClient(server.url), ledger, 'after fsck --repair');
    assert.deepEqual((await fsckInProcess(dataDir)).report.problems, [], 'nothing left after repair');
  });
});

describe("crash between committing an upload's bytes and recording them", () => {
  it('the session answers 404 BLOB_UPLOAD_UNKNOWN (not 500), fsck calls it a leftover, and a new push of the blob succeeds', async () => {
    const dataDir = tempDir('berth-crash-commit-');
    try {
      let server = await startTestServer({ data: { dir: dataDir } });
      let client = new RegistryClient(server.url);
      const blob = makeBlob(300_000);
      const start = await client.fetch('/v2/crash/commit/blobs/uploads/', { method: 'POST' });
      const location = start.headers.get('location')!;
      const patch = await client.fetch(location, { method: 'PATCH', body: new Uint8Array(blob.data) });
      assert.equal(patch.status, 202);
      await server.close();
      // What FilesystemBlobStore.commitUpload does before the metadata commit that the crash prevented.
      mkdirSync(path.dirname(blobFile(dataDir, blob.digest)), { recursive: true });
      renameSync(stagingFile(dataDir, start.headers.get('docker-upload-uuid')!), blobFile(dataDir, blob.digest));

      const check = await fsckInProcess(dataDir, { graceMs: 0 });
      assert.equal(check.code, 0);
      assert.deepEqual(check.report.problems.map((p) => p.kind).sort(), ['orphan-blob', 'stale-upload']);

      server = await startTestServer({ data: { dir: dataDir } });
      client = new RegistryClient(server.url);
      try {
        const put = await client.fetch(`${location}?digest=${blob.digest}`, { method: 'PUT' });
        assert.equal(put.status, 404);
        assert.equal(await errorCode(put), 'BLOB_UPLOAD_UNKNOWN');
        assert.equal((await client.fetch(location)).status, 404, 'the dead session is dropped');
        assert.equal((await client.pushBlob('crash/commit', blob)).status, 201);
        const pulled = await client.fetch(`/v2/crash/commit/blobs/${blob.digest}`);
        assert.equal(sha256(Buffer.from(await pulled.arrayBuffer())), blob.digest);
      } finally {
        await server.close();
      }
      assert.deepEqual((await fsckInProcess(dataDir, { graceMs: 0 })).report.problems, [], 'the orphan became the recorded blob');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/** One pusher: pushes images until its requests start failing because the server died. */
async function pushUntilKilled(client: RegistryClient, repo: string, tagPrefix: string, plan: PusherPlan, ledger: Ledger): Promise<void> {
  try {
    for (let n = 0; ; n++) {
      const image = makeImage({ layers: 0 });
      const layers = plan.layerSizes.map((size) => makeImage({ layers: 1, layerSize: size }).layers[0]!);
      const full = withLayers(image, layers);
      for (const blob of [full.config, ...full.layers]) {
        const ok = plan.monolithic
          ? await pushMonolithic(client, repo, blob, ledger)
          : await pushChunked(client, repo, blob, plan.chunkSize, ledger);
        if (!ok) return;
      }
      const tag = `${tagPrefix}-${n}`;
      const pending = { repo, tag, image: full };
      ledger.unansweredManifests.push(pending);
      const res = await client.pushManifest(repo, tag, full.manifest);
      ledger.unansweredManifests.splice(ledger.unansweredManifests.indexOf(pending), 1);
      assert.equal(res.status, 201, await res.text());
      ledger.images.push(pending);
    }
  } catch (err) {
    if (!isConnectionFailure(err)) throw err;
  }
}

async function pushMonolithic(client: RegistryClient, repo: string, blob: Blob, ledger: Ledger): Promise<boolean> {
  const entry = { repo, blob };
  ledger.unconfirmed.push(entry);
  const res = await client.pushBlob(repo, blob);
  assert.equal(res.status, 201, await res.text());
  ledger.unconfirmed.splice(ledger.unconfirmed.indexOf(entry), 1);
  ledger.blobs.push(entry);
  return true;
}

/** POST, then PATCH chunks streamed in small slices (so a kill lands mid-body), then PUT ?digest=. */
async function pushChunked(client: RegistryClient, repo: string, blob: Blob, chunkSize: number, ledger: Ledger): Promise<boolean> {
  const entry = { repo, blob };
  ledger.unconfirmed.push(entry);
  const start = await client.fetch(`/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  const session = { repo, blob, location: start.headers.get('location')!, acked: 0 };
  ledger.sessions.push(session);
  for (let offset = 0; offset < blob.size; offset += chunkSize) {
    const chunk = blob.data.subarray(offset, offset + chunkSize);
    const res = await client.fetch(session.location, {
      method: 'PATCH',
      body: slowly(chunk),
      duplex: 'half',
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
    } as RequestInit);
    assert.equal(res.status, 202, await res.text());
    session.acked = rangeEnd(res.headers.get('range')) + 1;
    assert.equal(session.acked, offset + chunk.length);
  }
  const put = await client.fetch(`${session.location}?digest=${blob.digest}`, { method: 'PUT' });
  assert.equal(put.status, 201, await put.text());
  ledger.sessions.splice(ledger.sessions.indexOf(session), 1);
  ledger.unconfirmed.splice(ledger.unconfirmed.indexOf(entry), 1);
  ledger.blobs.push(entry);
  return true;
}

/** After a restart: acknowledged content intact, nothing partial visible, open sessions resumable. */
async function verifyAfterCrash(client: RegistryClient, ledger: Ledger, where: string): Promise<void> {
  await verifyImages(client, ledger, where);
  for (const { repo, blob } of ledger.unconfirmed.splice(0)) {
    const res = await client.fetch(`/v2/${repo}/blobs/${blob.digest}`);
    if (res.status === 404) continue;
    assert.equal(res.status, 200, where);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), blob.digest, `an unconfirmed blob is visible but not intact (${where})`);
  }
  for (const pending of ledger.unansweredManifests.splice(0)) {
    const res = await client.fetch(`/v2/${pending.repo}/manifests/${pending.tag}`);
    if (res.status === 404) continue;
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), pending.image.manifest.data, `half-stored manifest (${where})`);
    ledger.images.push(pending);
  }
  for (const session of ledger.sessions.splice(0)) await resume(client, session, ledger, where);
}

async function verifyImages(client: RegistryClient, ledger: Ledger, where: string): Promise<void> {
  for (const { repo, tag, image } of ledger.images) {
    const res = await client.fetch(`/v2/${repo}/manifests/${tag}`, { headers: { accept: image.mediaType } });
    assert.equal(res.status, 200, `acknowledged image ${repo}:${tag} lost (${where})`);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.manifest.data, `${repo}:${tag} (${where})`);
  }
  for (const { repo, blob } of ledger.blobs) {
    const res = await client.fetch(`/v2/${repo}/blobs/${blob.digest}`);
    assert.equal(res.status, 200, `acknowledged blob ${repo}@${blob.digest} lost (${where})`);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), blob.digest, `acknowledged blob corrupted (${where})`);
  }
}

/** GET the session's status, check it kept at least what was acknowledged, send the rest, commit. */
async function resume(client: RegistryClient, session: Ledger['sessions'][number], ledger: Ledger, where: string): Promise<void> {
  const status = await client.fetch(session.location);
  if (status.status === 404) {
    const blob = await client.fetch(`/v2/${session.repo}/blobs/${session.blob.digest}`);
    if (blob.status === 404) {
      // The kill landed between moving the staged bytes to their content address and recording
      // them: the GET ends the session (docs/robustness.md › "A session that answers 204 + Range
      // completes"), no 201 was given, and the client restarts the blob — which must succeed.
      const again = await client.pushBlob(session.repo, session.blob);
      assert.equal(again.status, 201, `restarting a blob whose session ended: ${await again.text()} (${where})`);
      ledger.blobs.push({ repo: session.repo, blob: session.blob });
      return;
    }
    // The kill landed after the commit but before the 201 reached us: the blob must be whole.
    assert.equal(blob.status, 200, `session gone, blob neither absent nor present (${where})`);
    assert.equal(sha256(Buffer.from(await blob.arrayBuffer())), session.blob.digest);
    return;
  }
  assert.equal(status.status, 204, where);
  const range = status.headers.get('range');
  const offset = range === '0-0' && session.acked === 0 ? 0 : rangeEnd(range) + 1;
  assert.ok(offset >= session.acked, `session lost acknowledged bytes: ${offset} < ${session.acked} (${where})`);
  assert.ok(offset <= session.blob.size);
  if (offset < session.blob.size) {
    const rest = session.blob.data.subarray(offset);
    const res = await client.fetch(session.location, {
      method: 'PATCH',
      body: new Uint8Array(rest),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${session.blob.size - 1}` },
    });
    assert.equal(res.status, 202, `resume PATCH (${where}): ${await res.text()}`);
  }
  const put = await client.fetch(`${session.location}?digest=${session.blob.digest}`, { method: 'PUT' });
  if (put.status === 404 && offset === session.blob.size) {
    // Killed between committing the bytes and recording it: the session is gone (404
    // BLOB_UPLOAD_UNKNOWN) and a client starts the blob again, which must then succeed.
    assert.equal(await errorCode(put), 'BLOB_UPLOAD_UNKNOWN', where);
    assert.equal((await client.pushBlob(session.repo, session.blob)).status, 201, `re-push after a lost commit (${where})`);
  } else {
    assert.equal(put.status, 201, `resumed upload did not commit (${where}): ${await put.text()}`);
  }
  ledger.blobs.push({ repo: session.repo, blob: session.blob });
}

/** A request body that trickles out in 64 KiB slices, 5 ms apart. */
function slowly(data: Buffer): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (offset >= data.length) return controller.close();
      if (offset > 0) await sleep(5);
      controller.enqueue(new Uint8Array(data.subarray(offset, offset + 64 * 1024)));
      offset += 64 * 1024;
    },
  });
}

function withLayers(image: Image, layers: Blob[]): Image {
  const manifest = JSON.parse(image.manifest.data.toString()) as { layers: unknown[] };
  manifest.layers = layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size }));
  const data = Buffer.from(JSON.stringify(manifest));
  return { ...image, layers, manifest: { data, digest: sha256(data), size: data.length } };
}

function rangeEnd(range: string | null): number {
  const m = /^0-(\d+)$/.exec(range ?? '');
  assert.ok(m, `bad Range header ${range}`);
  return Number(m[1]);
}

/**
 * fetch against a killed server fails with a TypeError whose cause is a socket error; the
 * registry client (src/client) wraps it in a RegistryClientError with code NETWORK.
 */
function isConnectionFailure(err: unknown): boolean {
  if (err instanceof RegistryClientError) return err.status === 0 && err.errors[0]?.code === 'NETWORK' && isConnectionFailure(err.cause);
  if (!(err instanceof TypeError)) return false;
  const cause = (err as { cause?: { code?: string } }).cause;
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED'].includes(cause?.code ?? '') ||
    /fetch failed|terminated/.test(err.message)
  );
}
