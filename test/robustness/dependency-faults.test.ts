import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import S3rver from '@20minutes/s3rver';
import { freePort } from '../helpers/nginx.js';
import { localS3Settings, type LocalS3 } from '../helpers/s3.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { blobOf, faultSeed, fsckWith, imageOf, Random, s3Env, type Image } from './faults.js';

/**
 * Dependency faults: the metadata database or the object store goes away under a running
 * `berth serve` and comes back. While it is down requests fail fast with 503 (no hang, no
 * 500, no crash); afterwards nothing is half-committed and Berth serves again without a
 * restart (its pool reconnects). PostgreSQL runs as a private throwaway cluster (initdb +
 * pg_ctl on a free port) so the shared server of the other suites is never touched;
 * S3 is an s3rver stopped and started again on the same port and directory.
 */
const SEED = faultSeed(20261208);
const PG_BIN = process.env.BERTH_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
/** A request during an outage must answer within this (the pool's connect timeout is 5 s). */
const FAIL_FAST_MS = 8_000;

interface Cluster {
  url: string;
  start(): void;
  /** pg_ctl stop -m immediate: the server dies without a shutdown checkpoint, as in a crash. */
  crash(): void;
  destroy(): void;
}

/** A private PostgreSQL cluster (as user postgres when run as root: initdb refuses root). */
async function privateCluster(): Promise<Cluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-pg-'));
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(dir, uid, gid);
  }
  const run = (bin: string, args: string[]) =>
    execFileSync(asRoot ? 'runuser' : path.join(PG_BIN, bin), asRoot ? ['-u', 'postgres', '--', path.join(PG_BIN, bin), ...args] : args, {
      stdio: 'pipe',
      cwd: dir,
    });
  const data = path.join(dir, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const cluster: Cluster = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: () => run('pg_ctl', ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', 'start']),
    crash: () => run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']),
    destroy: () => {
      try {
        cluster.crash();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  cluster.start();
  return cluster;
}

interface Pushed {
  repo: string;
  tag: string;
  image: Image;
}

/**
 * Pushes images (chunked layer, monolithic config, manifest) until `stop()`; a 503 is retried
 * after a pause (as clients do), any other error fails. Unanswered or 503-answered manifest
 * PUTs are collected: afterwards each is absent or whole, never half-stored.
 */
function pusher(base: string, repo: string, random: Random) {
  const acked: Pushed[] = [];
  const uncertain: Pushed[] = [];
  const statuses = new Map<number, number>();
  let stopped = false;
  let resumed = 0;
  const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
  /** One request, retried while the dependency is down; null once stopped. */
  const send = async (url: string, init: RequestInit, ok: number[]): Promise<Response | null> => {
    for (;;) {
      if (stopped) return null;
      const started = Date.now();
      const res = await fetch(url, init);
      const body = Buffer.from(await res.arrayBuffer());
      count(res.status);
      if (ok.includes(res.status)) return new Response(res.status === 204 ? null : body, { status: res.status, headers: res.headers });
      assert.equal(res.status, 503, `${init.method} ${url}: ${res.status} ${body.toString()}`);
      assert.ok(Date.now() - started < FAIL_FAST_MS, `503 took ${Date.now() - started} ms`);
      return new Response(body, { status: 503 });
    }
  };
  const pushOne = async (n: number): Promise<void> => {
    const config = blobOf(Buffer.from(JSON.stringify({ nonce: randomBytes(8).toString('hex') })));
    const layer = blobOf(randomBytes(random.int(64 * 1024, 3 * 1024 * 1024)));
    const put = await send(
      `${base}/v2/${repo}/blobs/uploads/?digest=${config.digest}`,
      { method: 'POST', body: new Uint8Array(config.data) },
      [201],
    );
    if (!put || put.status === 503) return;
    const start = await send(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' }, [202]);
    if (!start || start.status === 503) return;
    const location = start.headers.get('location')!;
    const half = Math.floor(layer.data.length / 2);
    // The layer in two requests; after a 503 the session's GET says where to resume (as clients do).
    for (let offset = 0, interrupted = false; ;) {
      const res =
        offset < half
          ? await send(
              `${base}${location}`,
              {
                method: 'PATCH',
                body: new Uint8Array(layer.data.subarray(offset, half)),
                headers: { 'content-range': `${offset}-${half - 1}` },
              },
              [202],
            )
          : await send(
              `${base}${location}?digest=${layer.digest}`,
              { method: 'PUT', body: new Uint8Array(layer.data.subarray(offset)) },
              [201],
            );
      if (!res) return;
      if (res.status === 201) {
        if (interrupted) resumed++;
        break;
      }
      if (res.status === 202) {
        offset = half;
        continue;
      }
      interrupted = true;
      await sleep(200);
      const status = await send(`${base}${location}`, {}, [204, 404]);
      if (!status) return;
      if (status.status === 404) return; // cleanly unknown: the client would start the blob again
      if (status.status === 204)
        offset = status.headers.get('range') === '0-0' ? 0 : Number(/^0-(\d+)$/.exec(status.headers.get('range')!)![1]) + 1;
    }
    const entry = { repo, tag: `t${n}`, image: imageOf(config, [layer]) };
    const res = await send(
      `${base}/v2/${repo}/manifests/${entry.tag}`,
      { method: 'PUT', body: new Uint8Array(entry.image.manifest.data), headers: { 'content-type': MANIFEST_TYPE } },
      [201],
    );
    if (res?.status === 201) acked.push(entry);
    else uncertain.push(entry);
  };
  const running = (async () => {
    for (let n = 0; !stopped; n++) {
      try {
        await pushOne(n);
      } catch (err) {
        // A connection the server closed while its dependency failed is a failure too: only 503 is acceptable.
        throw new Error(`push ${n} failed`, { cause: err });
      }
      if (statuses.get(503)) await sleep(50);
    }
  })();
  return {
    acked,
    uncertain,
    statuses,
    get resumed() {
      return resumed;
    },
    async stop() {
      stopped = true;
      await running;
    },
  };
}

/** Every acknowledged image whole; every uncertain one absent or whole. */
async function verify(base: string, acked: Pushed[], uncertain: Pushed[]): Promise<void> {
  for (const { repo, tag, image } of acked) {
    const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { headers: { accept: MANIFEST_TYPE } });
    assert.equal(res.status, 200, `acknowledged ${repo}:${tag}`);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.manifest.data);
    const blob = await fetch(`${base}/v2/${repo}/blobs/${image.layers[0]!.digest}`);
    assert.equal(blobOf(Buffer.from(await blob.arrayBuffer())).digest, image.layers[0]!.digest);
  }
  for (const { repo, tag, image } of uncertain) {
    const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { headers: { accept: MANIFEST_TYPE } });
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status === 404) continue;
    assert.deepEqual(body, image.manifest.data, `half-stored ${repo}:${tag}`);
  }
}

