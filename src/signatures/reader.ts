import type { Logger } from 'pino';
import { isDigest } from '../core/digest.js';
import type { MetadataStore, MetadataTx } from '../core/ports.js';
import type { BlobHandle } from '../core/registry.js';
import type { ArtifactReader } from './discover.js';
import type { ViolationRecorder } from './policy.js';
import type { SignatureAuditWriter } from './service.js';

/**
 * Discovery's reads on core's read ports: manifests by tag or digest and referrers from the
 * metadata store, blob bytes through the Registry (which knows where they are stored).
 */
export function coreArtifactReader(
  metadata: Pick<MetadataStore, 'manifests'>,
  findBlob: (repository: string, digest: string) => Promise<BlobHandle>,
): ArtifactReader {
  return {
    manifest: (repository, reference) =>
      isDigest(reference) ? metadata.manifests.get(repository, reference) : metadata.manifests.byTag(repository, reference),
    referrers: (repository, digest) => metadata.manifests.referrers(repository, digest),
    async blob(repository, digest, limit) {
      let handle: BlobHandle;
      try {
        handle = await findBlob(repository, digest);
      } catch {
        return null;
      }
      if (handle.size > limit) return null;
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of await handle.open()) {
        size += (chunk as Buffer).length;
        if (size > limit) return null;
        chunks.push(chunk as Buffer);
      }
      return Buffer.concat(chunks);
    },
  };
}

/**
 * Records a violation: a warning in the log and, where there is an audit log, an entry
 * `signature.violation` (outcome denied under enforce, success under audit) written in a
 * transaction of its own, not awaited (the pull does not wait for it). The audit entry
 * appends `audit.recorded` to the outbox, so the audit sinks and webhooks see it.
 */
export function violationRecorder(
  metadata: Pick<MetadataStore, 'transaction'>,
  audit: ((tx: MetadataTx, entries: Parameters<SignatureAuditWriter>[1]) => Promise<void>) | null,
  logger: Logger,
): ViolationRecorder {
  return (v) => {
    logger.warn(
      { project: v.project, repository: v.repository, digest: v.digest, mode: v.mode, reason: v.summary },
      'signature policy violation',
    );
    if (!audit) return;
    const entry = {
      actor: v.actor ?? 'anonymous',
      action: 'signature.violation',
      target: `${v.repository}@${v.digest}`,
      ip: null,
      project: v.project,
      outcome: v.mode === 'enforce' ? ('denied' as const) : ('success' as const),
      detail: { mode: v.mode, reference: v.reference, reason: v.summary },
      at: new Date(),
    };
    void metadata
      .transaction((tx) => audit(tx, [entry]))
      .catch((err: unknown) => logger.warn({ err }, 'signatures: could not record a violation in the audit log'));
  };
}
