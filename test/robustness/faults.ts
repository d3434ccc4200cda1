import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, rmSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { fsckStores } from '../../src/cli/fsck.js';
import { applyEnvOverrides, resolveConfigPaths } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { corruptionCount, type FsckReport } from '../../src/fsck/types.js';
import { createTestDatabase as createPostgresDatabase } from '../helpers/postgres.js';
import { createTestDatabase as createMysqlDatabase } from '../helpers/mysql.js';
import { localS3Settings, startLocalS3, type LocalS3 } from '../helpers/s3.js';
import { ROOT, startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';

/**
 * The kill -9 fault harness shared by test/robustness/kill-*.test.ts (one file per back-end
 * combination, so each runs on its own back ends whatever pass of scripts/test.sh runs it).
 *
 * Each round starts `berth serve` as a real child process, lets a few raw-HTTP workers push
 * (chunked uploads whose PUT carries the last chunk, monolithic ones, manifest PUTs, mounts
 * into other repositories, manifest deletes) while a `berth gc` may run, and kills the server
 * (and the collector) with SIGKILL at a seeded point: at a random moment, right after an
 * upload's bytes moved to their content address (filesystem: the staging file vanishes), or,
 * after the restart, while the server rebuilds a session's hash from its staged bytes. Then it
 * restarts on the same stores and checks, before anything else touches them:
 * - the server answers within seconds;
 * - every manifest whose PUT answered 201 (and was not deleted with 202) is served byte for
 *   byte, with every blob it references; every delete answered 202 stays deleted;
 * - nothing incomplete is visible: a blob or manifest whose request got no answer is absent
 *   or whole;
 * - every interrupted upload session either answers 204 + Range (never less than its last 202)
 *   and then completes with a PUT carrying the remaining bytes (201, digest verified), or
 *   already answers 404 BLOB_UPLOAD_UNKNOWN on that GET (the invariant of issue 20);
 * - `berth fsck` finds no corruption (leftovers are allowed within its grace).
 * At the end `berth fsck --repair --grace 0s` removes the leftovers and the store is clean.
 */

export type BackendName = 'fs-sqlite' | 'fs-postgres' | 's3-postgres' | 'mysql';

export interface Backend {
  name: BackendName;
  /** Environment selecting the back ends (BERTH_DATA_DIR included). */
  env: NodeJS.ProcessEnv;
  /** Directory of the filesystem store's staging files, when blobs are on the filesystem. */
  stagingDir?: string;
  close(): Promise<void>;
}

export async function openBackend(name: BackendName, dataDir: string): Promise<Backend> {
  const base: NodeJS.ProcessEnv = { BERTH_DATA_DIR: dataDir };
  const fsStaging = path.join(dataDir, 'storage', 'uploads');
  switch (name) {
    case 'fs-sqlite':
      return { name, env: { ...base, BERTH_METADATA_DRIVER: 'sqlite' }, stagingDir: fsStaging, close: async () => {} };
    case 'fs-postgres': {
      const db = await createPostgresDatabase('berth_faults');
      return {
        name,
        env: { ...base, BERTH_METADATA_DRIVER: 'postgres', BERTH_METADATA_URL: db.url },
        stagingDir: fsStaging,
        close: () => db.drop(),
      };
    }
    case 'mysql': {
      const db = await createMysqlDatabase('berth_faults');
      return {
        name,
        env: { ...base, BERTH_METADATA_DRIVER: 'mysql', BERTH_METADATA_URL: db.url },
        stagingDir: fsStaging,
        close: () => db.drop(),
      };
    }
    case 's3-postgres': {
      const db = await createPostgresDatabase('berth_faults');
      let s3: LocalS3;
      try {
        s3 = await startLocalS3('berth-faults');
      } catch (err) {
        await db.drop();
        throw err;
      }
      return {
        name,
        env: {
          ...base,
          BERTH_METADATA_DRIVER: 'postgres',
          BERTH_METADATA_URL: db.url,
          ...s3Env(s3, `faults-${randomBytes(4).toString('hex')}`),
        },
        close: async () => {
          await s3.close();
          await db.drop();
        },
      };
    }
  }
}

/** BERTH_STORAGE_S3_* for a local S3 under key prefix `root`. */
export function s3Env(s3: LocalS3, root: string): NodeJS.ProcessEnv {
  const s = localS3Settings(s3, root);
  return {
    BERTH_STORAGE_S3_BUCKET: s.bucket,
    BERTH_STORAGE_S3_REGION: s.region,
    BERTH_STORAGE_S3_REGIONENDPOINT: s.regionendpoint,
    BERTH_STORAGE_S3_FORCEPATHSTYLE: 'true',
    BERTH_STORAGE_S3_ACCESSKEY: s.accesskey,
    BERTH_STORAGE_S3_SECRETKEY: s.secretkey,
    BERTH_STORAGE_S3_ROOTDIRECTORY: s.rootdirectory,
    BERTH_STORAGE_S3_CHUNKSIZE: String(s.chunksize),
  };
}

// ── Seeded randomness ───────────────────────────────────────────────────────

/** The seed of a fault run: BERTH_FAULT_SEED, else a fixed default (printed by every test). */
export function faultSeed(fallback: number): number {
  return process.env.BERTH_FAULT_SEED !== undefined ? Number(process.env.BERTH_FAULT_SEED) : fallback;
}

/** Rounds of a fault run: BERTH_FAULT_ROUNDS for long local runs, else the short CI default. */
export function faultRounds(fallback: number): number {
  return process.env.BERTH_FAULT_ROUNDS !== undefined ? Number(process.env.BERTH_FAULT_ROUNDS) : fallback;
}

/** mulberry32: small, fast, reproducible. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(size: number): Buffer {
    // Content need not be reproducible (digests are checked, not compared with a fixture); sizes and timings are.
    return randomBytes(size);
  }
}

// ── Content and the ledger of what clients were told ────────────────────────

export interface Blob {
  digest: string;
  data: Buffer;
}

export interface Image {
  config: Blob;
  layers: Blob[];
  manifest: Blob;
}

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

export function blobOf(data: Buffer): Blob {
  return { digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, data };
}

export function imageOf(config: Blob, layers: Blob[]): Image {
  const manifest = {
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.data.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.data.length })),
  };
  return { config, layers, manifest: blobOf(Buffer.from(JSON.stringify(manifest))) };
}

export interface Session {
  repo: string;
  blob: Blob;
  location: string;
  /** Bytes acknowledged by the last 202 + Range. */
  acked: number;
}

