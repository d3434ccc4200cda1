import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GcReport } from '../../src/gc/report.js';
import { OCI_INDEX, jsonBlob, makeBlob, type Blob, type Image } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { assertConsistent, imageOver } from './support.js';

/** How long pushes, deletes and GC run concurrently (BERTH_GC_STRESS_MS to change). */
const DURATION_MS = Number(process.env.BERTH_GC_STRESS_MS ?? 20_000);
/**
 * Grace period of the looping collector. With 0, an image whose blobs are uploaded one
 * request at a time is almost never complete before the next run unlinks them (runs
 * follow each other every few milliseconds): every push is refused and retried forever.
 * One second still races the pushes that a loaded machine makes slow (see the retry counts it prints).
 */
const GRACE = process.env.BERTH_GC_STRESS_GRACE ?? '1s';
const REPOSITORIES = ['stress/a', 'stress/b', 'stress/c'];
const PUSHERS = 3;

/** A push the test made: an image, or an index over `children`. */
interface Pushed {
  repository: string;
  tag: string;
  manifest: Blob;
  mediaType: string;
  children: Image[];
  state: 'tagged' | 'untagged' | 'deleted';
}

class Failure extends Error {}

/**
 * Clean refusals a client retries: a manifest whose blobs the collector unlinked first, and an
 * upload of content whose bytes the collector was deleting at that moment (it must be pushed again).
 */
const RETRYABLE: Record<string, RegExp> = {
  MANIFEST_BLOB_UNKNOWN: /manifest references/,
  BLOB_UPLOAD_INVALID: /was being garbage-collected while this upload completed/,
};

