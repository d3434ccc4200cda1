import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, requireNginx, startNginx, type Nginx } from '../helpers/nginx.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startLocalS3, type LocalS3 } from '../helpers/s3.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { blobOf, faultRounds, faultSeed, imageOf, Random, s3Env, type Blob, type Image } from '../robustness/faults.js';
import { fsck } from '../robustness/support.js';

/**
 * Three `berth serve` on one PostgreSQL database and one S3 bucket behind nginx; one replica
 * is SIGKILLed at seeded random moments (and restarted on its port) while raw-HTTP clients keep
 * pushing through the balancer. The clients retry as registry clients do: a failed request
 * (502 from nginx, a reset) is followed by GET of the session, which another replica answers;
 * they resume from its Range. Asserted: every push finishes; a session GET answering 204 is
 * always completable on whichever replica gets the PUT (the issue 20 invariant across replicas);
 * every acknowledged manifest pulls intact through the balancer afterwards; fsck finds no
 * corruption. nginx re-sends a PUT (idempotent in HTTP) to the next replica when the first
 * died before answering: a closing PUT whose session already committed, or whose body was
 * already appended, must still answer 201 (upload receipts, UploadService.complete).
 */
const SEED = faultSeed(20261207);
const KILLS = faultRounds(4);
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

interface Replica {
  dataDir: string;
  port: number;
  process: BerthProcess;
}

interface Counts {
  images: number;
  failedRequests: number;
  resumedOnAnotherReplica: number;
  unknownOnGet: number;
  unknownOnWrite: number;
}

/** Failed requests one blob may see before the test gives up (4 kills cause a handful). */
const MAX_FAILURES_PER_BLOB = 30;
/** No single request may take longer: a stuck replica fails the test with the request named. */
const REQUEST_TIMEOUT_MS = 60_000;

/** A request through the balancer; null when it failed for the client (reset, 502/504 from nginx). */
async function call(url: string, init: RequestInit = {}): Promise<Response | null> {
  const started = Date.now();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status === 502 || res.status === 504) return null;
    return new Response(res.status === 204 ? null : body, { status: res.status, headers: res.headers });
  } catch (err) {
    if (err instanceof Error && err.name === 'TimeoutError') {
      throw new Error(`${init.method ?? 'GET'} ${url} got no answer within ${Date.now() - started} ms`, { cause: err });
    }
    if (err instanceof TypeError) return null;
    throw err;
  }
}

/** Retries an idempotent-enough request until the balancer finds a live replica. */
async function retried(url: string, init: RequestInit = {}): Promise<Response> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const res = await call(url, init);
    if (res && res.status !== 503) return res;
    await sleep(100);
  }
  throw new Error(`${init.method ?? 'GET'} ${url}: no replica answered`);
}

function rangeOffset(res: Response): number {
  const m = /^0-(\d+)$/.exec(res.headers.get('range') ?? '');
  assert.ok(m, `Range ${res.headers.get('range')}`);
  return Number(m[1]) + 1;
}

