import { parseDigest } from '../core/digest.js';
import { RegistryError } from '../core/errors.js';
import { projectOf } from '../core/names.js';
import type { MetadataStore, MetadataTx } from '../core/ports.js';
import { verifyArtifact, type ArtifactReader, type SignatureReport } from './discover.js';
import type { SignatureStore, TrustedKey, TrustPolicySettings, TrustSnapshot } from './ports.js';
import type { TrustCache } from './policy.js';
import { subjectOf, trustMaterial } from './trust.js';
import { X509Certificate } from 'node:crypto';
import { KEYLESS_UNSUPPORTED } from './verify.js';

/** Who asks (the admin API's actor). */
export interface SignaturesActor {
  name: string;
  ip: string | null;
}

/** An audit entry of a policy change; structurally the audit log's own (src/auth), written in the change's transaction. */
export interface SignatureAuditEntry {
  actor: string;
  action: string;
  target: string;
  ip: string | null;
  project: string;
  outcome?: 'success' | 'denied';
  detail?: unknown;
  at: Date;
}

export type SignatureAuditWriter = (tx: MetadataTx, entries: SignatureAuditEntry[]) => Promise<void>;

export function keyView(key: TrustedKey) {
  const base = {
    id: key.id,
    name: key.name,
    kind: key.kind,
    fingerprint: key.fingerprint,
    createdBy: key.createdBy,
    createdAt: key.createdAt.toISOString(),
    pem: key.pem,
  };
  if (key.kind !== 'certificate') return base;
  const cert = new X509Certificate(key.pem);
  return {
    ...base,
    subject: subjectOf(cert),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
  };
}

export function policyView(project: string, snapshot: TrustSnapshot) {
  return {
    project,
    mode: snapshot.policy?.mode ?? 'off',
    inheritIndex: snapshot.policy?.inheritIndex ?? true,
    keys: snapshot.keys.map(keyView),
    updatedBy: snapshot.policy?.updatedBy ?? null,
    updatedAt: snapshot.policy?.updatedAt.toISOString() ?? null,
    keyless: KEYLESS_UNSUPPORTED,
  };
}

function reportView(report: SignatureReport) {
  return {
    format: report.format,
    source: report.source,
    manifest: report.manifest,
    layer: report.layer,
    valid: report.outcome.valid,
    ...(report.outcome.valid ? { signer: report.outcome.signer } : { reason: report.outcome.reason }),
    ...(report.outcome.signedAt ? { signedAt: report.outcome.signedAt } : {}),
  };
}

/** Listing verdicts kept (the cache starts over beyond). */
const MAX_LISTING_VERDICTS = 20_000;
/** How long a listing verdict holds (a certificate may expire meanwhile). */
const LISTING_VERDICT_MS = 10 * 60_000;
/** Artifacts of a page verified at once. */
const LISTING_CONCURRENCY = 4;

/**
 * Trust policies (changed in one transaction with their audit entry and the version bump other
 * replicas watch) and the signature status of artifacts. Authorization is the caller's.
 */
export class SignatureService {
  constructor(
    private readonly metadata: Pick<MetadataStore, 'transaction'>,
    private readonly store: SignatureStore,
    private readonly cache: TrustCache,
    private readonly reader: ArtifactReader,
    private readonly audit: SignatureAuditWriter | null,
  ) {}

  /** Valid-signature counts of listed artifacts by (policy version, repository, digest, signature manifests). */
  private readonly listingVerdicts = new Map<string, { valid: number; until: number }>();

  async show(project: string) {
    return policyView(project, await this.store.snapshot(project));
  }

  async setPolicy(actor: SignaturesActor, project: string, settings: TrustPolicySettings) {
    await this.change(actor, project, 'signature-policy.update', settings, (q) => q.setPolicy(project, settings, actor.name, new Date()));
    return this.show(project);
  }