export interface Ledger {
  /** Manifests whose PUT answered 201 and that were not deleted since. */
  images: { repo: string; tag: string; image: Image }[];
  /** Manifests whose DELETE answered 202. */
  deleted: { repo: string; digest: string }[];
  /** Manifest PUTs and DELETEs sent without an answer. */
  unansweredPuts: { repo: string; tag: string; image: Image }[];
  unansweredDeletes: { repo: string; tag: string; image: Image }[];
  /** Blobs whose upload or mount got no 201. */
  unconfirmed: { repo: string; blob: Blob }[];
  /** Upload sessions open when the server died. */
  sessions: Session[];
}

export function newLedger(): Ledger {
  return { images: [], deleted: [], unansweredPuts: [], unansweredDeletes: [], unconfirmed: [], sessions: [] };
}

/** What a run counted, reported by each test (and in docs/robustness.md). */
export interface Tally {
  rounds: number;
  kills: number;
  gcRuns: number;
  acknowledgedManifests: number;
  acknowledgedBlobs: number;
  mounts: number;
  deletes: number;
  /** Interrupted sessions found after a restart: resumed and completed, or unknown on GET. */
  interrupted: number;
  resumed: number;
  unknownOnGet: number;
  /** Kills that landed right after a staging file vanished (bytes moved, not yet recorded). */
  commitKills: number;
  rehashKills: number;
  maxRestartMs: number;
}

