import { RegistryError, isTransientDatabaseError } from '../core/errors.js';
import type { MetadataStore } from '../core/ports.js';
import { ScannerError, type HarborScanner } from './harbor.js';
import { matchPackages, summarize, type InstalledPackage } from './match.js';
import type { ScanRecord, VulnDbStore, VulnPolicyStore } from './ports.js';

/**
 * The port that lists what is installed in an artifact — the SBOM extractor that reads image
 * layers (dpkg, apk, rpm databases, language lock files) implements it and is wired in
 * compose.ts. Until one is, scans take their package list from the request.
 */
export interface PackageLister {
  /** Names the source in scan records (`sbom`, …). */
  readonly name: string;
  /** The packages installed in the artifact, or null when this lister cannot read it. */
  packagesOf(repository: string, digest: string): Promise<InstalledPackage[] | null>;
}

/**
 * Scans of artifacts: the package list (given, or from the lister) matched against the
 * offline database, the result stored per manifest digest, and a `scan.completed` or
 * `scan.failed` event appended to the outbox (for webhooks) in the transaction that stores it.
 */
export class ArtifactScanner {
  constructor(
    private readonly metadata: Pick<MetadataStore, 'manifests' | 'transaction'>,
    private readonly store: VulnDbStore,
    private readonly lister: PackageLister | null = null,
    private readonly clock: () => number = Date.now,
    /**
     * With the vulnerability policies' store: the result is written in one transaction with
     * its event and the `scans` counter of every project holding the artifact (so verdict
     * caches see it), and `committed` runs after (this replica's cache applies it at once).
     */
    private readonly policies: { store: Pick<VulnPolicyStore, 'within'>; committed(digest: string): void } | null = null,
    /** A Harbor scanner adapter that scans instead of the built-in matcher (scanning.scanner.kind: harbor), or null. */
    readonly remote: HarborScanner | null = null,
  ) {}

  private async requireArtifact(repository: string, digest: string): Promise<void> {
    if (!(await this.metadata.manifests.get(repository, digest)))
      throw new RegistryError('MANIFEST_UNKNOWN', `artifact ${digest} not found in ${repository}`);
  }

  /**
   * Scans `repository@digest` with `packages` (else the lister's), stores the result and appends
   * its event in one transaction. With a Harbor adapter configured, the adapter scans the image
   * instead (pulling it with a pull-only credential made for `by.requester`, who asked for the
   * scan); a package list cannot be given then. `by.actor` names who asked in the event.
   */
  async scan(
    repository: string,
    digest: string,
    packages?: InstalledPackage[],
    by: { actor?: string; requester?: unknown } = {},
  ): Promise<ScanRecord> {
    if (this.remote) {
      if (packages)
        throw new RegistryError(
          'INVALID_ARGUMENT',
          'this registry scans with a Harbor scanner adapter (scanning.scanner.kind: harbor), which reads the image itself: a package list cannot be given',
        );
      const manifest = await this.metadata.manifests.get(repository, digest);
      if (!manifest) throw new RegistryError('MANIFEST_UNKNOWN', `artifact ${digest} not found in ${repository}`);
      return this.finish(repository, await this.remoteScan(this.remote, repository, digest, manifest.mediaType, by.requester), by.actor);
    }
    await this.requireArtifact(repository, digest);
    const lastImport = (await this.store.imports(50)).find((r) => r.outcome === 'complete') ?? null;
    const base = { digest, scannedAt: this.clock(), databaseImport: lastImport?.id ?? null };
    let record: ScanRecord;
    try {
      const source = packages ? 'request' : (this.lister?.name ?? 'none');
      const list = packages ?? (this.lister ? await this.lister.packagesOf(repository, digest) : null);
      if (list === null) {
        record = {
          ...base,
          status: 'failed',
          source,
          packages: 0,
          summary: {},
          findings: [],
          error: 'no package list: give one in the request (no SBOM extractor could read this artifact)',
        };
      } else if (lastImport === null) {
        record = {
          ...base,
          status: 'failed',
          source,
          packages: list.length,
          summary: {},
          findings: [],
          error: 'the vulnerability database is empty: run berth vulndb import first',
        };
      } else {
        const result = await matchPackages(this.store, list);
        record = {
          ...base,
          status: 'complete',
          source,
          packages: list.length,
          summary: result.summary,
          findings: result.findings,
          error: null,
        };
      }
    } catch (err) {
      // A deadlock with another transaction says nothing of the artifact: thrown, so the queue
      // or the rescan tries again, instead of a failed scan stored until the next rescan.
      if (isTransientDatabaseError(err)) throw err;
      record = {
        ...base,
        status: 'failed',
        source: packages ? 'request' : (this.lister?.name ?? 'none'),
        packages: 0,
        summary: {},
        findings: [],
        error: (err as Error).message,
      };
    }
    return this.finish(repository, record, by.actor);
  }

  private async remoteScan(
    remote: HarborScanner,
    repository: string,
    digest: string,
    mediaType: string,
    requester: unknown,
  ): Promise<ScanRecord> {
    const base = { digest, scannedAt: this.clock(), databaseImport: null };
    try {
      const result = await remote.scan(repository, digest, mediaType, requester);
      return {
        ...base,
        status: 'complete',
        source: result.source,
        packages: result.packages,
        summary: summarize(result.findings),
        findings: result.findings,
        error: null,
      };
    } catch (err) {
      // Only the adapter's own failures are the user's to read; anything else is a fault of Berth's and is thrown.
      if (!(err instanceof ScannerError)) throw err;
      return { ...base, status: 'failed', source: 'harbor', packages: 0, summary: {}, findings: [], error: err.message };
    }
  }

  /**
   * Stores the record with its event and (with vulnerability policies) the `scans` counter of
   * every project holding the artifact, in one transaction: the event exists exactly when the
   * result does, and verdict caches see the result with it.
   */
  private async finish(repository: string, record: ScanRecord, actor: string | undefined): Promise<ScanRecord> {
    const digest = record.digest;
    const event =
      record.status === 'complete'
        ? {
            type: 'scan.completed' as const,
            repository,
            digest,
            packages: record.packages,
            summary: record.summary,
            fixable: (record.findings as { fixed?: string | null }[]).filter((f) => f.fixed).length,
          }
        : { type: 'scan.failed' as const, repository, digest, error: record.error ?? 'failed' };
    const policies = this.policies;
    await this.metadata.transaction(async (tx) => {
      await this.store.within(tx).saveScan(record);
      if (policies) await policies.store.within(tx).scanChanged(digest);
      await tx.events.append([event], actor ?? null);
    });
    policies?.committed(digest);
    return record;
  }

  /** The artifact's last scan; MANIFEST_UNKNOWN when the repository has no such artifact, NOT_FOUND when never scanned. */
  async report(repository: string, digest: string): Promise<ScanRecord> {
    await this.requireArtifact(repository, digest);
    const record = await this.store.scanOf(digest);
    if (!record) throw new RegistryError('NOT_FOUND', `artifact ${digest} in ${repository} has not been scanned yet`);
    return record;
  }
}
