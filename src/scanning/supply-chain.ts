import { RegistryError, isTransientDatabaseError } from '../core/errors.js';
import type { EventConsumer, StoredEvent } from '../core/events.js';
import { isIndexMediaType, MediaTypes } from '../core/media-types.js';
import { projectOf } from '../core/names.js';
import type { MetadataStore, MetadataTx } from '../core/ports.js';
import type { Job } from '../jobs/scheduler.js';
import type {
  NewQueuedArtifact,
  QueuedArtifact,
  RescanRecord,
  SupplyChainSettings,
  SupplyChainStore,
  VulnDbStore,
  VulnImportRun,
} from './ports.js';
import type { ArtifactScanner } from './scanner.js';

/**
 * Scan and SBOM on push, bulk backfill, and rescans after the vulnerability database changed.
 *
 * - A push never waits: the outbox consumer (`supply-chain`, transactional) turns each
 *   `manifest.pushed` of a project that asked for it into a row of the durable queue, in the
 *   transaction that moves its cursor. A kill -9 after the push loses nothing: the event is in
 *   the outbox until the consumer's transaction commits, the row in the queue until the job has
 *   done the work.
 * - The `supply-chain` job (one replica, under its lease) works the due rows with bounded
 *   concurrency: an index by its platform images, an image manifest gets its SBOM (found or
 *   generated and attached) and its scan; signatures, SBOMs, attestations and other artifacts
 *   are skipped. A failure is retried with backoff, then the row is kept as `failed`.
 * - The `vuln-rescan` job follows the newest import that changed the database: every artifact
 *   whose scan matched against an older import (or none) is scanned again, in batches, with its
 *   progress (scanned / total) and resume position stored, so a restart continues where it stopped.
 *
 * src/sbom is another feature: the SBOM generator reaches this one only as the port below,
 * wired in compose.ts.
 */

/** What the queue worker needs of src/sbom. */
export interface SbomPort {
  /** Finds the image's SBOM or generates and attaches one (throws when it cannot). */
  generate(repository: string, digest: string): Promise<unknown>;
  /** Whether the image already has an SBOM (generated before, or pushed by a client). */
  has(repository: string, digest: string): Promise<boolean>;
}

export interface SupplyChainOptions {
  /** Queue items worked at once (default 2). */
  concurrency: number;
  /** How often the queue is looked at (ms). */
  intervalMs: number;
  /** How often the rescan job looks for a changed database (ms). */
  rescanIntervalMs: number;
  /** Artifacts per rescan batch (progress is stored after each). */
  rescanBatch: number;
  /** Attempts of a queue item before it is kept as failed (default 5). */
  maxAttempts?: number;
  clock?: () => number;
}

export const SUPPLY_CHAIN_CONSUMER = 'supply-chain';
export const SUPPLY_CHAIN_JOB = 'supply-chain';
export const RESCAN_JOB = 'vuln-rescan';
const ACTOR = 'berth-scanner';
const IMAGE_CONFIGS = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/** Tags cosign writes beside an image (`sha256-<hex>.sig|.att|.sbom`): artifacts, never images. */
const COSIGN_TAG = /^sha256-[0-9a-f]{64}\.(sig|att|sbom)$/;

/**
 * The outbox consumer: a pushed manifest of a project with SBOM or scan on push becomes a queue
 * row, in the transaction that moves the cursor (exactly once). Referrers (signatures, SBOMs,
 * attestations: they have a subject, or an artifact type that is no image config) and cosign's tagged artifacts are left
 * out here already; what remains is classified by the job, which reads the manifest. A deleted
 * project's settings are forgotten with its `project.deleted` event.
 */