export function newTally(): Tally {
  return {
    rounds: 0,
    kills: 0,
    gcRuns: 0,
    acknowledgedManifests: 0,
    acknowledgedBlobs: 0,
    mounts: 0,
    deletes: 0,
    interrupted: 0,
    resumed: 0,
    unknownOnGet: 0,
    commitKills: 0,
    rehashKills: 0,
    maxRestartMs: 0,
  };
}

// ── HTTP against a server that may die at any moment ────────────────────────

/** fetch failed because the server died (connection refused, reset, closed mid-response). */
export function isConnectionFailure(err: unknown): boolean {
  return err instanceof TypeError || (err instanceof Error && /terminated|other side closed|socket/i.test(err.message));
}

/** A fetch that settles with null when the server died under it. */
async function call(url: string, init: RequestInit = {}): Promise<Response | null> {
  try {
    const res = await fetch(url, init);
    // Read the body here: the connection may die while the body is still coming.
    const body = Buffer.from(await res.arrayBuffer());
    return new Response(res.status === 204 ? null : body, { status: res.status, headers: res.headers });
  } catch (err) {
    if (isConnectionFailure(err)) return null;
    throw err;
  }
}

function rangeEnd(range: string | null): number {
  const m = /^0-(\d+)$/.exec(range ?? '');
  assert.ok(m, `bad Range header ${range}`);
  return Number(m[1]);
}

/** The offset a 202/204 Range stands for (`0-0` is an empty session here: chunks are never 1 byte). */
function offsetOf(range: string | null, acked: number): number {
  return range === '0-0' && acked <= 1 ? 0 : rangeEnd(range) + 1;
}

// ── Workers ─────────────────────────────────────────────────────────────────

interface WorkerContext {
  base: string;
  repo: string;
  random: Random;
  ledger: Ledger;
  tally: Tally;
  /** Called when a staging area is about to be committed (so a 'commit' kill can be armed). */
  stopped: () => boolean;
}

/** Pushes, mounts and deletes until a request finds the server dead. */
export async function worker(ctx: WorkerContext): Promise<void> {
  for (let n = 0; !ctx.stopped(); n++) {
    const op = ctx.random.next();
    let alive: boolean;
    if (op < 0.15 && ownImages(ctx).length > 0) alive = await deleteImage(ctx, ctx.random.pick(ownImages(ctx)));
    else if (op < 0.35 && foreignImages(ctx).length > 0)
      alive = await copyImage(ctx, ctx.random.pick(foreignImages(ctx)), `m${n}-${randomBytes(3).toString('hex')}`);
    else alive = await pushImage(ctx, `t${n}-${randomBytes(3).toString('hex')}`);
    if (!alive) return;
  }
}

function ownImages(ctx: WorkerContext) {
  return ctx.ledger.images.filter((i) => i.repo === ctx.repo);
}

function foreignImages(ctx: WorkerContext) {
  return ctx.ledger.images.filter((i) => i.repo !== ctx.repo);
}