  async addKey(actor: SignaturesActor, project: string, name: string, pem: string) {
    const material = trustMaterial(name, pem);
    const existing = await this.store.snapshot(project);
    if (existing.keys.some((k) => k.name === name))
      throw new RegistryError('CONFLICT', `project ${project} already trusts a key named ${JSON.stringify(name)}`);
    const key = await this.change(
      actor,
      project,
      'signature-key.add',
      { name, kind: material.kind, fingerprint: material.fingerprint },
      (q) => q.addKey(project, material, actor.name, new Date()),
    );
    return keyView(key);
  }

  async deleteKey(actor: SignaturesActor, project: string, id: number): Promise<void> {
    await this.change(actor, project, 'signature-key.delete', { id }, async (q) => {
      if (!(await q.deleteKey(project, id))) throw new RegistryError('NOT_FOUND', `project ${project} has no trusted key ${id}`);
    });
  }

  /** Every signature of an artifact with its verdict under the project's current trust policy (verified now, not cached). */
  async status(project: string, repository: string, digest: string) {
    parseDigest(digest);
    const trust = await this.cache.current(project, true);
    const found = await verifyArtifact(this.reader, repository, digest, trust.anchors);
    return {
      repository,
      digest,
      policy: { mode: trust.policy?.mode ?? 'off', inheritIndex: trust.policy?.inheritIndex ?? true },
      verified: found.verified,
      signatures: found.signatures.map(reportView),
      keyless: KEYLESS_UNSUPPORTED,
    };
  }

  /**
   * How many signatures of each listed artifact verify under the project's keys and certificates
   * now (the same verification as `status`), or null when the project trusts none. Verdicts are
   * cached by (policy version, artifact, its signature manifests) for 10 minutes, so a page costs
   * crypto only for artifacts newly signed, or after a key change.
   */
  async verifiedCounts(repository: string, subjects: { digest: string; signatures: string[] }[]): Promise<Map<string, number> | null> {
    const trust = await this.cache.current(projectOf(repository));
    if (trust.anchors.keys.length + trust.anchors.certificates.length === 0) return null;
    const now = Date.now();
    const counts = new Map<string, number>();
    const todo: { digest: string; key: string }[] = [];
    for (const subject of subjects) {
      const key = `${trust.state?.version ?? 0}|${repository}@${subject.digest}|${[...subject.signatures].sort().join(',')}`;
      const cached = this.listingVerdicts.get(key);
      if (cached && cached.until > now) counts.set(subject.digest, cached.valid);
      else todo.push({ digest: subject.digest, key });
    }
    const verifyNext = async (): Promise<void> => {
      for (let next = todo.shift(); next; next = todo.shift()) {
        let valid = 0;
        try {
          valid = (await verifyArtifact(this.reader, repository, next.digest, trust.anchors)).signatures.filter(
            (s) => s.outcome.valid,
          ).length;
        } catch (err) {
          // Deleted since the page was read: nothing verifies.
          if (!(err instanceof RegistryError && err.code === 'NOT_FOUND')) throw err;
        }
        if (this.listingVerdicts.size >= MAX_LISTING_VERDICTS) this.listingVerdicts.clear();
        this.listingVerdicts.set(next.key, { valid, until: now + LISTING_VERDICT_MS });
        counts.set(next.digest, valid);
      }
    };
    await Promise.all(Array.from({ length: LISTING_CONCURRENCY }, verifyNext));
    return counts;
  }

  private async change<T>(
    actor: SignaturesActor,
    project: string,
    action: string,
    detail: unknown,
    work: (q: ReturnType<SignatureStore['within']>) => Promise<T>,
  ): Promise<T> {
    const result = await this.metadata.transaction(async (tx) => {
      const done = await work(this.store.within(tx));
      await this.audit?.(tx, [
        { actor: actor.name, action, target: `${project}/signature-policy`, ip: actor.ip, project, detail, at: new Date() },
      ]);
      return done;
    });
    this.cache.forget(project);
    return result;
  }
}
