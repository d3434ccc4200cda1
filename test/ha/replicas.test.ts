import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { blobPath, createLayoutImage, layoutBlobs, taggedDescriptor, type LayoutImage } from '../helpers/images.js';
import { freePort, requireNginx, startNginx, type Nginx } from '../helpers/nginx.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { RegistryClient, makeBlob } from '../helpers/registry-client.js';
import { startLocalS3, type LocalS3 } from '../helpers/s3.js';
import { ROOT, startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { loggedRequests, type LoggedRequest } from '../interop/request-log.js';
import { fsck } from '../robustness/support.js';

/**
 * Stateless replicas: three `berth serve` processes share one PostgreSQL database and one
 * S3 bucket (s3rver) behind a real nginx that round-robins every request, the way
 * docs/deploy.md describes production. Nothing here is mocked; if nginx, PostgreSQL or
 * skopeo is missing the suite fails.
 */

const KB = 1024;
const MB = 1024 * KB;
const ADMIN_PASSWORD = 'ha-admin-password-1';
const CREDS = `admin:${ADMIN_PASSWORD}`;
const REPLICAS = 3;

interface Replica {
  name: string;
  process: BerthProcess;
  dataDir: string;
}

describe('three stateless replicas behind nginx, one PostgreSQL database, one S3 bucket', () => {
  let db: TestDatabase;
  let s3: LocalS3;
  let nginx: Nginx;
  let sandbox: ClientSandbox;
  let sharedEnv: NodeJS.ProcessEnv;
  const replicas: Replica[] = [];

  before(async () => {
    requireTools(['skopeo']);
    requireNginx();
    db = await createTestDatabase('berth_ha');
    s3 = await startLocalS3('berth-ha');
    const balancerPort = await freePort();
    sharedEnv = {
      // The example configuration from docs/deploy.md, with test-local endpoints on top.
      BERTH_CONFIG: path.join(ROOT, 'examples/berth-ha.yaml'),
      BERTH_HTTP_HOST: `http://127.0.0.1:${balancerPort}`,
      BERTH_METADATA_DRIVER: 'postgres',
      BERTH_METADATA_URL: db.url,
      BERTH_STORAGE_S3_BUCKET: s3.bucket,
      BERTH_STORAGE_S3_REGION: 'us-east-1',
      BERTH_STORAGE_S3_REGIONENDPOINT: s3.endpoint,
      BERTH_STORAGE_S3_FORCEPATHSTYLE: 'true',
      BERTH_STORAGE_S3_ACCESSKEY: s3.accessKeyId,
      BERTH_STORAGE_S3_SECRETKEY: s3.secretAccessKey,
      BERTH_STORAGE_S3_ROOTDIRECTORY: 'ha',
      BERTH_STORAGE_S3_CHUNKSIZE: String(5 * MB),
      BERTH_AUTH_MODE: 'token',
      BERTH_ADMIN_PASSWORD: ADMIN_PASSWORD,
      // Every replica schedules GC every second, so their runs meet; the lease must keep them apart.
      BERTH_GC_SCHEDULE: '* * * * * *',
    };
    // Started at the same moment, as a Deployment's pods are: migrations, the initial admin
    // and the first signing key must each happen once.
    const started = await Promise.allSettled(
      Array.from({ length: REPLICAS }, async (_, i) => {
        const dataDir = tempDir('berth-ha-replica-');
        try {
          const replica = { name: `replica-${i}`, dataDir, process: await startBerthProcess({ ...sharedEnv, BERTH_DATA_DIR: dataDir }) };
          replicas.push(replica); // so `after` stops it even if another replica failed to start
          return replica;
        } catch (err) {
          rmSync(dataDir, { recursive: true, force: true });
          throw err;
        }
      }),
    );
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    replicas.sort((a, b) => a.name.localeCompare(b.name));
    nginx = await startNginx(
      replicas.map((r) => `127.0.0.1:${r.process.port}`),
      balancerPort,
    );
    sandbox = ClientSandbox.create();
  });

  after(async () => {
    await nginx?.stop();
    await Promise.all(replicas.map((r) => r.process.stop()));
    for (const r of replicas) rmSync(r.dataDir, { recursive: true, force: true });
    sandbox?.destroy();
    await s3?.close();
    await db?.drop();
  });

  const viaBalancer = (ref: string) => `docker://${registryHost(nginx.url)}/${ref}`;
  const direct = (replica: Replica, ref: string) => `docker://${registryHost(replica.process.url)}/${ref}`;
  const push = (layout: string, ref: string, extra: string[] = []) =>
    sandbox.skopeo(['copy', ...extra, '--dest-tls-verify=false', '--dest-creds', CREDS, `oci:${layout}:src`, viaBalancer(ref)], {
      timeoutMs: 120_000,
    });
  const marks = () => replicas.map((r) => loggedRequests(r.process.output()).length);
  const since = (from: number[]) => replicas.map((r, i) => loggedRequests(r.process.output()).slice(from[i]));

  async function tokenFrom(baseUrl: string, scope: string): Promise<string> {
    const res = await fetch(`${baseUrl}/token?service=berth&scope=${encodeURIComponent(scope)}`, {
      headers: { authorization: `Basic ${Buffer.from(CREDS).toString('base64')}` },
    });
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { token: string }).token;
  }

  /** skopeo pulls `ref` straight from `replica` (not through nginx) and the layout must match `image` exactly. */
  async function assertPullsIdentical(replica: Replica, ref: string, image: LayoutImage, source: string): Promise<void> {
    const out = sandbox.path('out', `${replica.name}-${ref.replace(/[/:]/g, '-')}`);
    await sandbox.skopeo(['copy', '--src-tls-verify=false', '--src-creds', CREDS, direct(replica, ref), `oci:${out}:pulled`]);
    assert.equal(taggedDescriptor(out, 'pulled').digest, image.manifest.digest, `${replica.name} serves the pushed manifest`);
    const expected = [image.manifest, image.config, ...image.layers].map((d) => d.digest).sort();
    const pulled = layoutBlobs(out);
    assert.deepEqual([...pulled.keys()].sort(), expected, `${replica.name}: the pulled layout holds exactly the image's blobs`);
    for (const digest of expected) {
      assert.equal(pulled.get(digest), digest, `${replica.name}: ${digest} pulled intact`);
      assert.ok(
        readFileSync(blobPath(out, digest)).equals(readFileSync(blobPath(source, digest))),
        `${replica.name}: ${digest} byte-identical`,
      );
    }
  }

  /**
   * The replica receiving a large upload: the one whose process has read `threshold` bytes
   * (from its sockets) since `before` was sampled. nginx logs and Berth's request log only
   * name a replica once the request is over; this finds it while the body still streams.
   */
  async function receivingReplica(before: number[], threshold: number): Promise<{ replica: Replica; read: number }> {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const grown = replicas.map((r, i) => bytesRead(r.process) - before[i]!);
      const busiest = grown.indexOf(Math.max(...grown));
      if (grown[busiest]! >= threshold) return { replica: replicas[busiest]!, read: grown[busiest]! };
      await sleep(20);
    }
    throw new Error(`no replica read ${threshold} bytes within 60 s`);
  }

  it('replicas started together share one admin and one key set: a token issued by any replica is accepted by every replica', async () => {
    for (const issuer of replicas) {
      const token = await tokenFrom(issuer.process.url, 'repository:ha/tokens:pull,push');
      for (const verifier of replicas) {
        const res = await fetch(`${verifier.process.url}/v2/ha/tokens/tags/list`, { headers: { authorization: `Bearer ${token}` } });
        // 404 NAME_UNKNOWN means the token was accepted and the request reached the registry.
        assert.equal(res.status, 404, `token from ${issuer.name} on ${verifier.name}: ${await res.text()}`);
      }
    }
    const unauthenticated = await fetch(`${replicas[0]!.process.url}/v2/ha/tokens/tags/list`);
    assert.equal(unauthenticated.status, 401, 'and without a token the request is refused');
    const issuedViaBalancer = await tokenFrom(nginx.url, 'repository:ha/tokens:pull');
    for (const verifier of replicas) {
      const res = await fetch(`${verifier.process.url}/v2/`, { headers: { authorization: `Bearer ${issuedViaBalancer}` } });
      assert.equal(res.status, 200, `token fetched through nginx works on ${verifier.name}`);
    }
  });

  it('a chunked upload through the balancer continues on whichever replica gets each request', async () => {
    const token = await tokenFrom(nginx.url, 'repository:ha/chunked:pull,push');
    const client = new RegistryClient(nginx.url, { authorization: `Bearer ${token}` });
    const blob = makeBlob(6 * MB + 123);
    const mark = marks();
    const res = await client.pushBlobChunked('ha/chunked', blob, MB);
    assert.equal(res.status, 201, await res.clone().text());

    const uploadRequests = () =>
      since(mark).map((requests) => requests.filter((r) => r.url.startsWith('/v2/ha/chunked/blobs/uploads/')).length);
    // A replica logs a request once its response is sent, so the last line may still be on its way.
    const served = await waitFor(uploadRequests, (counts) => counts.reduce((a, b) => a + b, 0) >= 1 + 7 + 1);
    assert.equal(
      served.reduce((a, b) => a + b, 0),
      1 + 7 + 1,
      `POST, seven PATCHes and the PUT were each served once: ${served.join('/')}`,
    );
    assert.ok(
      served.every((n) => n >= 2),
      `round-robin spread the session over all replicas: ${served.join('/')}`,
    );
    for (const replica of replicas) {
      const pulled = await fetch(`${replica.process.url}/v2/ha/chunked/blobs/${blob.digest}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(pulled.status, 200);
      assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(blob.data), `${replica.name} serves the blob byte-identical`);
    }
  });

  it('skopeo pushes through the balancer, uploads cross replicas, and every replica pulls the image back byte-identical', async () => {
    const dir = sandbox.path('layouts', 'spread');
    const image = await createLayoutImage(dir, 'src', [700 * KB, 2 * MB, 3 * MB]);
    const mark = marks();
    const s3Mark = s3.requests.length;
    await push(dir, 'ha/spread:v1');
    // Staged bytes read back from S3: a replica finishing an upload it did not receive re-hashes it.
    const stagedReads = s3.requests.slice(s3Mark).filter((r) => r.method === 'GET' && r.url.includes('/uploads/')).length;

    const requests = since(mark);
    const distribution = requests.map((r) => r.length);
    console.log(`skopeo push: requests served per replica ${distribution.join(' / ')}; staged segments read back from S3: ${stagedReads}`);
    assert.ok(
      distribution.every((n) => n > 0),
      `every replica served part of the push: ${distribution.join('/')}`,
    );
    const crossing = uploadsServedBy(requests, 'ha/spread').filter((s) => s.replicas.size >= 2);
    assert.ok(crossing.length >= 1, 'at least one upload session had its requests served by two or more replicas');

    for (const replica of replicas) await assertPullsIdentical(replica, 'ha/spread:v1', image, dir);
  });

  it("the replicas' scheduled GC runs never overlap: the lease admits one collector at a time", async () => {
    // Each replica has tried every second since the suite started; wait for enough contested rounds.
    const observe = () => ({
      runs: replicas.flatMap((r) => gcRuns(r.process.output(), r.name)),
      skipped: replicas.map(
        (r) =>
          r.process
            .output()
            .split('\n')
            // Contested rounds: a replica found the gc lease taken, or waited for another's outbox
            // dispatch (GC brings the review queue up to date under the events lease first).
            .filter(
              (l) => l.includes('another collector holds the lease') || l.includes('waiting for the outbox dispatch another process runs'),
            ).length,
      ),
    });
    const { runs, skipped } = await waitFor(
      observe,
      (o) => o.runs.length >= 5 && new Set(o.runs.map((r) => r.replica)).size >= 2 && o.skipped.some((n) => n > 0),
      20_000,
    );
    assert.ok(runs.length >= 5, `GC ran repeatedly (${runs.length} runs)`);
    assert.ok(new Set(runs.map((r) => r.replica)).size >= 2, 'more than one replica collected at some point');
    assert.ok(
      skipped.reduce((a, b) => a + b, 0) >= 1,
      `replicas met a lease held by another (gc skips or outbox waits per replica: ${skipped.join('/')})`,
    );
    runs.sort((a, b) => a.start - b.start);
    for (let i = 1; i < runs.length; i++) {
      const [prev, next] = [runs[i - 1]!, runs[i]!];
      assert.ok(next.start >= prev.end, `GC on ${next.replica} started at ${next.start} while ${prev.replica} ran until ${prev.end}`);
    }
    const failures = replicas.flatMap((r) =>
      r.process
        .output()
        .split('\n')
        .filter((l) => /gc: (run stopped early|scheduled run failed)/.test(l)),
    );
    assert.deepEqual(failures, [], 'no GC run failed');
    console.log(`gc: ${runs.length} runs, skips per replica ${skipped.join(' / ')}`);
  });

  it('a replica stopped (SIGTERM) while receiving a layer finishes that request first; the push succeeds and the restarted replica rejoins', async () => {
    const dir = sandbox.path('layouts', 'drained');
    const image = await createLayoutImage(dir, 'src', [48 * MB]);
    const layer = image.layers[0]!;
    const before = replicas.map((r) => bytesRead(r.process));
    const mark = marks();
    const pushing = push(dir, 'ha/drained:v1');
    const { replica: stopped, read } = await receivingReplica(before, 4 * MB);
    const index = replicas.indexOf(stopped);
    await stopped.process.stop(); // SIGTERM; resolves once the process has exited
    await pushing; // throws if skopeo failed
    const served = since(mark)[index]!;
    assert.ok(
      served.some((r) => r.method === 'PATCH' && r.status === 202),
      `${stopped.name}, stopped after ${(read / MB).toFixed(1)} MB, answered the layer's PATCH before exiting`,
    );

    const restarted = await startBerthProcess({
      ...sharedEnv,
      BERTH_DATA_DIR: stopped.dataDir,
      BERTH_HTTP_ADDR: `127.0.0.1:${stopped.process.port}`,
    });
    replicas[index] = { ...stopped, process: restarted };
    // nginx skipped the replica while it was down (fail_timeout 10 s); it must come back into the rotation.
    const restartedAt = Date.now();
    const rejoined = await waitFor(
      async () => {
        await fetch(`${nginx.url}/healthz`);
        return loggedRequests(restarted.output()).some((r) => r.url === '/healthz');
      },
      (served) => served,
      30_000,
    );
    assert.ok(rejoined, `nginx routes requests to the restarted ${stopped.name} again`);
    for (const replica of replicas) await assertPullsIdentical(replica, 'ha/drained:v1', image, dir);
    console.log(
      `graceful stop: ${stopped.name} drained its PATCH of ${(layer.size / MB).toFixed(1)} MB (SIGTERM after ${(read / MB).toFixed(1)} MB); push succeeded first time; back in nginx's rotation ${Date.now() - restartedAt} ms after restarting`,
    );
  });

  it('a replica killed mid-layer: the push is retried through the survivors and the image is intact everywhere', async () => {
    const dir = sandbox.path('layouts', 'killed');
    const image = await createLayoutImage(dir, 'src', [64 * MB]);
    const layer = image.layers[0]!;
    const before = replicas.map((r) => bytesRead(r.process));
    const mark = marks();
    const first = push(dir, 'ha/killed:v1', ['--retry-times', '3']).catch((err: unknown) => err as Error);

    const { replica: victim, read: readByVictim } = await receivingReplica(before, 8 * MB);
    await victim.process.kill();
    assert.ok(readByVictim < layer.size, `killed after ${readByVictim} of ${layer.size} layer bytes`);
    const survivors = replicas.filter((r) => r !== victim);

    const outcome = await first;
    let retriedByTest = false;
    if (outcome instanceof Error) {
      // skopeo gave up despite its own retries: the operator (here, the test) runs the copy again.
      const reason = /--- stderr ---\n(?:…)?([^\n]*(?:\n[^\n]*)?)/.exec(outcome.message)?.[1] ?? outcome.message;
      console.log(`first push failed after the kill: ${reason.trim()}; running it again`);
      retriedByTest = true;
      await push(dir, 'ha/killed:v1');
    }
    const victimRequests = since(mark)[replicas.indexOf(victim)]!;
    assert.ok(
      !victimRequests.some((r) => r.method === 'PUT' && r.url.includes(encodeURIComponent(layer.digest))),
      'the killed replica never completed the layer',
    );
    console.log(
      `kill mid-push: ${victim.name} killed after reading ${(readByVictim / MB).toFixed(1)} MB of a ${(layer.size / MB).toFixed(1)} MB layer; ` +
        `push ${retriedByTest ? 'completed when run again' : "completed by skopeo's own retry"}; ` +
        `requests served during the push per survivor ${since(mark)
          .filter((_, i) => replicas[i] !== victim)
          .map((r) => r.length)
          .join(' / ')}`,
    );

    for (const replica of survivors) {
      const ready = await fetch(`${replica.process.url}/readyz`);
      assert.equal(ready.status, 200, `${replica.name} stays ready`);
      await assertPullsIdentical(replica, 'ha/killed:v1', image, dir);
    }
    const check = await fsck(tempDir('berth-ha-fsck-'), ['--verify-content'], sharedEnv);
    assert.equal(check.code, 0, `berth fsck finds no corruption:\n${check.stdout}\n${check.stderr}`);
    const { checked } = check.report;
    // Blobs: the chunked one, 2 images × (config + layers), plus the manifests stored as blobs.
    assert.ok(
      checked.blobRows >= 1 + 4 + 2 && checked.manifests >= 2 && checked.contentVerified,
      `fsck checked everything: ${JSON.stringify(checked)}`,
    );
    assert.deepEqual(check.report.skipped, [], 'fsck could run every check on S3 + PostgreSQL');
  });
});

