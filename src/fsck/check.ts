import { newHash, parseDigest } from '../core/digest.js';
import { projectOf } from '../core/names.js';
import type { BlobStore } from '../core/ports.js';
import type { FsckMetadata, FsckOptions, FsckReport, Problem } from './types.js';

const PAGE = 500;
/** Storage calls in flight at once while checking a page. */
const PARALLEL = 16;
/** Broken manifest references listed before the report says "and more". */
const MAX_BROKEN_REFERENCES = 10_000;
/** Orphan repositories listed by name; the rest are counted. */
const MAX_LISTED_ORPHANS = 1_000;

/**
 * Compares metadata and blob storage through their ports and reports (and with
 * `repair`, fixes) inconsistencies. Memory stays bounded: rows are read in keyset
 * pages, storage is listed lazily, only problems are kept.
 *
 * Repairs never touch data a manifest needs: they delete orphan bytes, orphan staging
 * areas, broken upload sessions and blob rows whose bytes are gone and that no
 * manifest references. Leftovers younger than the grace period are left alone,
 * since they may belong to a request in flight on a running server.
 */
export async function runFsck(blobs: BlobStore, metadata: FsckMetadata, options: FsckOptions): Promise<FsckReport> {
  return new Fsck(blobs, metadata, options).run();
}

class Fsck {
  private readonly report: FsckReport = {
    checked: { blobRows: 0, blobFiles: null, manifests: 0, uploadRows: 0, stagingAreas: null, contentVerified: false },
    problems: [],
    skipped: [],
  };
  private readonly now: number;

  constructor(
    private readonly blobs: BlobStore,
    private readonly metadata: FsckMetadata,
    private readonly options: FsckOptions,
  ) {
    this.now = (options.now ?? new Date()).getTime();
  }

  async run(): Promise<FsckReport> {
    await this.checkBlobRows();
    await this.checkBlobFiles();
    await this.checkReferences();
    await this.checkManifests();
    await this.checkUploads();
    if (this.options.orphans) await this.checkOrphanRepositories();
    this.report.checked.contentVerified = this.options.verifyContent;
    return this.report;
  }

  /** Every blob row must have bytes of the recorded size (and, verified, the right hash). */
  private async checkBlobRows(): Promise<void> {
    let after: string | undefined;
    for (;;) {
      const rows = await this.metadata.blobRows(after, PAGE);
      await forEachLimited(rows, PARALLEL, async (row) => {
        const stored = await this.blobs.stat(row.digest);
        if (!stored) return this.danglingBlob(row.digest, row.size);
        if (stored.size !== row.size) {
          this.add({
            kind: 'size-mismatch',
            severity: 'corruption',
            subject: row.digest,
            message: `stored bytes are ${stored.size} long, metadata records ${row.size}`,
            repairable: false,
          });
          return;
        }
        if (this.options.verifyContent) await this.verifyBlob(row.digest);
      });
      this.report.checked.blobRows += rows.length;
      if (rows.length < PAGE) return;
      after = rows.at(-1)!.digest;
    }
  }

  private async danglingBlob(digest: string, size: number): Promise<void> {
    const [repositories, users] = await Promise.all([this.metadata.linkingRepositories(digest), this.metadata.manifestsUsing(digest)]);
    const usedBy =
      users.length > 0
        ? `; needed by ${users
            .slice(0, 5)
            .map((u) => `${u.repository}@${u.manifest}`)
            .join(', ')}`
        : '';
    const problem = this.add({
      kind: 'dangling-blob',
      severity: 'corruption',
      subject: digest,
      message:
        `recorded (${size} bytes, linked in ${repositories.join(', ') || 'no repository'}) but its bytes are missing${usedBy}` +
        (users.length > 0 ? ': re-push the image to restore it' : ''),
      repairable: users.length === 0,
    });
    if (this.options.repair && problem.repairable) problem.repaired = await this.metadata.deleteUnreferencedBlobRow(digest);
  }

  private async verifyBlob(digest: string): Promise<void> {
    const actual = await this.hashBlob(digest);
    if (actual !== digest) {
      this.add({
        kind: 'digest-mismatch',
        severity: 'corruption',
        subject: digest,
        message: `stored bytes hash to ${actual}`,
        repairable: false,
      });
    }
  }

  private async hashBlob(digest: string): Promise<string> {
    let algorithm;
    try {
      algorithm = parseDigest(digest).algorithm;
    } catch {
      return 'an unparseable digest';
    }
    const hash = newHash(algorithm);
    for await (const chunk of await this.blobs.openRange(digest)) hash.update(chunk as Buffer);
    return `${algorithm}:${hash.digest('hex')}`;
  }

