import type { Logger } from 'pino';
import { projectOf } from '../core/names.js';
import { deny, type Policy } from '../core/policies.js';
import type { MetadataStore, MetadataTx } from '../core/ports.js';
import { CounterCheckedCache, type CachedProject } from '../core/verdict-cache.js';
import type { Finding } from './match.js';
import type { ScanRecord, VulnDbStore, VulnPolicy, VulnPolicyState, VulnPolicyStore, VulnThreshold } from './ports.js';
import { SEVERITIES, severityRank, type Severity } from './severity.js';

export const VULNERABILITY_POLICY = 'vulnerabilities';

/** How long a replica trusts a project's cached policy and allowing verdicts before comparing the counters again. */
export const VULN_REFRESH_MS = 1000;
/** Indexes asked when a child inherits an index's scan. */
const MAX_PARENTS = 8;

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

const THRESHOLD_SEVERITY: Record<VulnThreshold, Severity> = { low: 'Low', medium: 'Medium', high: 'High', critical: 'Critical' };

/** The pull decision for one manifest of one repository, under one policy version and scan counter. */
export interface VulnVerdict {
  allowed: boolean;
  /** What the refusal or the audit entry says (the counts, or why the artifact counts as unscanned). */
  summary: string;
  /** A violation was recorded for this verdict already (once per process, not once per pull). */
  recorded?: boolean;
  /** Epoch ms (policy clock) after which an allowing verdict no longer holds (the grace for unscanned artifacts ends). */
  validUntil?: number;
}

export interface ProjectVulnPolicy extends CachedProject<VulnPolicyState, VulnVerdict> {
  policy: VulnPolicy | null;
}

/**
 * The vulnerability policy of each project with its verdicts, cached in memory for the pull
 * path, like the signature trust cache: a replica compares the project's counters (`version`:
 * the policy; `scans`: scan results stored for its artifacts, content removed) at most once per
 * refresh interval for allowing verdicts and at every pull a refusing verdict would refuse or
 * record. An allowed pull costs two map look-ups: no query.
 *
 * `now` is the clock the grace period is measured with (injectable: tests move it).
 */
export class VulnVerdictCache extends CounterCheckedCache<VulnPolicyState, VulnVerdict, ProjectVulnPolicy> {
  now: () => number;

  constructor(store: Pick<VulnPolicyStore, 'state' | 'snapshot'>, refreshMs = VULN_REFRESH_MS, now: () => number = Date.now) {
    super(
      (project) => store.state(project),
      async (project, state, checkedAt) => {
        const snapshot = state === null ? null : await store.snapshot(project);
        return {
          state: snapshot ? { version: snapshot.version, scans: snapshot.scans } : null,
          policy: snapshot?.policy ?? null,
          checkedAt,
          verdicts: new Map(),
        };
      },
      (a, b) => a.version === b.version && a.scans === b.scans,
      refreshMs,
    );
    this.now = now;
  }
}

/** What the policy compares a scan with. */
export interface ScanJudgement {
  allowed: boolean;
  /** Refusing findings per severity (most severe first), e.g. "2 critical, 5 high at or above high". */
  summary: string;
  /** Allowlisted ids among the findings at or above the threshold. */
  allowlisted: string[];
}

/**
 * Counts a complete scan's findings at or above the policy's threshold, leaving out those whose
 * id or an alias is on the allowlist (compared case-insensitively).
 */
