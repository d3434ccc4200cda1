import { z } from 'zod';
import type { MetadataStore } from '../core/ports.js';
import type { VulnAuditWriter, VulnVerdictCache } from './policy.js';
import {
  VULN_POLICY_MODES,
  VULN_THRESHOLDS,
  VULN_UNSCANNED,
  type VulnPolicyMode,
  type VulnPolicySettings,
  type VulnPolicySnapshot,
  type VulnPolicyStore,
  type VulnThreshold,
  type VulnUnscanned,
} from './ports.js';

/** A year: the longest grace an unscanned artifact may get. */
const MAX_GRACE_SECONDS = 365 * 86_400;

/** A PUT's body (and the CLI's settings), validated. */
export const vulnPolicySettingsSchema = z
  .object({
    mode: z
      .enum(VULN_POLICY_MODES as [VulnPolicyMode, ...VulnPolicyMode[]])
      .describe('off: nothing checked; audit: pulls allowed, violations recorded; enforce: refused pulls answer 403 DENIED'),
    severity: z
      .enum(VULN_THRESHOLDS as [VulnThreshold, ...VulnThreshold[]])
      .default('critical')
      .describe('the lowest severity that refuses a pull'),
    allowlist: z
      .array(
        z
          .string()
          .trim()
          .regex(
            /^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9][A-Za-z0-9._:-]{0,100}$/,
            'a vulnerability id such as CVE-2024-1234 or GHSA-xxxx-xxxx-xxxx',
          ),
      )
      .max(1000)
      .default([])
      .describe("vulnerability ids that never refuse, matched against each finding's id and its aliases (case-insensitive)"),
    unscanned: z
      .enum(VULN_UNSCANNED as [VulnUnscanned, ...VulnUnscanned[]])
      .default('allow')
      .describe('an artifact without a complete scan: allow, deny, or grace (allowed for graceSeconds after its push)'),
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_GRACE_SECONDS)
      .default(0)
      .describe('with unscanned: grace, how long after its push an unscanned artifact stays pullable'),
    inheritIndex: z
      .boolean()
      .default(true)
      .describe('a child manifest without a scan of its own is judged by the scan of an index listing it'),
  })
  .strict()
  .refine((s) => s.unscanned !== 'grace' || s.graceSeconds > 0, {
    message: 'unscanned: grace needs graceSeconds > 0',
    path: ['graceSeconds'],
  });

/** Who asks (the admin API's actor, or the CLI's). */
export interface VulnPolicyActor {
  name: string;
  ip: string | null;
}

/** The defaults of a project without a policy (and of fields a PUT leaves out). */
export const VULN_POLICY_DEFAULTS: VulnPolicySettings = {
  mode: 'off',
  severity: 'critical',
  allowlist: [],
  unscanned: 'allow',
  graceSeconds: 0,
  inheritIndex: true,
};

export function vulnPolicyView(project: string, snapshot: VulnPolicySnapshot) {
  const p = snapshot.policy;
  return {
    project,
    mode: p?.mode ?? VULN_POLICY_DEFAULTS.mode,
    severity: p?.severity ?? VULN_POLICY_DEFAULTS.severity,
    allowlist: p?.allowlist ?? [],
    unscanned: p?.unscanned ?? VULN_POLICY_DEFAULTS.unscanned,
    graceSeconds: p?.graceSeconds ?? VULN_POLICY_DEFAULTS.graceSeconds,
    inheritIndex: p?.inheritIndex ?? VULN_POLICY_DEFAULTS.inheritIndex,
    updatedBy: p?.updatedBy ?? null,
    updatedAt: p?.updatedAt.toISOString() ?? null,
  };
}

/** Normalises an allowlist: trimmed, upper-cased (CVE-…, GHSA-… compare case-insensitively), each id once, sorted. */
export function normaliseAllowlist(ids: readonly string[]): string[] {
  return [...new Set(ids.map((id) => id.trim().toUpperCase()).filter((id) => id.length > 0))].sort();
}

/**
 * Vulnerability pull policies: each change written in one transaction with its audit entry and
 * the version bump other replicas watch; this replica's cache forgets the project at once.
 * Authorization is the caller's. `clock` is the time the grace for unscanned artifacts is
 * measured with (tests set it).
 */
export class VulnPolicyService {
  constructor(
    private readonly metadata: Pick<MetadataStore, 'transaction'>,
    private readonly store: VulnPolicyStore,
    private readonly cache: VulnVerdictCache,
    private readonly audit: VulnAuditWriter | null,
  ) {}

  get clock(): () => number {
    return this.cache.now;
  }

  set clock(now: () => number) {
    this.cache.now = now;
  }

  async show(project: string) {
    return vulnPolicyView(project, await this.store.snapshot(project));
  }

  async setPolicy(actor: VulnPolicyActor, project: string, settings: VulnPolicySettings) {
    const normalised: VulnPolicySettings = { ...settings, allowlist: normaliseAllowlist(settings.allowlist) };
    await this.metadata.transaction(async (tx) => {
      await this.store.within(tx).setPolicy(project, normalised, actor.name, new Date());
      await this.audit?.(tx, [
        {
          actor: actor.name,
          action: 'vulnerability-policy.update',
          target: `${project}/vulnerability-policy`,
          ip: actor.ip,
          project,
          detail: normalised,
          at: new Date(),
        },
      ]);
    });
    this.cache.forget(project);
    return this.show(project);
  }
}