  /** Every stored blob must have a row; bytes without one are orphans (e.g. a crash between commit and row). */
  private async checkBlobFiles(): Promise<void> {
    if (!this.blobs.listBlobs) {
      this.report.skipped.push('orphan blobs: the storage adapter cannot list blobs');
      return;
    }
    let count = 0;
    let batch: { digest: string; size: number; modifiedAt?: Date }[] = [];
    const flush = async () => {
      const known = await this.metadata.knownBlobs(batch.map((b) => b.digest));
      for (const file of batch) if (!known.has(file.digest)) await this.orphanBlob(file);
      batch = [];
    };
    for await (const file of this.blobs.listBlobs()) {
      count++;
      batch.push(file);
      if (batch.length >= PAGE) await flush();
    }
    await flush();
    this.report.checked.blobFiles = count;
  }

  private async orphanBlob(file: { digest: string; size: number; modifiedAt?: Date }): Promise<void> {
    const young = this.isYoung(file.modifiedAt);
    const problem = this.add({
      kind: 'orphan-blob',
      severity: 'leftover',
      subject: file.digest,
      message: `${file.size} bytes stored with no blob row${young ? ' (recent: may be a push in flight)' : ''}`,
      repairable: !young,
    });
    if (!this.options.repair || !problem.repairable) return;
    // Re-check right before deleting: a push may have recorded it since we looked.
    if ((await this.metadata.knownBlobs([file.digest])).has(file.digest)) {
      problem.message += '; recorded since, kept';
      return;
    }
    await this.blobs.delete(file.digest);
    problem.repaired = true;
  }

  /** Manifests must only reference content their repository has. */
  private async checkReferences(): Promise<void> {
    const found = await this.metadata.brokenReferences(MAX_BROKEN_REFERENCES + 1);
    // A pull-through cache fetches referenced content when a client asks for it: not fetched yet is fine.
    const broken = this.options.readThrough ? found.filter((ref) => !this.options.readThrough!(ref.repository)) : found;
    const notFetched = found.length - broken.length;
    if (notFetched > 0)
      this.report.skipped.push(`${notFetched} references of pull-through cache repositories not fetched from the upstream yet`);
    for (const ref of broken.slice(0, MAX_BROKEN_REFERENCES)) {
      this.add({
        kind: 'missing-reference',
        severity: 'corruption',
        subject: ref.child,
        message: `${ref.repository}@${ref.manifest} references ${ref.kind} ${ref.child}, which the repository does not have`,
        repairable: false,
      });
    }
    if (broken.length > MAX_BROKEN_REFERENCES) this.report.skipped.push(`missing references beyond the first ${MAX_BROKEN_REFERENCES}`);
  }

  private async checkManifests(): Promise<void> {
    if (!this.options.verifyContent) {
      this.report.checked.manifests = await this.metadata.countManifests();
      return;
    }
    let after: { repository: string; digest: string } | undefined;
    for (;;) {
      const rows = await this.metadata.manifests(after, PAGE);
      for (const row of rows) {
        const actual = hashManifest(row.digest, row.payload);
        if (actual !== row.digest) {
          this.add({
            kind: 'manifest-digest-mismatch',
            severity: 'corruption',
            subject: row.digest,
            message: `manifest in ${row.repository} hashes to ${actual}`,
            repairable: false,
          });
        }
      }
      this.report.checked.manifests += rows.length;
      if (rows.length < PAGE) return;
      after = { repository: rows.at(-1)!.repository, digest: rows.at(-1)!.digest };
    }
  }

