import { projectOf } from '../core/names.js';
import { deny, type Policy } from '../core/policies.js';
import { CounterCheckedCache, type CachedProject } from '../core/verdict-cache.js';
import type { SignatureStore, TrustPolicy, TrustState } from './ports.js';
import { isSignaturePush, isSupplyChainArtifact } from './formats.js';
import { verifyArtifact, type ArtifactReader, type ArtifactSignatures } from './discover.js';
import { compileAnchors, type TrustAnchors } from './trust.js';

export const SIGNATURE_POLICY = 'signatures';

/** How long a replica trusts a project's cached policy and positive verdicts before comparing the counters again. */
export const TRUST_REFRESH_MS = 1000;
/** Classified manifests kept (signature artifact or not: content never changes). */
const MAX_CLASSIFIED = 50_000;
/** Indexes asked when a child inherits (a child listed by more indexes is judged by these). */
const MAX_PARENTS = 8;

/** The pull decision for one manifest of one repository, under one policy version and signature count. */
export interface Verdict {
  verified: boolean;
  /** signature: its own; index: a verified index lists it; artifact: a signature or other supply-chain artifact (never refused). */
  via: 'signature' | 'index' | 'artifact' | 'none';
  /** What the refusal or the audit entry says. */
  summary: string;
  /** A violation was recorded for this verdict already (once per process, not once per pull). */
  recorded?: boolean;
  /** Epoch ms after which a positive verdict no longer holds (its certificates or signature expire); absent: no expiry. */
  validUntil?: number;
}

interface ProjectTrust extends CachedProject<TrustState, Verdict> {
  policy: TrustPolicy | null;
  anchors: TrustAnchors;
}

/**
 * The policies of each project with their verdicts, cached in memory for the pull path. A
 * replica compares the project's counters (`version`: policy and keys; `signatures`:
 * signatures pushed, content removed) at most once per TRUST_REFRESH_MS for positive verdicts,
 * and on every pull a negative verdict would refuse or record, so a signature pushed anywhere
 * applies at the next pull and a removed key or signature within a second. A verified pull
 * costs two map look-ups: no crypto, no query.
 */
export class TrustCache extends CounterCheckedCache<TrustState, Verdict, ProjectTrust> {
  private readonly classified = new Map<string, boolean>();

  constructor(store: SignatureStore, refreshMs = TRUST_REFRESH_MS) {
    super(
      (project) => store.state(project),
      async (project, state, checkedAt) => {
        const snapshot = state === null ? null : await store.snapshot(project);
        return {
          state: snapshot ? { version: snapshot.version, signatures: snapshot.signatures } : null,
          policy: snapshot?.policy ?? null,
          anchors: compileAnchors(snapshot?.keys ?? []),
          checkedAt,
          verdicts: new Map(),
        };
      },
      (a, b) => a.version === b.version && a.signatures === b.signatures,
      refreshMs,
    );
  }

  /** Whether a manifest is a signature or other supply-chain artifact (cached: content never changes). */
  async isArtifact(reader: ArtifactReader, repository: string, digest: string): Promise<boolean> {
    const key = `${repository}@${digest}`;
    const known = this.classified.get(key);
    if (known !== undefined) return known;
    const manifest = await reader.manifest(repository, digest);
    const artifact = manifest !== null && isSupplyChainArtifact(manifest.payload);
    if (this.classified.size >= MAX_CLASSIFIED) this.classified.clear();
    this.classified.set(key, artifact);
    return artifact;
  }
}

/** A violation to record (audit mode: allowed; enforce: refused). */
export interface Violation {
  project: string;
  repository: string;
  digest: string;
  reference: string;
  mode: 'audit' | 'enforce';
  actor: string | null;
  summary: string;
}

export type ViolationRecorder = (violation: Violation) => void;

export interface SignatureParents {
  parents(repository: string, digest: string, limit: number): Promise<string[]>;
}

/** Judges one manifest: its own signatures, else (if the policy says so) a verified index listing it. */
export async function judge(
  cache: TrustCache,
  reader: ArtifactReader,
  parents: SignatureParents,
  trust: ProjectTrust,
  repository: string,
  digest: string,
): Promise<Verdict> {
  if (await cache.isArtifact(reader, repository, digest))
    return { verified: true, via: 'artifact', summary: 'a signature or supply-chain artifact' };
  const own = await verifyArtifact(reader, repository, digest, trust.anchors);
  if (own.verified) return { verified: true, via: 'signature', summary: signedBy(own), ...expiryOf(own) };
  if (trust.policy?.inheritIndex) {
    for (const index of await parents.parents(repository, digest, MAX_PARENTS)) {
      const key = `${repository}@${index}`;
      let verdict = trust.verdicts.get(key);
      if (verdict?.validUntil !== undefined && Date.now() > verdict.validUntil) verdict = undefined;
      if (!verdict) {
        const theirs = await verifyArtifact(reader, repository, index, trust.anchors);
        verdict = theirs.verified
          ? { verified: true, via: 'signature', summary: signedBy(theirs), ...expiryOf(theirs) }
          : { verified: false, via: 'none', summary: whyNot(theirs) };
        cache.remember(trust, key, verdict);
      }
      if (verdict.verified)
        return {
          verified: true,
          via: 'index',
          summary: `listed by the verified index ${index}`,
          ...(verdict.validUntil === undefined ? {} : { validUntil: verdict.validUntil }),
        };
    }
  }
  return { verified: false, via: 'none', summary: whyNot(own) };
}