/** Times one request during an outage: it must answer 503 (not hang, not 500) within FAIL_FAST_MS. */
async function assertFailsFast(url: string, init: RequestInit = {}): Promise<number> {
  const started = Date.now();
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(FAIL_FAST_MS + 5_000) });
  const body = await res.text();
  const ms = Date.now() - started;
  assert.equal(res.status, 503, `${init.method ?? 'GET'} ${url} during the outage: ${res.status} ${body}`);
  assert.ok(ms < FAIL_FAST_MS, `503 after ${ms} ms`);
  return ms;
}

/** Polls until `url` answers 200 (the pool reconnected); returns how long it took. */
async function recovers(url: string): Promise<number> {
  const started = Date.now();
  for (;;) {
    const res = await fetch(url).catch(() => null);
    await res?.arrayBuffer();
    if (res?.status === 200) return Date.now() - started;
    assert.ok(Date.now() - started < 30_000, `${url} did not recover within 30 s`);
    await sleep(200);
  }
}

describe('dependency faults under a running berth serve', () => {
  let server: BerthProcess | undefined;
  after(async () => server?.kill());

  it(`PostgreSQL crashed and restarted during pushes and pulls: 503 at once while down, nothing half-committed, the pool recovers (seed ${SEED})`, async (t) => {
    const cluster = await privateCluster();
    const dataDir = tempDir('berth-dep-pg-');
    try {
      const env = {
        BERTH_DATA_DIR: dataDir,
        BERTH_METADATA_DRIVER: 'postgres',
        BERTH_METADATA_URL: cluster.url,
        BERTH_GC_ENABLED: 'false',
      };
      server = await startBerthProcess(env);
      const base = server.url;
      const work = pusher(base, 'dep/pg', new Random(SEED));
      await sleep(1500);
      cluster.crash();
      const failFast = [
        await assertFailsFast(`${base}/v2/dep/pg/manifests/t0`, { headers: { accept: MANIFEST_TYPE } }),
        await assertFailsFast(`${base}/v2/dep/pg/blobs/uploads/`, { method: 'POST' }),
        await assertFailsFast(`${base}/v2/dep/pg/tags/list`),
      ];
      await sleep(1000);
      cluster.start();
      const recoveredMs = await recovers(`${base}/v2/dep/pg/tags/list`);
      await sleep(1500);
      await work.stop();
      assert.equal(server.child.exitCode, null, 'berth serve kept running');
      assert.ok(work.acked.length > 0, 'pushes completed around the outage');
      assert.ok((work.statuses.get(503) ?? 0) + failFast.length > 0);
      await verify(base, work.acked, work.uncertain);
      const check = await fsckWith(env);
      assert.equal(check.corrupt, 0, JSON.stringify(check.report.problems));
      t.diagnostic(
        `503 in ${failFast.join('/')} ms while down; pool recovered ${recoveredMs} ms after the restart; ${work.acked.length} pushes acknowledged, ${work.resumed} layer uploads resumed after a 503, ${work.uncertain.length} uncertain (absent or whole); statuses ${JSON.stringify([...work.statuses])}`,
      );
    } finally {
      await server?.kill();
      server = undefined;
      cluster.destroy();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it(`S3 stopped and started mid-upload: 503 while down, uploads resume and complete afterwards (seed ${SEED})`, async (t) => {
    const directory = mkdtempSync(path.join(os.tmpdir(), 'berth-dep-s3-'));
    const port = await freePort();
    const bucket = 'berth-dep';
    const startS3 = async () => {
      const s3 = new S3rver({
        address: '127.0.0.1',
        port,
        silent: true,
        directory,
        vhostBuckets: false,
        configureBuckets: [{ name: bucket }],
      });
      await s3.run();
      return s3;
    };
    let s3 = await startS3();
    const local: LocalS3 = {
      endpoint: `http://127.0.0.1:${port}`,
      bucket,
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      requests: [],
      directory,
      close: async () => {},
    };
    const dataDir = tempDir('berth-dep-s3-');
    const db = await import('../helpers/postgres.js').then((m) => m.createTestDatabase('berth_dep'));
    try {
      const env = {
        BERTH_DATA_DIR: dataDir,
        BERTH_METADATA_DRIVER: 'postgres',
        BERTH_METADATA_URL: db.url,
        BERTH_GC_ENABLED: 'false',
        ...s3Env(local, 'dep'),
      };
      assert.equal(localS3Settings(local, 'dep').bucket, bucket);
      server = await startBerthProcess(env);
      const base = server.url;
      const work = pusher(base, 'dep/s3', new Random(SEED + 1));
      await sleep(1500);
      s3.httpServer?.closeAllConnections();
      await s3.close();
      const failFast = [
        await assertFailsFast(`${base}/v2/dep/s3/blobs/uploads/?digest=${blobOf(Buffer.from('x')).digest}`, { method: 'POST', body: 'x' }),
      ];
      await sleep(1000);
      s3 = await startS3();
      const recoveredMs = await recovers(`${base}/readyz`);
      await sleep(1500);
      await work.stop();
      assert.equal(server.child.exitCode, null, 'berth serve kept running');
      assert.ok(work.acked.length > 0, 'pushes completed around the outage');
      await verify(base, work.acked, work.uncertain);
      const check = await fsckWith(env);
      assert.equal(check.corrupt, 0, JSON.stringify(check.report.problems));
      t.diagnostic(
        `503 in ${failFast.join('/')} ms while S3 was down; ready ${recoveredMs} ms after it came back; ${work.acked.length} pushes acknowledged, ${work.resumed} layer uploads resumed after a 503; statuses ${JSON.stringify([...work.statuses])}`,
      );
    } finally {
      await server?.kill();
      server = undefined;
      s3.httpServer?.closeAllConnections();
      await s3.close().catch(() => undefined);
      await db.drop();
      rmSync(directory, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
