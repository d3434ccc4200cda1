import type { OsvAffected, OsvRange, OsvRecord } from './osv.js';
import { packageKey } from './osv.js';
import type { VulnDbStore } from './ports.js';
import { rateAdvisory, SEVERITIES, severityRank, type CvssScore, type Severity } from './severity.js';
import { baseEcosystem, SEMVER, schemeForEcosystem, type VersionScheme } from './versions/index.js';

/**
 * Matching installed packages against the offline OSV database.
 *
 * A package is `{ecosystem, name, version}` in OSV's terms: `Debian:12` with the SOURCE
 * package name, `Alpine:v3.19` with the origin package, `npm`, `Go` (module path), `PyPI`,
 * `crates.io`. An advisory affects it when one of its `affected` entries names the package
 * (same ecosystem — a Debian advisory without a release applies to every release — and name;
 * PyPI names normalised) and the installed version is listed in `versions` or falls in one of
 * its `ranges` (OSV's evaluation: events sorted in the range's order, `introduced` opens,
 * `fixed` closes, past `last_affected` closes, and only below a `limit`). `SEMVER` ranges use
 * semver whatever the ecosystem, `ECOSYSTEM` ranges the ecosystem's order; `GIT` ranges
 * name commits and are not evaluated (a package list has no commits).
 */

export interface InstalledPackage {
  ecosystem: string;
  name: string;
  version: string;
}

export interface Finding {
  /** The advisory id (DSA-…, GHSA-…, CVE-…, ALPINE-CVE-…). */
  id: string;
  /** Other ids of the same vulnerability (CVE ids among them), the CVE-looking ones first. */
  aliases: string[];
  summary: string | null;
  package: string;
  ecosystem: string;
  installed: string;
  /** The lowest version that fixes it above the installed one (null: no fix known). */
  fixed: string | null;
  severity: Severity;
  cvss: CvssScore | null;
  /** cvss, database (the advisory's own rating), none, or scanner (a Harbor scanner adapter's report rated it). */
  severitySource: 'cvss' | 'database' | 'none' | 'scanner';
  /** Reference URLs of the advisory. */
  links: string[];
  /** CWE ids, when a Harbor scanner adapter reported them. */
  cweIds?: string[];
  /** A Harbor scanner adapter's `vendor_attributes` of the vulnerability, kept as given (e.g. Trivy's CVSS per source). */
  vendorAttributes?: Record<string, unknown>;
}

export type SeverityCounts = Record<Severity, number> & { total: number };

export interface MatchResult {
  findings: Finding[];
  summary: SeverityCounts;
  /** Packages whose version their ecosystem's order refuses: only explicit `versions` lists could match them. */
  unorderable: InstalledPackage[];
}

/** The ecosystem strings whose advisories apply to a package of `ecosystem`. */
export function lookupEcosystems(ecosystem: string): string[] {
  const base = baseEcosystem(ecosystem);
  // Debian and Ubuntu advisories may name the distribution without a release.
  if ((base === 'Debian' || base === 'Ubuntu') && base !== ecosystem) return [ecosystem, base];
  return [ecosystem];
}

/** Version bounds of a range event: `introduced: "0"` is below everything, `limit: "*"` above. */
const BOTTOM = Symbol('bottom');
const TOP = Symbol('top');
type Bound = string | typeof BOTTOM | typeof TOP;

interface Event {
  kind: 'introduced' | 'fixed' | 'last_affected' | 'limit';
  at: Bound;
}

function compareBounds(scheme: VersionScheme, a: Bound, b: Bound): number {
  if (a === b) return 0;
  if (a === BOTTOM || b === TOP) return -1;
  if (a === TOP || b === BOTTOM) return 1;
  return scheme.compare(a, b);
}

function eventsOf(range: OsvRange): Event[] {
  return range.events.map((e): Event => {
    if (e.introduced !== undefined) return { kind: 'introduced', at: e.introduced === '0' ? BOTTOM : e.introduced };
    if (e.fixed !== undefined) return { kind: 'fixed', at: e.fixed };
    if (e.last_affected !== undefined) return { kind: 'last_affected', at: e.last_affected };
    return { kind: 'limit', at: e.limit === '*' ? TOP : e.limit! };
  });
}

interface RangeVerdict {
  affected: boolean;
  /** The lowest `fixed` above the installed version in this range (null: none). */
  fixed: string | null;
}

/** OSV's range evaluation; null when the range cannot be ordered (a version its scheme refuses). */
export function evaluateRange(range: OsvRange, ecosystem: string, version: string): RangeVerdict | null {
  if (range.type === 'GIT') return null;
  const scheme = range.type === 'SEMVER' ? SEMVER : schemeForEcosystem(ecosystem);
  if (!scheme || !scheme.valid(version)) return null;
  const events = eventsOf(range);
  if (events.some((e) => typeof e.at === 'string' && !scheme.valid(e.at))) return null;
  const v: Bound = version;
  const limits = events.filter((e) => e.kind === 'limit');
  const belowLimit = limits.length === 0 || limits.some((e) => compareBounds(scheme, v, e.at) < 0);
  const sorted = events.filter((e) => e.kind !== 'limit').sort((a, b) => compareBounds(scheme, a.at, b.at));
  let affected = false;
  for (const e of sorted) {
    if (e.kind === 'introduced' && compareBounds(scheme, v, e.at) >= 0) affected = true;
    else if (e.kind === 'fixed' && compareBounds(scheme, v, e.at) >= 0) affected = false;
    else if (e.kind === 'last_affected' && compareBounds(scheme, v, e.at) > 0) affected = false;
  }
  if (!affected || !belowLimit) return { affected: false, fixed: null };
  const fixes = sorted.filter(
    (e): e is Event & { at: string } => e.kind === 'fixed' && typeof e.at === 'string' && compareBounds(scheme, v, e.at) < 0,
  );
  return { affected: true, fixed: fixes[0]?.at ?? null };
}