/** A verified artifact stays verified while its longest-lived valid signature holds (certificates expire; keys do not). */
function expiryOf(found: ArtifactSignatures): { validUntil?: number } {
  const until = Math.max(...found.signatures.flatMap((s) => (s.outcome.valid ? [s.outcome.validUntil ?? Number.POSITIVE_INFINITY] : [])));
  return Number.isFinite(until) ? { validUntil: until } : {};
}

function signedBy(found: ArtifactSignatures): string {
  const names = found.signatures.flatMap((s) =>
    s.outcome.valid ? [`${s.format} signature by ${s.outcome.signer.kind} "${s.outcome.signer.name}"`] : [],
  );
  return names.join(', ');
}

/** Why an artifact counts as unsigned, in one line for the refusal. */
export function whyNot(found: ArtifactSignatures): string {
  if (found.signatures.length === 0)
    return `no signature found (cosign tag ${found.subject.digest.replace(':', '-')}.sig, cosign/Sigstore bundle/Notation referrers)`;
  const reasons = found.signatures.map((s) => `${s.format}: ${s.outcome.valid ? 'valid' : s.outcome.reason}`);
  return `${found.signatures.length} signature(s) found, none valid — ${reasons.join('; ')}`;
}

/**
 * The signature policy on core's hooks. `manifest.serve`: under a project's `enforce` mode a
 * manifest without a valid signature by a trusted key (nor a verified index listing it, when
 * the policy lets children inherit) is refused with 403 DENIED naming the policy; `audit`
 * serves it and records the violation; signatures, attestations and SBOM referrers themselves
 * are always served. `manifest.put`, `tag.delete` and removals move the project's signature
 * counter in the change's transaction, which every replica's cache compares with.
 */
export function signaturePolicy(store: SignatureStore, cache: TrustCache, reader: ArtifactReader, record: ViolationRecorder): Policy {
  const changed = async (repository: string, tx: Parameters<SignatureStore['within']>[0] | null) => {
    if (!tx) return;
    const project = projectOf(repository);
    await store.within(tx).signaturesChanged(project);
    cache.touch(project);
  };
  return {
    name: SIGNATURE_POLICY,
    hooks: {
      'manifest.serve': async (ctx) => {
        const project = projectOf(ctx.repository);
        let trust = await cache.current(project);
        if (!trust.policy || trust.policy.mode === 'off') return;
        const key = `${ctx.repository}@${ctx.digest}`;
        let verdict = trust.verdicts.get(key);
        if (verdict?.verified && (verdict.validUntil === undefined || Date.now() <= verdict.validUntil)) return;
        if (verdict?.verified) {
          // A certificate or the signature expired since it was judged: judge it again.
          trust.verdicts.delete(key);
          verdict = undefined;
        } else if (verdict) {
          // A refusal is re-judged as soon as the counters move (a signature just pushed, anywhere).
          trust = await cache.current(project, true);
          if (!trust.policy || trust.policy.mode === 'off') return;
          verdict = trust.verdicts.get(key);
        }
        if (!verdict) {
          verdict = await judge(cache, reader, store, trust, ctx.repository, ctx.digest);
          cache.remember(trust, key, verdict);
        }
        if (verdict.verified) return;
        const mode = trust.policy.mode;
        if (!verdict.recorded) {
          verdict.recorded = true;
          record({
            project,
            repository: ctx.repository,
            digest: ctx.digest,
            reference: ctx.reference,
            mode,
            actor: ctx.actor,
            summary: verdict.summary,
          });
        }
        if (mode === 'enforce') {
          throw deny(
            SIGNATURE_POLICY,
            'DENIED',
            `manifest ${ctx.repository}@${ctx.digest} has no valid signature by a key or certificate the signature trust policy of project ${project} (mode enforce) trusts: ${verdict.summary}`,
            { project, digest: ctx.digest },
          );
        }
      },
      'manifest.put': async (ctx, tx) => {
        if (isSignaturePush(ctx.artifactType, ctx.subject, ctx.tags)) await changed(ctx.repository, tx);
      },
      'tag.delete': async (ctx, tx) => {
        if (/\.sig$/.test(ctx.tag)) await changed(ctx.repository, tx);
      },
    },
    removed: async (removals, tx) => {
      for (const project of new Set(removals.map((r) => projectOf(r.repository)))) {
        await store.within(tx).signaturesChanged(project);
        cache.touch(project);
      }
    },
  };
}