async function pushImage(ctx: WorkerContext, tag: string): Promise<boolean> {
  const { random } = ctx;
  const config = blobOf(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') })));
  // Mostly small layers (so images complete between kills), now and then one of 2–8 MiB.
  const layers = Array.from({ length: random.int(1, 2) }, () =>
    blobOf(random.bytes(random.chance(0.3) ? random.int(2 * 1024 * 1024, 8 * 1024 * 1024) : random.int(16 * 1024, 1024 * 1024))),
  );
  for (const blob of [config, ...layers]) {
    const outcome = random.chance(0.15) || blob === config ? await monolithic(ctx, blob) : await chunked(ctx, blob);
    if (outcome === 'dead') return false;
    if (outcome === 'refused') return true;
  }
  return putManifest(ctx, tag, imageOf(config, layers));
}

type Outcome = 'ok' | 'refused' | 'dead';

async function monolithic(ctx: WorkerContext, blob: Blob): Promise<Outcome> {
  const entry = { repo: ctx.repo, blob };
  ctx.ledger.unconfirmed.push(entry);
  const res = await call(`${ctx.base}/v2/${ctx.repo}/blobs/uploads/?digest=${blob.digest}`, {
    method: 'POST',
    body: new Uint8Array(blob.data),
  });
  if (!res) return 'dead';
  assert.equal(res.status, 201, `monolithic upload: ${await res.text()}`);
  remove(ctx.ledger.unconfirmed, entry);
  ctx.tally.acknowledgedBlobs++;
  return 'ok';
}

/** POST, PATCH chunks of 256 KiB–4 MiB, then a PUT carrying the last chunk (as the client did). */
async function chunked(ctx: WorkerContext, blob: Blob): Promise<Outcome> {
  const { random } = ctx;
  const entry = { repo: ctx.repo, blob };
  ctx.ledger.unconfirmed.push(entry);
  const start = await call(`${ctx.base}/v2/${ctx.repo}/blobs/uploads/`, { method: 'POST' });
  if (!start) return 'dead';
  assert.equal(start.status, 202);
  const session: Session = { repo: ctx.repo, blob, location: start.headers.get('location')!, acked: 0 };
  ctx.ledger.sessions.push(session);
  const chunkSize = random.pick([256 * 1024, 1024 * 1024, 2 * 1024 * 1024, 4 * 1024 * 1024]);
  let offset = 0;
  while (blob.data.length - offset > chunkSize) {
    const chunk = blob.data.subarray(offset, offset + chunkSize);
    const res = await call(`${ctx.base}${session.location}`, {
      method: 'PATCH',
      body: new Uint8Array(chunk),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
    });
    if (!res) return 'dead';
    assert.equal(res.status, 202, `PATCH: ${await res.text()}`);
    session.acked = offsetOf(res.headers.get('range'), 1);
    assert.equal(session.acked, offset + chunk.length);
    offset += chunk.length;
  }
  // A pause between the last 202 and the PUT: a kill may land here too.
  if (random.chance(0.3)) await sleep(random.int(1, 60));
  const put = await call(`${ctx.base}${session.location}?digest=${blob.digest}`, {
    method: 'PUT',
    body: new Uint8Array(blob.data.subarray(offset)),
    headers: { 'content-type': 'application/octet-stream' },
  });
  if (!put) return 'dead';
  remove(ctx.ledger.sessions, session);
  // GC's race rule may refuse a blob a concurrent collection deleted: the client pushes again.
  if (put.status === 400 && /garbage-collected/.test(await put.clone().text())) return 'refused';
  assert.equal(put.status, 201, `closing PUT: ${await put.text()}`);
  remove(ctx.ledger.unconfirmed, entry);
  ctx.tally.acknowledgedBlobs++;
  return 'ok';
}

async function putManifest(ctx: WorkerContext, tag: string, image: Image): Promise<boolean> {
  const pending = { repo: ctx.repo, tag, image };
  ctx.ledger.unansweredPuts.push(pending);
  const res = await call(`${ctx.base}/v2/${ctx.repo}/manifests/${tag}`, {
    method: 'PUT',
    body: new Uint8Array(image.manifest.data),
    headers: { 'content-type': MANIFEST_TYPE },
  });
  if (!res) return false;
  remove(ctx.ledger.unansweredPuts, pending);
  // A concurrent `berth gc` (grace 0) may have collected a blob pushed moments ago: refused, not stored.
  if (res.status === 400 && (await res.clone().text()).includes('MANIFEST_BLOB_UNKNOWN')) {
    await assertAbsentManifest(ctx.base, ctx.repo, image.manifest.digest, 'a refused manifest PUT');
    return true;
  }
  assert.equal(res.status, 201, `manifest PUT: ${await res.text()}`);
  undelete(ctx.ledger, pending);
  ctx.ledger.images.push(pending);
  ctx.tally.acknowledgedManifests++;
  return true;
}

/** Mounts an image's blobs from another repository (uploading any the mount does not link), then tags it here. */
async function copyImage(ctx: WorkerContext, source: Ledger['images'][number], tag: string): Promise<boolean> {
  for (const blob of [source.image.config, ...source.image.layers]) {
    const entry = { repo: ctx.repo, blob };
    ctx.ledger.unconfirmed.push(entry);
    const res = await call(`${ctx.base}/v2/${ctx.repo}/blobs/uploads/?mount=${blob.digest}&from=${source.repo}`, { method: 'POST' });
    if (!res) return false;
    if (res.status === 202) {
      // Not mountable (the source image was deleted meanwhile): cancel and upload it.
      const cancel = await call(`${ctx.base}${res.headers.get('location')!}`, { method: 'DELETE' });
      if (!cancel) return false;
      const outcome = await monolithic(ctx, blob);
      if (outcome !== 'ok') return outcome !== 'dead';
    } else {
      assert.equal(res.status, 201, `mount: ${await res.text()}`);
      ctx.tally.mounts++;
    }
    remove(ctx.ledger.unconfirmed, entry);
  }
  return putManifest(ctx, tag, source.image);
}

async function deleteImage(ctx: WorkerContext, target: Ledger['images'][number]): Promise<boolean> {
  remove(ctx.ledger.images, target);
  ctx.ledger.unansweredDeletes.push(target);
  const res = await call(`${ctx.base}/v2/${target.repo}/manifests/${target.image.manifest.digest}`, { method: 'DELETE' });
  if (!res) return false;
  remove(ctx.ledger.unansweredDeletes, target);
  assert.equal(res.status, 202, `manifest DELETE: ${await res.text()}`);
  // The same manifest may still be tagged elsewhere in this repository (a copy of it): those go too.
  for (const other of ctx.ledger.images.filter((i) => i.repo === target.repo && i.image.manifest.digest === target.image.manifest.digest))
    remove(ctx.ledger.images, other);
  ctx.ledger.deleted.push({ repo: target.repo, digest: target.image.manifest.digest });
  ctx.tally.deletes++;
  return true;
}

/** A manifest pushed again after a delete is no longer expected to be absent. */
function undelete(ledger: Ledger, image: Ledger['images'][number]): void {
  for (const d of ledger.deleted.filter((d) => d.repo === image.repo && d.digest === image.image.manifest.digest))
    remove(ledger.deleted, d);
}

function remove<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}