export function supplyChainConsumer(store: SupplyChainStore, clock: () => number = Date.now): EventConsumer {
  return {
    name: SUPPLY_CHAIN_CONSUMER,
    transactional: true,
    async handle(events: StoredEvent[], tx: MetadataTx | null) {
      if (!tx) throw new Error('the supply-chain consumer runs inside a transaction');
      for (const s of events) if (s.event.type === 'project.deleted') await store.within(tx).forgetProject(s.event.project, s.at);
      const pushes = events.flatMap((s) => (s.event.type === 'manifest.pushed' ? [s.event] : []));
      const candidates = pushes.filter(
        (e) =>
          !e.subject &&
          !(e.artifactType && !IMAGE_CONFIGS.has(e.artifactType)) &&
          !(e.tags.length > 0 && e.tags.every((t) => COSIGN_TAG.test(t))),
      );
      if (candidates.length === 0) return;
      const rows = store.within(tx);
      const settings = await rows.settingsOf([...new Set(candidates.map((e) => projectOf(e.repository)))]);
      const items: NewQueuedArtifact[] = [];
      for (const e of candidates) {
        const wanted = settings.get(projectOf(e.repository));
        if (wanted && (wanted.sbom || wanted.scan))
          items.push({ repository: e.repository, digest: e.digest, sbom: wanted.sbom, scan: wanted.scan, reason: 'push' });
      }
      if (items.length > 0) await rows.enqueue(items, clock());
    },
  };
}

interface Desc {
  mediaType?: string;
  digest: string;
  annotations?: Record<string, string>;
  platform?: { os?: string };
}
interface ManifestJson {
  artifactType?: string;
  subject?: Desc;
  config?: Desc;
  layers?: Desc[];
  manifests?: Desc[];
}

/**
 * What a stored manifest is to the worker: an index (its platform images listed), an image (a
 * container image config and at least one filesystem layer), or something else — cosign's
 * simplesigning signatures, SBOM and attestation referrers, Helm charts, in-toto layers.
 */
export function classifyManifest(
  mediaType: string,
  payload: Buffer,
): { kind: 'index'; images: string[] } | { kind: 'image' } | { kind: 'other'; why: string } {
  let json: ManifestJson;
  try {
    json = JSON.parse(payload.toString('utf8')) as ManifestJson;
  } catch {
    return { kind: 'other', why: 'not JSON' };
  }
  if (json.subject) return { kind: 'other', why: `an artifact attached to ${json.subject.digest}` };
  if (json.artifactType) return { kind: 'other', why: `an artifact of type ${json.artifactType}` };
  if (isIndexMediaType(mediaType)) {
    const images = (json.manifests ?? [])
      .filter(
        (m) =>
          m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest' &&
          !isIndexMediaType(m.mediaType ?? '') &&
          m.platform?.os !== 'unknown',
      )
      .map((m) => m.digest);
    return { kind: 'index', images };
  }
  if (mediaType !== MediaTypes.ociManifest && mediaType !== MediaTypes.dockerManifest)
    return { kind: 'other', why: `media type ${mediaType}` };
  if (!json.config?.mediaType || !IMAGE_CONFIGS.has(json.config.mediaType))
    return { kind: 'other', why: `config ${json.config?.mediaType ?? 'missing'}` };
  if (!(json.layers ?? []).some((l) => /(^|\.)tar($|\+)|rootfs/.test(l.mediaType ?? '')))
    return { kind: 'other', why: 'no filesystem layer' };
  return { kind: 'image' };
}

/** Runs `work` over `items`, at most `limit` at once. */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) await work(items[next++]!);
  });
  await Promise.all(lanes);
}

/** The newest complete import, and the newest complete import that changed something (the rescan's target). */
export function importsOf(runs: VulnImportRun[]): { last: VulnImportRun | null; changed: VulnImportRun | null } {
  const complete = runs.filter((r) => r.outcome === 'complete');
  return { last: complete[0] ?? null, changed: complete.find((r) => r.inserted + r.updated > 0) ?? null };
}