/** For each upload session of `repo`, the replicas that served its POST/PATCH/PUT requests. */
function uploadsServedBy(perReplica: LoggedRequest[][], repo: string): { session: string; replicas: Set<number> }[] {
  const sessions = new Map<string, Set<number>>();
  const prefix = `/v2/${repo}/blobs/uploads/`;
  perReplica.forEach((requests, replica) => {
    for (const r of requests) {
      if (!r.url.startsWith(prefix)) continue;
      const session = r.url.slice(prefix.length).split('?')[0]!;
      if (session === '') continue; // the POST that opened a session: its id is in the response only
      const served = sessions.get(session) ?? new Set<number>();
      served.add(replica);
      sessions.set(session, served);
    }
  });
  return [...sessions].map(([session, replicas]) => ({ session, replicas }));
}

/** Polls `read` until `done` holds (or `timeoutMs` passes) and returns the last value. */
async function waitFor<T>(read: () => T | Promise<T>, done: (value: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await sleep(50);
    value = await read();
  }
  return value;
}

/** Bytes the process has read through system calls (sockets included): Linux /proc/<pid>/io. */
function bytesRead(berth: BerthProcess): number {
  const io = readFileSync(`/proc/${berth.child.pid}/io`, 'utf8');
  return Number(/^rchar:\s*(\d+)/m.exec(io)![1]);
}

/** GC runs a replica logged: from "gc: run started" to its "gc: run finished". */
function gcRuns(output: string, replica: string): { replica: string; start: number; end: number }[] {
  const runs: { replica: string; start: number; end: number }[] = [];
  let start: number | undefined;
  for (const line of output.split('\n')) {
    if (!line.includes('"msg":"gc: run')) continue;
    const entry = JSON.parse(line) as { time: number; msg: string };
    if (entry.msg === 'gc: run started') start = entry.time;
    else if (entry.msg === 'gc: run finished' && start !== undefined) {
      runs.push({ replica, start, end: entry.time });
      start = undefined;
    }
  }
  return runs;
}