// ── Verification after a restart ────────────────────────────────────────────

async function assertAbsentManifest(base: string, repo: string, digest: string, what: string): Promise<void> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${digest}`, { headers: { accept: MANIFEST_TYPE } });
  assert.equal(res.status, 404, `${what} is visible: ${repo}@${digest}`);
}

async function assertBlobIntact(base: string, repo: string, blob: Blob, where: string, mayBeAbsent: boolean): Promise<boolean> {
  const res = await fetch(`${base}/v2/${repo}/blobs/${blob.digest}`);
  if (res.status === 404 && mayBeAbsent) {
    await res.arrayBuffer();
    return false;
  }
  assert.equal(res.status, 200, `blob ${repo}@${blob.digest} (${where})`);
  const data = Buffer.from(await res.arrayBuffer());
  assert.equal(blobOf(data).digest, blob.digest, `blob ${repo}@${blob.digest} is visible but not intact (${where})`);
  return true;
}

/**
 * The checks after a restart, in an order that changes nothing before it is checked: what
 * was acknowledged, what was not, then the interrupted sessions (which complete them).
 * With `rehashKill`, the first resumed PUT is killed while the server re-reads the staged
 * bytes; the caller restarts and verifies again. Returns false in that case.
 */
export async function verifyAfterRestart(
  server: BerthProcess,
  ledger: Ledger,
  tally: Tally,
  where: string,
  rehashKill?: Random,
): Promise<boolean> {
  const base = server.url;
  for (const { repo, tag, image } of ledger.images) {
    const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { headers: { accept: MANIFEST_TYPE } });
    assert.equal(res.status, 200, `acknowledged manifest ${repo}:${tag} lost (${where})`);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.manifest.data, `acknowledged manifest ${repo}:${tag} changed (${where})`);
    for (const blob of [image.config, ...image.layers])
      await assertBlobIntact(base, repo, blob, `referenced by ${repo}:${tag}, ${where}`, false);
  }
  for (const { repo, digest } of ledger.deleted)
    await assertAbsentManifest(base, repo, digest, `a manifest whose DELETE answered 202 (${where})`);
  for (const pending of ledger.unansweredPuts.splice(0)) {
    const res = await fetch(`${base}/v2/${pending.repo}/manifests/${pending.tag}`, { headers: { accept: MANIFEST_TYPE } });
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status === 404) continue;
    assert.equal(res.status, 200, where);
    assert.deepEqual(body, pending.image.manifest.data, `half-stored manifest ${pending.repo}:${pending.tag} (${where})`);
    for (const blob of [pending.image.config, ...pending.image.layers]) await assertBlobIntact(base, pending.repo, blob, where, false);
    undelete(ledger, pending);
    ledger.images.push(pending);
  }
  for (const pending of ledger.unansweredDeletes.splice(0)) {
    const res = await fetch(`${base}/v2/${pending.repo}/manifests/${pending.image.manifest.digest}`, {
      headers: { accept: MANIFEST_TYPE },
    });
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status === 404) {
      ledger.deleted.push({ repo: pending.repo, digest: pending.image.manifest.digest });
      continue;
    }
    assert.deepEqual(body, pending.image.manifest.data, `manifest changed by an interrupted delete (${where})`);
    ledger.images.push(pending);
  }
  for (const { repo, blob } of ledger.unconfirmed.splice(0)) await assertBlobIntact(base, repo, blob, `unconfirmed, ${where}`, true);

  for (const session of [...ledger.sessions]) {
    const status = await call(`${base}${session.location}`);
    assert.ok(status, `server died during GET (${where})`);
    if (status.status === 404) {
      assert.match(await status.text(), /BLOB_UPLOAD_UNKNOWN/, where);
      // Cleanly unknown: its blob is absent or whole (a commit that was not recorded leaves no visible blob).
      await assertBlobIntact(base, session.repo, session.blob, `unknown session, ${where}`, true);
      remove(ledger.sessions, session);
      tally.interrupted++;
      tally.unknownOnGet++;
      continue;
    }
    assert.equal(status.status, 204, `GET of an interrupted session (${where})`);
    const offset = offsetOf(status.headers.get('range'), session.acked);
    assert.ok(offset >= session.acked, `session lost acknowledged bytes: Range says ${offset} < ${session.acked} acknowledged (${where})`);
    assert.ok(offset <= session.blob.data.length, `session holds more than was sent (${where})`);
    const rest = new Uint8Array(session.blob.data.subarray(offset));
    const put = call(`${base}${session.location}?digest=${session.blob.digest}`, {
      method: 'PUT',
      body: rest,
      headers: { 'content-type': 'application/octet-stream' },
    });
    if (rehashKill) {
      // Kill while the server rebuilds the session's hash from its staged bytes (or just after).
      await sleep(rehashKill.int(0, 25));
      await server.kill();
      await put;
      tally.kills++;
      tally.rehashKills++;
      return false;
    }
    const res = await put;
    assert.ok(res, `server died during PUT (${where})`);
    assert.equal(
      res.status,
      201,
      `a session that answered 204 + Range ${status.headers.get('range')} did not complete (${where}): ${res.status} ${await res.text()}`,
    );
    await assertBlobIntact(base, session.repo, session.blob, `resumed, ${where}`, false);
    remove(ledger.sessions, session);
    tally.interrupted++;
    tally.resumed++;
  }
  return true;
}

/** `berth fsck` in-process on the back ends of `env` (what the CLI runs after parsing flags). */
export async function fsckWith(
  env: NodeJS.ProcessEnv,
  options: { repair?: boolean; verifyContent?: boolean; graceMs?: number } = {},
): Promise<{ corrupt: number; report: FsckReport }> {
  const raw = applyEnvOverrides({ data: { dir: env.BERTH_DATA_DIR } }, env);
  const config = resolveConfigPaths(configSchema.parse(raw));
  const report = await fsckStores(config, { repair: false, verifyContent: false, graceMs: 3_600_000, ...options });
  return { corrupt: corruptionCount(report), report };
}

// ── One fault run ───────────────────────────────────────────────────────────

export type KillPoint = 'random' | 'commit' | 'rehash';

export interface RunOptions {
  backend: Backend;
  seed: number;
  rounds: number;
  workers: number;
  /** Kill points to draw from (commit needs a filesystem store). */
  killPoints: KillPoint[];
  /** Probability that a round runs `berth gc` (grace 0) alongside the pushes. */
  gcChance: number;
  log: (line: string) => void;
}

/** Runs the rounds and returns the tally; throws (with seed and round in the message) on the first broken promise. */
export async function runFaultRounds(options: RunOptions): Promise<Tally> {
  const { backend, seed } = options;
  const random = new Random(seed);
  const ledger = newLedger();
  const tally = newTally();
  const env = { BERTH_GC_ENABLED: 'false', ...backend.env };
  let server: BerthProcess | undefined;
  try {
    for (let round = 0; round < options.rounds; round++) {
      const where = `${backend.name}, seed ${seed}, round ${round}`;
      server = await restart(env, tally);
      // Verify what the previous round left; a rehash kill interrupts verification once.
      const rehash = options.killPoints.includes('rehash') && ledger.sessions.length > 0 && random.chance(0.5);
      if (!(await verifyAfterRestart(server, ledger, tally, where, rehash ? random : undefined))) {
        server = await restart(env, tally);
        await verifyAfterRestart(server, ledger, tally, `${where}, after a kill during hash rebuild`);
      }
      const check = await fsckWith(backend.env);
      assert.equal(
        check.corrupt,
        0,
        `fsck found corruption (${where}): ${JSON.stringify(check.report.problems.filter((p) => p.severity === 'corruption'))}`,
      );

      // The workload, and the kill.
      let stopped = false;
      const workers = Array.from({ length: options.workers }, (_, k) =>
        worker({
          base: server!.url,
          repo: `faults/w${k}`,
          random: new Random(random.int(0, 2 ** 31)),
          ledger,
          tally,
          stopped: () => stopped,
        }),
      );
      const gc = random.chance(options.gcChance) ? startGc(env, random.int(0, 1500)) : undefined;
      if (gc) tally.gcRuns++;
      const target = server;
      // Arm the kill only once this round has acknowledged a manifest (or after 30 s): on a loaded
      // machine the first manifest can take seconds, and a run whose kills all land before any
      // manifest proves nothing about keeping acknowledged pushes. The draws below stay seeded.
      const acknowledgedBefore = tally.acknowledgedManifests;
      for (let waited = 0; tally.acknowledgedManifests === acknowledgedBefore && waited < 30_000; waited += 50) await sleep(50);
      const point = random.pick(options.killPoints.filter((p) => p !== 'rehash'));
      const isSession = (id: string) => ledger.sessions.some((s) => s.location.endsWith(`/${id}`));
      const killed =
        point === 'commit' && backend.stagingDir
          ? killOnCommit(target, backend.stagingDir, isSession, random.int(300, 3000), tally)
          : killAfter(target, random.int(200, 3000));
      await killed;
      stopped = true;
      gc?.kill();
      tally.kills++;
      await Promise.all(workers);
      await gc?.exited;
      server = undefined;
      tally.rounds++;
      options.log(
        `${where}: ${point} kill${rehash ? ' (and one during a hash rebuild)' : ''}; ${ledger.images.length} images held, ${ledger.sessions.length} sessions open`,
      );
    }
    server = await restart(env, tally);
    await verifyAfterRestart(server, ledger, tally, `${backend.name}, seed ${seed}, final`);
    await server.stop();
    server = undefined;
    // With the server stopped every leftover may go; what is left afterwards is a clean store.
    const repaired = await fsckWith(backend.env, { repair: true, graceMs: 0, verifyContent: true });
    assert.equal(
      repaired.corrupt,
      0,
      `fsck --repair --verify-content (${backend.name}, seed ${seed}): ${JSON.stringify(repaired.report.problems)}`,
    );
    const clean = await fsckWith(backend.env, { graceMs: 0 });
    assert.deepEqual(clean.report.problems, [], `leftovers after fsck --repair (${backend.name}, seed ${seed})`);
    server = await restart(env, tally);
    await verifyAfterRestart(server, ledger, tally, `${backend.name}, seed ${seed}, after fsck --repair`);
    return tally;
  } finally {
    await server?.kill();
  }
}

async function restart(env: NodeJS.ProcessEnv, tally: Tally): Promise<BerthProcess> {
  const started = Date.now();
  const server = await startBerthProcess(env);
  try {
    const res = await fetch(`${server.url}/v2/`);
    await res.arrayBuffer();
    assert.equal(res.status, 200, 'GET /v2/ after a restart');
    const ms = Date.now() - started;
    tally.maxRestartMs = Math.max(tally.maxRestartMs, ms);
    assert.ok(ms < 15_000, `berth serve took ${ms} ms to answer after a restart`);
    return server;
  } catch (err) {
    // Not handed to the caller, so nobody else stops it: a live child keeps the test file running until its timeout.
    await server.kill();
    throw err;
  }
}

async function killAfter(server: BerthProcess, ms: number): Promise<void> {
  await sleep(ms);
  await server.kill();
}

/**
 * SIGKILL as soon as a staging file disappears (its upload's bytes were just renamed to their
 * content address; the metadata commit follows), or after `fallbackMs` if none does.
 */
async function killOnCommit(
  server: BerthProcess,
  stagingDir: string,
  isSession: (id: string) => boolean,
  fallbackMs: number,
  tally: Tally,
): Promise<void> {
  await sleep(100);
  let watcher: FSWatcher | undefined;
  const committed = new Promise<void>((resolve) => {
    watcher = watch(stagingDir, (_event, name) => {
      // 'rename' fires when a file appears too: only a staging file that is gone counts.
      // (A monolithic upload's staging file goes the same way; only chunked sessions count.)
      if (!name || !isSession(name) || existsSync(path.join(stagingDir, name))) return;
      server.child.kill('SIGKILL');
      tally.commitKills++;
      resolve();
    });
  });
  await Promise.race([committed, sleep(fallbackMs)]);
  watcher?.close();
  await server.kill();
}

/** `berth gc` (grace 0, short lease) as a real child process, started after `delayMs`. */
function startGc(env: NodeJS.ProcessEnv, delayMs: number): { kill(): void; exited: Promise<void> } {
  let child: ChildProcess | undefined;
  let killed = false;
  const exited = (async () => {
    await sleep(delayMs);
    if (killed) return;
    child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'gc'], {
      cwd: ROOT,
      env: { ...process.env, ...env, BERTH_LOG_LEVEL: 'silent', BERTH_GC_GRACEPERIOD: '0s', BERTH_GC_LEASETTL: '2s' },
      stdio: 'ignore',
    });
    await new Promise<void>((resolve) => child!.once('exit', () => resolve()));
  })();
  return {
    kill() {
      killed = true;
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    exited,
  };
}

/**
 * One back end's fault suite (each back end has its own test file, so each picks its own
 * back ends): `rounds` kill -9 rounds from `seed` (BERTH_FAULT_SEED / BERTH_FAULT_ROUNDS
 * override them for longer local runs).
 */
export function describeFaultRounds(title: string, name: BackendName, defaultSeed: number, killPoints: KillPoint[]): void {
  const seed = faultSeed(defaultSeed);
  const rounds = faultRounds(3);
  describe(`kill -9 faults on ${title}`, () => {
    it(`keeps every acknowledged push; interrupted sessions complete or are unknown on GET (seed ${seed}, ${rounds} rounds)`, async (t) => {
      const dataDir = tempDir(`berth-kill-${name}-`);
      const backend = await openBackend(name, dataDir);
      try {
        const tally = await runFaultRounds({ backend, seed, rounds, workers: 4, killPoints, gcChance: 0.3, log: (l) => t.diagnostic(l) });
        t.diagnostic(JSON.stringify(tally));
        assert.ok(
          tally.acknowledgedManifests > 0 && tally.interrupted > 0,
          'the rounds pushed something and interrupted sessions (else they prove nothing)',
        );
      } finally {
        await backend.close();
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
}