export interface SupplyChainStatus {
  queue: {
    pending: number;
    failed: number;
    oldestPendingAt: string | null;
    failures: { repository: string; digest: string; attempts: number; error: string | null }[];
  };
  rescan:
    | (Omit<RescanRecord, 'startedAt' | 'updatedAt' | 'finishedAt'> & {
        remaining: number;
        startedAt: string;
        updatedAt: string;
        finishedAt: string | null;
      })
    | null;
  vulndb: { lastImport: number | null; lastImportAt: string | null; changedImport: number | null };
}

/**
 * The supply-chain feature: project settings (admin API), the queue worker and the rescan
 * (jobs), the backfill of existing images, and the status the API shows.
 */
export class SupplyChainService {
  private readonly clock: () => number;
  /** Scans under way in this worker, by digest. */
  private readonly scanning = new Map<string, Promise<unknown>>();

  constructor(
    private readonly metadata: Pick<MetadataStore, 'manifests' | 'repositories'>,
    private readonly store: SupplyChainStore,
    private readonly vulndb: VulnDbStore,
    private readonly scanner: ArtifactScanner,
    private readonly sbom: SbomPort,
    private readonly options: SupplyChainOptions,
  ) {
    this.clock = options.clock ?? Date.now;
  }

  /** A project's settings (both off until set). */
  async settings(project: string): Promise<SupplyChainSettings> {
    return (await this.store.settings(project)) ?? { project, sbomOnPush: false, scanOnPush: false, updatedAt: null, updatedBy: null };
  }

  async setSettings(
    actor: string | null,
    project: string,
    settings: { sbomOnPush: boolean; scanOnPush: boolean },
  ): Promise<SupplyChainSettings> {
    await this.store.setSettings({ project, ...settings, updatedAt: this.clock(), updatedBy: actor });
    return this.settings(project);
  }

  /**
   * Queues every tagged manifest of `project` (null: of every project) for the worker: with
   * `sbom`, images that have no SBOM yet; with `scan`, every image. Returns what was queued.
   */
  async backfill(project: string | null, want: { sbom: boolean; scan: boolean }): Promise<{ manifests: number; queued: number }> {
    if (!want.sbom && !want.scan) throw new RegistryError('INVALID_ARGUMENT', 'ask for sbom, scan or both');
    const totals = { manifests: 0, queued: 0 };
    let after: string | undefined;
    for (;;) {
      const page = await this.metadata.repositories.list({ limit: 100, after });
      for (const repository of page.items) {
        if (project !== null && projectOf(repository) !== project) continue;
        const items: NewQueuedArtifact[] = [];
        const done = new Set<string>();
        let tagAfter: string | undefined;
        for (;;) {
          const tags = await this.metadata.manifests.tags(repository, { limit: 500, after: tagAfter });
          for (const tag of tags.items) {
            if (COSIGN_TAG.test(tag)) continue;
            const manifest = await this.metadata.manifests.byTag(repository, tag);
            if (!manifest || done.has(manifest.digest)) continue;
            done.add(manifest.digest);
            totals.manifests++;
            const kind = classifyManifest(manifest.mediaType, manifest.payload);
            if (kind.kind === 'other') continue;
            const sbom = want.sbom && (kind.kind === 'index' || !(await this.sbom.has(repository, manifest.digest)));
            if (sbom || want.scan) items.push({ repository, digest: manifest.digest, sbom, scan: want.scan, reason: 'backfill' });
          }
          if (!tags.more || tags.items.length === 0) break;
          tagAfter = tags.items[tags.items.length - 1];
        }
        if (items.length > 0) await this.store.enqueue(items, this.clock());
        totals.queued += items.length;
      }
      if (!page.more || page.items.length === 0) break;
      after = page.items[page.items.length - 1];
    }
    return totals;
  }