  /** Upload rows and staging areas must pair up, and staging must hold at least the recorded bytes. */
  private async checkUploads(): Promise<void> {
    if (!this.blobs.listUploads) {
      this.report.skipped.push('upload staging: the storage adapter cannot list staging areas');
      this.report.checked.uploadRows = await this.countUploadRows();
      return;
    }
    // Bounded by limits.uploads on a healthy server; leftovers are what fsck is for.
    const staging = new Map<string, { size: number; modifiedAt: Date }>();
    for await (const area of this.blobs.listUploads()) staging.set(area.id, { size: area.size, modifiedAt: area.modifiedAt });
    this.report.checked.stagingAreas = staging.size;

    let after: string | undefined;
    for (;;) {
      const rows = await this.metadata.uploadRows(after, PAGE);
      for (const row of rows) {
        const area = staging.get(row.id);
        staging.delete(row.id);
        if (area && area.size >= row.size) continue;
        // A session started after the staging listing has a row but was not listed: not broken.
        if (this.isYoung(row.updatedAt)) continue;
        await this.brokenUpload(row.id, row.size, area?.size);
      }
      this.report.checked.uploadRows += rows.length;
      if (rows.length < PAGE) break;
      after = rows.at(-1)!.id;
    }
    // Sessions started after the row scan have a row by now: look again before calling them orphans.
    const ids = [...staging.keys()];
    for (let i = 0; i < ids.length; i += PAGE) {
      const known = await this.metadata.knownUploads(ids.slice(i, i + PAGE));
      for (const id of ids.slice(i, i + PAGE)) if (!known.has(id)) await this.orphanStaging(id, staging.get(id)!);
    }
  }

  private async brokenUpload(id: string, recorded: number, staged: number | undefined): Promise<void> {
    // A session committed or cancelled while we listed is gone from both sides now.
    if (!(await this.metadata.knownUploads([id])).has(id)) return;
    // No staging at all is what a crash between committing the bytes and recording that leaves;
    // fewer bytes than recorded means acknowledged bytes were lost.
    const problem = this.add(
      staged === undefined
        ? {
            kind: 'stale-upload',
            severity: 'leftover',
            subject: id,
            message: `upload session (${recorded} bytes) whose staging area is gone; its client gets 404 and restarts the upload`,
            repairable: true,
          }
        : {
            kind: 'broken-upload',
            severity: 'corruption',
            subject: id,
            message: `upload session records ${recorded} bytes but its staging area holds ${staged}`,
            repairable: true,
          },
    );
    if (!this.options.repair) return;
    await this.metadata.deleteUploadRow(id);
    await this.blobs.abortUpload(id, null);
    problem.repaired = true;
  }

  private async orphanStaging(id: string, area: { size: number; modifiedAt: Date }): Promise<void> {
    const young = this.isYoung(area.modifiedAt);
    const problem = this.add({
      kind: 'orphan-staging',
      severity: 'leftover',
      subject: id,
      message: `staging area of ${area.size} bytes with no upload session (an interrupted request)${young ? ' (recent: may be in flight)' : ''}`,
      repairable: !young,
    });
    if (!this.options.repair || !problem.repairable) return;
    await this.blobs.abortUpload(id, null);
    problem.repaired = true;
  }

  /**
   * Repositories whose project has no row: nobody but an admin can reach them, and no user may
   * create the project over them. Reported (at most MAX_LISTED_ORPHANS by name), never repaired.
   */
  private async checkOrphanRepositories(): Promise<void> {
    let count = 0;
    let after: string | undefined;
    for (;;) {
      const names = await this.metadata.orphanRepositories(after, PAGE);
      for (const name of names) {
        if (count++ >= MAX_LISTED_ORPHANS) continue;
        this.add({
          kind: 'orphan-repository',
          severity: 'notice',
          subject: name,
          message: `repository ${name} has no project ${projectOf(name)}: only admins can reach it (berth serve in token mode assigns it to an admin-owned project at start; or berth project add ${projectOf(name)})`,
          repairable: false,
        });
      }
      if (names.length < PAGE) break;
      after = names.at(-1)!;
    }
    if (count > MAX_LISTED_ORPHANS)
      this.report.skipped.push(`orphan repositories beyond the first ${MAX_LISTED_ORPHANS} (${count} in all)`);
    this.report.checked.orphanRepositories = count;
  }

  private async countUploadRows(): Promise<number> {
    let count = 0;
    let after: string | undefined;
    for (;;) {
      const rows = await this.metadata.uploadRows(after, PAGE);
      count += rows.length;
      if (rows.length < PAGE) return count;
      after = rows.at(-1)!.id;
    }
  }

  private isYoung(modifiedAt: Date | undefined): boolean {
    if (this.options.graceMs <= 0) return false;
    return modifiedAt === undefined || this.now - modifiedAt.getTime() < this.options.graceMs;
  }

  private add(problem: Problem): Problem {
    this.report.problems.push(problem);
    return problem;
  }
}

function hashManifest(digest: string, payload: Buffer): string {
  try {
    const { algorithm } = parseDigest(digest);
    return `${algorithm}:${newHash(algorithm).update(payload).digest('hex')}`;
  } catch {
    return 'an unparseable digest';
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