export function judgeScan(policy: Pick<VulnPolicy, 'severity' | 'allowlist'>, findings: readonly Finding[]): ScanJudgement {
  const threshold = severityRank(THRESHOLD_SEVERITY[policy.severity]);
  const allow = new Set(policy.allowlist.map((id) => id.toUpperCase()));
  const counts = new Map<Severity, number>();
  const allowlisted = new Set<string>();
  for (const finding of findings) {
    if (severityRank(finding.severity) < threshold) continue;
    const ids = [finding.id, ...(finding.aliases ?? [])];
    const listed = ids.find((id) => allow.has(id.toUpperCase()));
    if (listed !== undefined) {
      allowlisted.add(listed);
      continue;
    }
    counts.set(finding.severity, (counts.get(finding.severity) ?? 0) + 1);
  }
  const parts = [...SEVERITIES].reverse().flatMap((s) => (counts.get(s) ? [`${counts.get(s)} ${s.toLowerCase()}`] : []));
  const listed = [...allowlisted].sort();
  const tail = listed.length > 0 ? `; allowlisted: ${listed.join(', ')}` : '';
  return {
    allowed: parts.length === 0,
    summary: `${parts.length === 0 ? 'no vulnerabilities' : parts.join(', ')} at or above ${policy.severity}${tail}`,
    allowlisted: listed,
  };
}

/** A violation to record (audit mode: allowed; enforce: refused). */
export interface VulnViolation {
  project: string;
  repository: string;
  digest: string;
  reference: string;
  mode: 'audit' | 'enforce';
  actor: string | null;
  summary: string;
}

export type VulnViolationRecorder = (violation: VulnViolation) => void;

/** What the policy reads besides its own store: the artifact's last scan, and whether it is a signature/SBOM/attestation. */
export interface VulnPolicyReads {
  scans: Pick<VulnDbStore, 'scanOf'>;
  /** A signature, attestation or other supply-chain artifact (never refused; cached by the caller). */
  isExempt(repository: string, digest: string): Promise<boolean>;
}

function formatDuration(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/** Judges one manifest under a policy: its scan (or an index's it inherits), else the rule for unscanned artifacts. */
export async function judgeManifest(
  store: Pick<VulnPolicyStore, 'pushedAt' | 'parents'>,
  reads: VulnPolicyReads,
  policy: VulnPolicy,
  now: number,
  repository: string,
  digest: string,
  mediaType: string,
): Promise<VulnVerdict> {
  const index = INDEX_TYPES.has(mediaType);
  if (!index && (await reads.isExempt(repository, digest))) return { allowed: true, summary: 'a signature or supply-chain artifact' };
  let scan: ScanRecord | null = await reads.scans.scanOf(digest);
  let via = '';
  if (scan?.status !== 'complete' && index)
    return { allowed: true, summary: 'an image index without a scan of its own: each platform manifest is judged when pulled' };
  if (scan?.status !== 'complete' && policy.inheritIndex) {
    for (const parent of await store.parents(repository, digest, MAX_PARENTS)) {
      const theirs = await reads.scans.scanOf(parent);
      if (theirs?.status === 'complete') {
        scan = theirs;
        via = ` (the scan of the index ${parent} listing it)`;
        break;
      }
    }
  }
  if (scan?.status === 'complete') {
    const judged = judgeScan(policy, scan.findings as Finding[]);
    return { allowed: judged.allowed, summary: `${judged.summary}${via}` };
  }
  const why = scan === null ? 'not scanned' : `its last scan failed (${scan.error ?? 'failed'})`;
  if (policy.unscanned === 'allow') return { allowed: true, summary: `${why}; unscanned artifacts are allowed` };
  if (policy.unscanned === 'deny') return { allowed: false, summary: `${why}, and the policy refuses unscanned artifacts` };
  const pushed = (await store.pushedAt(repository, digest)) ?? now;
  const until = pushed + policy.graceSeconds * 1000;
  if (now < until)
    return { allowed: true, summary: `${why}; within the ${formatDuration(policy.graceSeconds)} grace after its push`, validUntil: until };
  return {
    allowed: false,
    summary: `${why} within the ${formatDuration(policy.graceSeconds)} grace after its push at ${new Date(pushed).toISOString()}`,
  };
}

/**
 * The vulnerability policy on core's hooks. `manifest.serve`: under a project's `enforce` mode
 * a manifest whose last scan has findings at or above the threshold (allowlisted ids aside), or
 * that is unscanned when the policy refuses unscanned artifacts (or its grace ended), is
 * refused with 403 DENIED naming the policy and the counts; `audit` serves it and records the
 * violation once; signatures, attestations and SBOM referrers are always served. Removals move
 * the project's scan counter in their transaction; the scanner moves it with each stored scan.
 */
export function vulnerabilityPolicy(
  store: VulnPolicyStore,
  cache: VulnVerdictCache,
  reads: VulnPolicyReads,
  record: VulnViolationRecorder,
): Policy {
  return {
    name: VULNERABILITY_POLICY,
    hooks: {
      'manifest.serve': async (ctx) => {
        const project = projectOf(ctx.repository);
        let state = await cache.current(project);
        if (!state.policy || state.policy.mode === 'off') return;
        const key = `${ctx.repository}@${ctx.digest}`;
        let verdict = state.verdicts.get(key);
        if (verdict?.allowed && (verdict.validUntil === undefined || cache.now() < verdict.validUntil)) return;
        if (verdict?.allowed) {
          // The grace for an unscanned artifact ended: judge it again.
          state.verdicts.delete(key);
          verdict = undefined;
        } else if (verdict) {
          // A refusal is re-judged as soon as the counters move (a rescan or a policy change, anywhere).
          state = await cache.current(project, true);
          if (!state.policy || state.policy.mode === 'off') return;
          verdict = state.verdicts.get(key);
        }
        const policy = state.policy;
        if (!verdict) {
          verdict = await judgeManifest(store, reads, policy, cache.now(), ctx.repository, ctx.digest, ctx.mediaType);
          cache.remember(state, key, verdict);
        }
        if (verdict.allowed) return;
        const mode = policy.mode as 'audit' | 'enforce';
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
            VULNERABILITY_POLICY,
            'DENIED',
            `manifest ${ctx.repository}@${ctx.digest} is refused by the vulnerability policy of project ${project} (mode enforce, severity ${policy.severity}): ${verdict.summary}`,
            { project, digest: ctx.digest },
          );
        }
      },
    },
    removed: async (removals, tx) => {
      for (const project of new Set(removals.map((r) => projectOf(r.repository)))) {
        await store.within(tx).contentRemoved(project);
        cache.touch(project);
      }
    },
  };
}