/** Is `version` one of the entry's explicit `versions` (equal in the ecosystem's order, or as text)? */
function listed(entry: OsvAffected, ecosystem: string, version: string): boolean {
  const scheme = schemeForEcosystem(ecosystem);
  return (entry.versions ?? []).some(
    (v) => v === version || (scheme !== null && scheme.valid(v) && scheme.valid(version) && scheme.compare(v, version) === 0),
  );
}

/** The lower of two fixed versions (null: unknown) in the package's order. */
function lowerFix(scheme: VersionScheme | null, a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  if (scheme && scheme.valid(a) && scheme.valid(b)) return scheme.compare(a, b) <= 0 ? a : b;
  return a;
}

/** Does the entry affect the package? Returns the fix when it does. */
export function affects(entry: OsvAffected, pkg: InstalledPackage): { fixed: string | null } | null {
  const named = entry.package;
  if (!named || !lookupEcosystems(pkg.ecosystem).includes(named.ecosystem)) return null;
  if (packageKey(named.ecosystem, named.name) !== packageKey(pkg.ecosystem, pkg.name)) return null;
  let hit = listed(entry, named.ecosystem, pkg.version);
  let fixed: string | null = null;
  // Ranges are evaluated in the ecosystem the INSTALLED package is in (Debian:12's order is Debian's).
  for (const range of entry.ranges ?? []) {
    const verdict = evaluateRange(range, pkg.ecosystem, pkg.version);
    if (verdict?.affected) {
      hit = true;
      fixed = lowerFix(range.type === 'SEMVER' ? SEMVER : schemeForEcosystem(pkg.ecosystem), fixed, verdict.fixed);
    }
  }
  return hit ? { fixed } : null;
}

export function emptyCounts(): SeverityCounts {
  return { ...(Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>), total: 0 };
}

function sortedAliases(aliases: string[] | undefined): string[] {
  return [...new Set(aliases ?? [])].sort(
    (a, b) => Number(b.startsWith('CVE-')) - Number(a.startsWith('CVE-')) || (a < b ? -1 : a > b ? 1 : 0),
  );
}

/** Findings of one advisory for the given packages (one per package it affects). */
export function matchAdvisory(record: OsvRecord, packages: InstalledPackage[]): Finding[] {
  if (record.withdrawn !== undefined) return [];
  const findings = new Map<string, Finding>();
  for (const pkg of packages) {
    for (const entry of record.affected ?? []) {
      const hit = affects(entry, pkg);
      if (!hit) continue;
      const key = `${pkg.ecosystem}\u0000${pkg.name}\u0000${pkg.version}`;
      const seen = findings.get(key);
      if (seen) {
        seen.fixed = lowerFix(schemeForEcosystem(pkg.ecosystem), seen.fixed, hit.fixed);
        continue;
      }
      const rated = rateAdvisory(record, entry);
      findings.set(key, {
        id: record.id,
        aliases: sortedAliases(record.aliases),
        summary: record.summary ?? null,
        package: pkg.name,
        ecosystem: pkg.ecosystem,
        installed: pkg.version,
        fixed: hit.fixed,
        severity: rated.severity,
        cvss: rated.cvss,
        severitySource: rated.source,
        links: [...new Set((record.references ?? []).map((r) => r.url))],
      });
    }
  }
  return [...findings.values()];
}

/** Counts by severity. */
export function summarize(findings: Finding[]): SeverityCounts {
  const counts = emptyCounts();
  for (const f of findings) {
    counts[f.severity]++;
    counts.total++;
  }
  return counts;
}

/** Most severe first, then by package and id. */
function byImportance(a: Finding, b: Finding): number {
  return (
    severityRank(b.severity) - severityRank(a.severity) || cmp(a.package, b.package) || cmp(a.installed, b.installed) || cmp(a.id, b.id)
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Matches a package list against the database: the findings, most severe first, and their counts. */
export async function matchPackages(store: Pick<VulnDbStore, 'affecting'>, packages: InstalledPackage[]): Promise<MatchResult> {
  const unorderable = packages.filter((p) => {
    const scheme = schemeForEcosystem(p.ecosystem);
    return scheme !== null && !scheme.valid(p.version);
  });
  // One look-up per ecosystem, for all its package names.
  const byEcosystem = new Map<string, InstalledPackage[]>();
  for (const p of packages) byEcosystem.set(p.ecosystem, [...(byEcosystem.get(p.ecosystem) ?? []), p]);
  const findings: Finding[] = [];
  for (const [ecosystem, group] of byEcosystem) {
    const rows = await store.affecting(
      lookupEcosystems(ecosystem),
      group.map((p) => packageKey(ecosystem, p.name)),
    );
    for (const row of rows) findings.push(...matchAdvisory(JSON.parse(row.document) as OsvRecord, group));
  }
  findings.sort(byImportance);
  return { findings, summary: summarize(findings), unorderable };
}