  /** The work of one queue row: an SBOM and/or a scan of each image it stands for. */
  private async work(item: QueuedArtifact, changedImport: number | null): Promise<{ images: number; skipped?: string }> {
    const manifest = await this.metadata.manifests.get(item.repository, item.digest);
    if (!manifest) return { images: 0, skipped: 'deleted since' };
    const kind = classifyManifest(manifest.mediaType, manifest.payload);
    if (kind.kind === 'other') return { images: 0, skipped: kind.why };
    const images = kind.kind === 'index' ? kind.images : [item.digest];
    let handled = 0;
    for (const digest of images) {
      if (kind.kind === 'index') {
        const child = await this.metadata.manifests.get(item.repository, digest);
        if (!child || classifyManifest(child.mediaType, child.payload).kind !== 'image') continue;
      }
      let sbomError: unknown = null;
      if (item.sbom) await this.sbom.generate(item.repository, digest).catch((err: unknown) => (sbomError = err));
      // A database conflict or lock wait: the row is retried as a whole (the scan would only fail for want of the SBOM).
      if (sbomError && isTransientDatabaseError(sbomError)) throw sbomError;
      // The scan runs even when the SBOM could not be written: its failed result says why, and its event reaches webhooks.
      if (item.scan) await this.scanOnce(item, digest, changedImport);
      if (sbomError) throw sbomError;
      handled++;
    }
    return { images: handled };
  }

  /**
   * At least once, scanned once: a digest's content never changes, so an image that already has
   * a complete scan of its SBOM against the database as it is (an import at or after the last one
   * that changed it) would scan the same again —
   * a row seen again after a crash, an image queued by its own push and by its index's, the same
   * image pushed under another tag. Scans under way in this worker are waited for first.
   */
  private async scanOnce(item: QueuedArtifact, digest: string, changedImport: number | null): Promise<void> {
    for (let pending = this.scanning.get(digest); pending; pending = this.scanning.get(digest)) await pending.catch(() => undefined);
    // Registered before the first await of the check: two rows of one digest worked at once
    // (its own push and its index's) must not both read "no scan yet" and both scan.
    const work = this.scanIfStale(item.repository, digest, changedImport).finally(() => this.scanning.delete(digest));
    this.scanning.set(digest, work);
    await work;
  }

  private async scanIfStale(repository: string, digest: string, changedImport: number | null): Promise<void> {
    const previous = await this.vulndb.scanOf(digest);
    const current =
      previous !== null && changedImport !== null && previous.databaseImport !== null && previous.databaseImport >= changedImport;
    if (previous !== null && current && previous.status === 'complete' && previous.source !== 'request') return;
    await this.scanner.scan(repository, digest, undefined, { actor: ACTOR });
  }

  /** One round of the queue worker: due rows, `concurrency` at a time, until none is due or the job is stopped. */
  async workQueue(signal: AbortSignal): Promise<{ items: number; images: number; skipped: number; retried: number; failed: number }> {
    const totals = { items: 0, images: 0, skipped: 0, retried: 0, failed: 0 };
    const maxAttempts = this.options.maxAttempts ?? 5;
    for (let round = 0; round < 100 && !signal.aborted; round++) {
      const due = await this.store.due(this.clock(), this.options.concurrency * 4);
      if (due.length === 0) break;
      const { changed } = importsOf(await this.vulndb.imports(50));
      await pool(due, this.options.concurrency, async (item) => {
        if (signal.aborted) return;
        totals.items++;
        try {
          const outcome = await this.work(item, changed?.id ?? null);
          totals.images += outcome.images;
          if (outcome.skipped) totals.skipped++;
          await this.store.done(item.id);
        } catch (err) {
          const attempts = item.attempts + 1;
          const giveUp = attempts >= maxAttempts;
          if (giveUp) totals.failed++;
          else totals.retried++;
          await this.store.retry(
            item.id,
            attempts,
            this.clock() + Math.min(300_000, 5_000 * 2 ** (attempts - 1)),
            (err as Error).message,
            giveUp,
          );
        }
      });
    }
    return totals;
  }