/** A chunked upload that survives replica kills: on a failed request it asks the session's status and resumes. */
async function pushBlob(base: string, repo: string, blob: Blob, random: Random, counts: Counts): Promise<void> {
  let failures = 0;
  for (;;) {
    const start = await retried(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const location = start.headers.get('location')!;
    const chunk = random.pick([1024 * 1024, 2 * 1024 * 1024, 4 * 1024 * 1024]);
    let offset = 0;
    let interrupted = false;
    /** The last word on this session was a GET's 204 + Range: its next write must not find it unknown. */
    let resumedAfter204 = false;
    for (;;) {
      const last = blob.data.length - offset <= chunk;
      const piece = new Uint8Array(blob.data.subarray(offset, last ? blob.data.length : offset + chunk));
      const res = last
        ? await call(`${base}${location}?digest=${blob.digest}`, { method: 'PUT', body: piece })
        : await call(`${base}${location}`, {
            method: 'PATCH',
            body: piece,
            headers: { 'content-range': `${offset}-${offset + piece.length - 1}` },
          });
      if (res && res.status === 201) {
        if (interrupted) counts.resumedOnAnotherReplica++;
        return;
      }
      if (res && res.status === 202) {
        offset = rangeOffset(res);
        resumedAfter204 = false;
        continue;
      }
      // The request failed with its replica (or a 503 while shutting down): ask where the session stands.
      let answer = res ? `${res.status} ${await res.text()}` : 'no answer (reset or 502/504 from nginx)';
      // A session may also end cleanly unknown (404 BLOB_UPLOAD_UNKNOWN) when a kill left it
      // without its staged bytes; the client then starts that blob again. Counted and reported.
      // What is never allowed is a 404 after a GET answered 204 (asserted below).
      if (res?.status === 404 && answer.includes('BLOB_UPLOAD_UNKNOWN')) {
        assert.ok(!resumedAfter204, `a session whose GET answered 204 + Range failed its next write: ${answer}`);
        counts.unknownOnWrite++;
      } else if (res) assert.ok(res.status === 503, answer);
      interrupted = true;
      let outcome: 'done' | 'restart' | 'continue';
      // Asked again after every failed attempt: a PUT whose answer was lost may have finished the session.
      for (;;) {
        counts.failedRequests++;
        // Bounded, so a replica that keeps refusing fails the test with its answer instead of spinning.
        assert.ok(++failures <= MAX_FAILURES_PER_BLOB, `${blob.digest}: ${failures} failed requests, the last: ${answer}`);
        await sleep(50);
        const status = await retried(`${base}${location}`);
        if (status.status === 404) {
          // Unknown on GET (its commit may have happened): the blob is there whole, or the client starts it again.
          const head = await retried(`${base}/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' });
          counts.unknownOnGet++;
          outcome = head.status === 200 ? 'done' : 'restart';
          break;
        }
        assert.equal(status.status, 204, `GET of the session after a failed request: ${status.status}`);
        offset = status.headers.get('range') === '0-0' && offset <= 1 ? 0 : rangeOffset(status);
        if (blob.data.length - offset > chunk) {
          outcome = 'continue';
          resumedAfter204 = true;
          break;
        }
        // The PUT that follows a 204 must complete; if it fails again it is only because a replica died under it.
        const put = await call(`${base}${location}?digest=${blob.digest}`, {
          method: 'PUT',
          body: new Uint8Array(blob.data.subarray(offset)),
        });
        if (put && put.status !== 503) {
          assert.equal(put.status, 201, `a session that answered 204 + Range did not complete: ${put.status} ${await put.text()}`);
          counts.resumedOnAnotherReplica++;
          outcome = 'done';
          break;
        }
        answer = put ? `${put.status} ${await put.text()}` : 'no answer (reset or 502/504 from nginx)';
      }
      if (outcome === 'done') return;
      if (outcome === 'restart') break;
    }
  }
}

describe('replicas: one killed at random moments while pushes continue through nginx (PostgreSQL + S3)', () => {
  let db: TestDatabase;
  let s3: LocalS3;
  let nginx: Nginx;
  let env: NodeJS.ProcessEnv;
  const replicas: Replica[] = [];

  before(async () => {
    requireNginx();
    db = await createTestDatabase('berth_ha_kill');
    s3 = await startLocalS3('berth-ha-kill');
    env = { BERTH_METADATA_DRIVER: 'postgres', BERTH_METADATA_URL: db.url, BERTH_GC_ENABLED: 'false', ...s3Env(s3, 'ha-kill') };
    for (let i = 0; i < 3; i++) {
      const dataDir = tempDir('berth-ha-kill-');
      const port = await freePort();
      replicas.push({
        dataDir,
        port,
        process: await startBerthProcess({ ...env, BERTH_DATA_DIR: dataDir, BERTH_HTTP_ADDR: `127.0.0.1:${port}` }),
      });
    }
    nginx = await startNginx(replicas.map((r) => `127.0.0.1:${r.port}`));
  });

  after(async () => {
    await nginx?.stop();
    await Promise.all(replicas.map((r) => r.process.kill()));
    for (const r of replicas) rmSync(r.dataDir, { recursive: true, force: true });
    await s3?.close();
    await db?.drop();
  });

  it(`every push finishes and every acknowledged image is intact (seed ${SEED}, ${KILLS} kills)`, async (t) => {
    const random = new Random(SEED);
    const counts: Counts = { images: 0, failedRequests: 0, resumedOnAnotherReplica: 0, unknownOnGet: 0, unknownOnWrite: 0 };
    const pushed: { repo: string; tag: string; image: Image }[] = [];
    let stopping = false;
    // The first worker failure stops everything (the killer too) and is rethrown at the end.
    let failure: unknown = null;
    const stopOn = (err: unknown) => {
      failure ??= err;
      stopping = true;
    };
    const workers = Array.from({ length: 4 }, async (_, w) => {
      const wr = new Random(random.int(0, 2 ** 31));
      for (let n = 0; !stopping; n++) {
        const repo = `ha/kill${w}`;
        const config = blobOf(Buffer.from(JSON.stringify({ nonce: randomBytes(8).toString('hex') })));
        const layers = [blobOf(randomBytes(wr.int(512 * 1024, 7 * 1024 * 1024)))];
        for (const blob of [config, ...layers]) await pushBlob(nginx.url, repo, blob, wr, counts);
        const image = imageOf(config, layers);
        const tag = `t${n}`;
        const res = await retried(`${nginx.url}/v2/${repo}/manifests/${tag}`, {
          method: 'PUT',
          body: new Uint8Array(image.manifest.data),
          headers: { 'content-type': MANIFEST_TYPE },
        });
        assert.equal(res.status, 201, await res.text());
        pushed.push({ repo, tag, image });
        counts.images++;
      }
    }).map((worker) => worker.catch(stopOn));
    let kills = 0;
    const killer = (async () => {
      for (; kills < KILLS && !stopping; kills++) {
        await sleep(random.int(800, 3000));
        const victim = random.pick(replicas);
        await victim.process.kill();
        await sleep(random.int(200, 1000));
        victim.process = await startBerthProcess({ ...env, BERTH_DATA_DIR: victim.dataDir, BERTH_HTTP_ADDR: `127.0.0.1:${victim.port}` });
      }
    })();
    await killer.catch(stopOn);
    if (!stopping) await sleep(1000);
    stopping = true;
    await Promise.all(workers);
    if (failure) throw failure;
    t.diagnostic(`${kills} kills; ${JSON.stringify(counts)}`);
    assert.ok(counts.failedRequests > 0, 'some request died with its replica (else the kills proved nothing)');
    for (const { repo, tag, image } of pushed) {
      const res = await retried(`${nginx.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: MANIFEST_TYPE } });
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.manifest.data, `${repo}:${tag}`);
      for (const blob of image.layers) {
        const pulled = await retried(`${nginx.url}/v2/${repo}/blobs/${blob.digest}`);
        assert.equal(blobOf(Buffer.from(await pulled.arrayBuffer())).digest, blob.digest, `${repo}@${blob.digest}`);
      }
    }
    const check = await fsck(tempDir('berth-ha-kill-fsck-'), [], env);
    assert.equal(check.code, 0, `berth fsck finds no corruption:\n${check.stdout}\n${check.stderr}`);
  });
});