/** An audit entry, structurally the audit log's own (src/auth), written in a transaction. */
export interface VulnAuditEntry {
  actor: string;
  action: string;
  target: string;
  ip: string | null;
  project: string;
  outcome?: 'success' | 'denied';
  detail?: unknown;
  at: Date;
}

export type VulnAuditWriter = (tx: MetadataTx, entries: VulnAuditEntry[]) => Promise<void>;

/**
 * Records a violation: a warning in the log and, where there is an audit log, an entry
 * `vulnerability.violation` (outcome denied under enforce, success under audit) in a
 * transaction of its own, not awaited; its `audit.recorded` event reaches sinks and webhooks.
 */
export function vulnViolationRecorder(
  metadata: Pick<MetadataStore, 'transaction'>,
  audit: VulnAuditWriter | null,
  logger: Logger,
): VulnViolationRecorder {
  return (v) => {
    logger.warn(
      { project: v.project, repository: v.repository, digest: v.digest, mode: v.mode, reason: v.summary },
      'vulnerability policy violation',
    );
    if (!audit) return;
    const entry: VulnAuditEntry = {
      actor: v.actor ?? 'anonymous',
      action: 'vulnerability.violation',
      target: `${v.repository}@${v.digest}`,
      ip: null,
      project: v.project,
      outcome: v.mode === 'enforce' ? 'denied' : 'success',
      detail: { mode: v.mode, reference: v.reference, reason: v.summary },
      at: new Date(),
    };
    void metadata
      .transaction((tx) => audit(tx, [entry]))
      .catch((err: unknown) => logger.warn({ err }, 'scanning: could not record a vulnerability policy violation in the audit log'));
  };
}