  /**
   * One round of the rescan: finds the newest import that changed the database, starts (or
   * resumes) its rescan, and scans the artifacts matched against older imports in batches,
   * storing the progress after each.
   */
  async rescan(signal: AbortSignal): Promise<{ databaseImport: number; scanned: number; failed: number; remaining: number } | null> {
    const { changed } = importsOf(await this.vulndb.imports(50));
    if (!changed) return null;
    let record = await this.store.rescan(changed.id);
    if (record && record.state !== 'running') return null;
    if (!record) {
      const total = await this.store.countStale(changed.id);
      if (total === 0) return null;
      record = await this.store.startRescan(changed.id, total, this.clock());
    }
    let scanned = 0;
    let failed = 0;
    while (!signal.aborted) {
      const batch = await this.store.staleScans(changed.id, record.resumeAfter, this.options.rescanBatch);
      if (batch.length === 0) {
        record = { ...record, state: 'complete', finishedAt: this.clock(), updatedAt: this.clock() };
        await this.store.updateRescan(record);
        break;
      }
      let batchFailed = 0;
      await pool(batch, this.options.concurrency, async ({ repository, digest }) => {
        try {
          const result = await this.scanner.scan(repository, digest, undefined, { actor: ACTOR });
          if (result.status === 'failed') batchFailed++;
        } catch {
          batchFailed++;
        }
      });
      scanned += batch.length;
      failed += batchFailed;
      record = {
        ...record,
        scanned: record.scanned + batch.length,
        failed: record.failed + batchFailed,
        total: Math.max(record.total, record.scanned + batch.length),
        resumeAfter: batch[batch.length - 1]!.digest,
        updatedAt: this.clock(),
      };
      await this.store.updateRescan(record);
    }
    return {
      databaseImport: changed.id,
      scanned,
      failed,
      remaining: record.state === 'complete' ? 0 : Math.max(0, record.total - record.scanned),
    };
  }

  async status(): Promise<SupplyChainStatus> {
    const [counts, failures, rescan, runs] = await Promise.all([
      this.store.queueCounts(),
      this.store.failedItems(20),
      this.store.rescan(),
      this.vulndb.imports(50),
    ]);
    const { last, changed } = importsOf(runs);
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return {
      queue: {
        pending: counts.pending,
        failed: counts.failed,
        oldestPendingAt: iso(counts.oldestPendingAt),
        failures: failures.map((f) => ({ repository: f.repository, digest: f.digest, attempts: f.attempts, error: f.lastError })),
      },
      rescan: rescan && {
        ...rescan,
        remaining: rescan.state === 'running' ? Math.max(0, rescan.total - rescan.scanned) : 0,
        startedAt: iso(rescan.startedAt)!,
        updatedAt: iso(rescan.updatedAt)!,
        finishedAt: iso(rescan.finishedAt),
      },
      vulndb: { lastImport: last?.id ?? null, lastImportAt: iso(last?.finishedAt ?? null), changedImport: changed?.id ?? null },
    };
  }

  /** The two leased jobs: the queue worker and the rescan. */
  jobs(): Job[] {
    return [
      {
        name: SUPPLY_CHAIN_JOB,
        schedule: { everyMs: this.options.intervalMs },
        history: 'work',
        // Renewed every third of it while working: a replica killed mid-round holds the queue up for seconds, not a minute.
        leaseTtlMs: 15_000,
        hasWork: async () => (await this.store.due(this.clock(), 1)).length > 0,
        run: async (signal) => {
          const summary = await this.workQueue(signal);
          return { summary, idle: summary.items === 0 };
        },
      },
      {
        name: RESCAN_JOB,
        schedule: { everyMs: this.options.rescanIntervalMs },
        history: 'work',
        // A rescan of a large registry takes long: the lease is renewed (every 10 s) while it works; a killed holder's expires in 30 s.
        leaseTtlMs: 30_000,
        run: async (signal) => {
          const summary = await this.rescan(signal);
          return { summary, idle: summary === null };
        },
      },
    ];
  }
}