describe(`gc stress: pushes and deletes over HTTP while GC loops with grace period ${GRACE} (${DURATION_MS} ms)`, () => {
  const pushed: Pushed[] = [];
  const retries = new Map<string, number>();
  const failures: string[] = [];
  const reports: GcReport[] = [];
  // A few base layers shared by many images: deleted and re-pushed content, deduplication.
  const baseLayers = Array.from({ length: 4 }, () => makeBlob(4096));

  const reg = useServer({ gc: { enabled: false, graceperiod: GRACE, batchsize: 10 }, tags: { history: { protectgc: false } } });

  async function pushBlobIfMissing(repository: string, blob: Blob): Promise<void> {
    if ((await reg.client.fetch(`/v2/${repository}/blobs/${blob.digest}`, { method: 'HEAD' })).status === 200) return;
    await expectCreated(await reg.client.pushBlob(repository, blob), `blob ${blob.digest}`);
  }

  async function pushManifest(repository: string, reference: string, manifest: Blob, mediaType: string): Promise<void> {
    await expectCreated(await reg.client.pushManifest(repository, reference, manifest, mediaType), `manifest ${reference}`);
  }

  async function expectCreated(res: Response, what: string): Promise<void> {
    if (res.status === 201) return;
    const body = await res.text();
    const code = (JSON.parse(body || '{}') as { errors?: { code: string }[] }).errors?.[0]?.code ?? `HTTP ${res.status}`;
    if (res.status === 400 && RETRYABLE[code]?.test(body))
      throw Object.assign(new Error(code), { retryable: code, detail: `${what}: ${body.slice(0, 200)}` });
    throw new Failure(`${what}: ${res.status} ${body.slice(0, 300)}`);
  }

  /** Pushes an image or an index the way a client does, starting over on a clean retryable refusal. */
  async function pushWithRetry(record: Omit<Pushed, 'state'>, running: () => boolean): Promise<void> {
    for (let attempt = 1; running(); attempt++) {
      try {
        for (const child of record.children) {
          for (const blob of [child.config, ...child.layers]) await pushBlobIfMissing(record.repository, blob);
          if (record.children.length > 1) await pushManifest(record.repository, child.manifest.digest, child.manifest, child.mediaType);
        }
        await pushManifest(record.repository, record.tag, record.manifest, record.mediaType);
        pushed.push({ ...record, state: 'tagged' });
        return;
      } catch (err) {
        const code = (err as { retryable?: string }).retryable;
        if (!code) throw err;
        retries.set(code, (retries.get(code) ?? 0) + 1);
      }
    }
  }

  function newRecord(worker: number, n: number): Omit<Pushed, 'state'> {
    const repository = REPOSITORIES[(worker + n) % REPOSITORIES.length]!;
    const tag = `w${worker}-${n}`;
    const image = () => imageOver([baseLayers[(worker * 7 + n) % baseLayers.length]!, makeBlob(512 + (n % 7) * 100)]);
    if (n % 4 !== 3) {
      const single = image();
      return { repository, tag, manifest: single.manifest, mediaType: single.mediaType, children: [single] };
    }
    const children = [image(), image()];
    const index = jsonBlob({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children.map((c, i) => ({
        mediaType: c.mediaType,
        digest: c.manifest.digest,
        size: c.manifest.size,
        platform: { architecture: `arch${i}`, os: 'linux' },
      })),
    });
    return { repository, tag, manifest: index, mediaType: OCI_INDEX, children };
  }

  async function pusher(worker: number, running: () => boolean): Promise<void> {
    for (let n = 0; running(); n++) {
      try {
        await pushWithRetry(newRecord(worker, n), running);
      } catch (err) {
        failures.push(`pusher ${worker}: ${(err as Error).message}`);
      }
    }
  }

  async function deleter(running: () => boolean): Promise<void> {
    let n = 0;
    while (running()) {
      const victims = pushed.filter((p) => p.state === 'tagged');
      if (victims.length < 5) {
        await sleep(20);
        continue;
      }
      const victim = victims[Math.floor(Math.random() * victims.length)]!;
      const byDigest = n++ % 2 === 0;
      const res = await reg.client.fetch(`/v2/${victim.repository}/manifests/${byDigest ? victim.manifest.digest : victim.tag}`, {
        method: 'DELETE',
      });
      if (res.status !== 202) failures.push(`delete ${victim.repository}:${victim.tag}: ${res.status} ${await res.text()}`);
      victim.state = byDigest ? 'deleted' : 'untagged';
      await sleep(5);
    }
  }

  async function collector(running: () => boolean): Promise<void> {
    while (running()) {
      const res = await reg.client.fetch('/api/v1/gc', { method: 'POST' });
      const report = (await res.json()) as GcReport;
      if (res.status !== 200 || !report.completed || report.counts.errors > 0)
        failures.push(`gc: ${res.status} ${JSON.stringify(report).slice(0, 300)}`);
      reports.push(report);
      await sleep(10);
    }
  }

  it('every surviving tagged image and index is pullable byte-for-byte; nothing failed except clean, retried refusals', async () => {
    // DURATION_MS at least, and on a loaded machine longer (up to 3×) until there was enough of each kind of work to judge.
    const started = Date.now();
    const enough = () =>
      pushed.length > 20 && pushed.some((p) => p.state !== 'tagged') && reports.length > 5 && reports.some((r) => r.counts.blobs > 0);
    const running = () => Date.now() - started < DURATION_MS || (!enough() && Date.now() - started < 3 * DURATION_MS);
    await Promise.all([...Array.from({ length: PUSHERS }, (_, w) => pusher(w, running)), deleter(running), collector(running)]);
    assert.deepEqual(failures, []);

    const deletedBlobs = reports.reduce((sum, r) => sum + r.counts.blobs, 0);
    const deletedManifests = reports.reduce((sum, r) => sum + r.counts.manifests, 0);
    console.log(
      `stress (${Date.now() - started} ms): ${pushed.length} pushes, ${pushed.filter((p) => p.state !== 'tagged').length} deletes, ${reports.length} gc runs ` +
        `(${deletedManifests} manifests, ${deletedBlobs} blobs collected), retries ${JSON.stringify(Object.fromEntries(retries))}`,
    );
    assert.ok(pushed.length > 20 && reports.length > 5 && deletedBlobs > 0, 'the stress run should push, delete and collect');

    await verifyLiveImages();
    await assertConsistent(reg.server);
    // With writers stopped and the grace period over, one more run collects everything that is not live.
    await sleep(reg.server.gc.collector.options.gracePeriodMs + 50);
    const final = (await (await reg.client.fetch('/api/v1/gc', { method: 'POST' })).json()) as GcReport;
    assert.equal(final.completed, true);
    await verifyLiveImages();
    await assertConsistent(reg.server);
    const liveBlobs = new Set(
      pushed.filter((p) => p.state === 'tagged').flatMap((p) => p.children.flatMap((c) => [c.config, ...c.layers].map((b) => b.digest))),
    );
    const stored = await reg.server.stores.usage.storageUsage();
    assert.equal(stored.total.blobs, liveBlobs.size, 'after a final run only live blobs are stored');
  });

  async function verifyLiveImages(): Promise<void> {
    for (const record of pushed.filter((p) => p.state === 'tagged')) {
      await expectContent(`/v2/${record.repository}/manifests/${record.tag}`, record.manifest.data, record.mediaType);
      for (const child of record.children) {
        await expectContent(`/v2/${record.repository}/manifests/${child.manifest.digest}`, child.manifest.data, child.mediaType);
        for (const blob of [child.config, ...child.layers]) await expectContent(`/v2/${record.repository}/blobs/${blob.digest}`, blob.data);
      }
    }
  }

  async function expectContent(path: string, data: Buffer, accept?: string): Promise<void> {
    const res = await reg.client.fetch(path, accept ? { headers: { accept } } : {});
    assert.equal(res.status, 200, `${path} should be pullable`);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data), `${path} differs from what was pushed`);
  }
});
