import picomatch from 'picomatch';
import { ruleLabel } from './policy.js';
import type { RepositorySnapshot, RetentionRule, Selector, TagSelector } from './ports.js';

const DAY_MS = 86_400_000;

/** A tag-schema referrer (cosign's `sha256-<hex>.sig`, `.att`, `.sbom`…): names the digest of its subject. */
const REFERRER_TAG = /^(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})(?:\..+)?$/;

/** What one rule weighs: an artifact with the tags of it the rule selected (none: an untagged artifact). */
interface Candidate {
  digest: string;
  tags: string[];
  pushedAt: number;
  pulledAt: number | null;
}

/** What the rules decided for one repository, before core is asked to delete anything. */
export interface RepositoryPlan {
  /** Tags to keep (selected by some rule) and why. */
  kept: Map<string, string[]>;
  /** Tags a rule selected and none kept: tag → digest. */
  remove: Map<string, string>;
  /** Untagged top-level artifacts a rule selected and none kept. */
  deleteUntagged: string[];
}

type Matcher = (value: string) => boolean;
const matchers = new Map<string, Matcher>();

/** A doublestar matcher (cached: a run asks the same few patterns thousands of times). */
function matcher(pattern: string): Matcher {
  let match = matchers.get(pattern);
  if (!match) {
    match = pattern === '' || pattern === '**' ? () => true : picomatch(pattern, { dot: true });
    matchers.set(pattern, match);
  }
  return match;
}

function selects(selector: Selector, value: string): boolean {
  const hit = matcher(selector.pattern)(value);
  return selector.decoration === 'matches' ? hit : !hit;
}

/** Harbor's default: untagged artifacts are candidates of a `matches` selector, not of an `excludes` one. */
function includesUntagged(selector: TagSelector): boolean {
  return selector.untagged ?? selector.decoration === 'matches';
}

/** The repository's path inside its project (`team/app/api` → `app/api`; the root repository `team` → ''). */
export function pathInProject(repository: string, project: string): string {
  return repository === project ? '' : repository.slice(project.length + 1);
}

/** The candidates one rule keeps (Harbor's templates; `latest…` count artifacts, not tags). */
function retained(rule: RetentionRule, candidates: Candidate[], now: number): Candidate[] {
  const newest = (key: (c: Candidate) => number) =>
    [...candidates].sort((a, b) => key(b) - key(a) || b.pushedAt - a.pushedAt || (a.digest < b.digest ? -1 : 1));
  switch (rule.template) {
    case 'latestPushedK':
      return newest((c) => c.pushedAt).slice(0, rule.count ?? 10);
    case 'latestPulledN':
      return newest((c) => c.pulledAt ?? -1).slice(0, rule.count ?? 10);
    case 'nDaysSinceLastPush':
      return candidates.filter((c) => c.pushedAt >= now - (rule.days ?? 30) * DAY_MS);
    case 'nDaysSinceLastPull':
      return candidates.filter((c) => c.pulledAt !== null && c.pulledAt >= now - (rule.days ?? 30) * DAY_MS);
    case 'always':
      return candidates;
  }
}

/** The repository's manifest graph: tags per digest, index children, referrers per subject. */
export class ManifestGraph {
  readonly tagsOf = new Map<string, string[]>();
  private readonly childrenOf = new Map<string, string[]>();
  private readonly referrersOf = new Map<string, string[]>();
  readonly topLevel = new Set<string>();

  constructor(readonly snapshot: RepositorySnapshot) {
    for (const t of snapshot.tags) push(this.tagsOf, t.digest, t.name);
    const children = new Set<string>();
    for (const e of snapshot.children) {
      push(this.childrenOf, e.parent, e.child);
      children.add(e.child);
    }
    for (const m of snapshot.manifests) {
      if (m.subject) push(this.referrersOf, m.subject, m.digest);
      else if (!children.has(m.digest)) this.topLevel.add(m.digest);
    }
  }

  /** Everything GC keeps when `tagged` are the tagged digests: those, their index children and referrers, recursively. */
  reachable(tagged: Iterable<string>): Set<string> {
    const seen = new Set<string>();
    const stack = [...tagged];
    while (stack.length > 0) {
      const digest = stack.pop()!;
      if (seen.has(digest)) continue;
      seen.add(digest);
      stack.push(...(this.childrenOf.get(digest) ?? []), ...(this.referrersOf.get(digest) ?? []));
    }
    return seen;
  }

  /** Digests that still have a tag once `removed` tags are gone. */
  taggedWithout(removed: ReadonlySet<string>): Set<string> {
    return new Set(this.snapshot.tags.filter((t) => !removed.has(t.name)).map((t) => t.digest));
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * Applies the rules to one repository. Each rule whose repository selector matches picks its
 * candidates (artifacts with the tags it selects, plus untagged top-level artifacts if asked) and
 * keeps some; a tag is kept when any rule keeps it (the union), removed when some rule selected it
 * and none kept it, and left alone when no rule selected it. A removed tag-schema referrer
 * (`sha256-<hex>.sig`) whose subject stays is kept with it.
 */
export function planRepository(graph: ManifestGraph, path: string, rules: RetentionRule[], now: number): RepositoryPlan {
  const { snapshot } = graph;
  const manifests = new Map(snapshot.manifests.map((m) => [m.digest, m]));
  const kept = new Map<string, string[]>();
  const selected = new Set<string>();
  const keptUntagged = new Set<string>();
  const selectedUntagged = new Set<string>();

  rules.forEach((rule, index) => {
    if (rule.disabled || !selects(rule.repositories, path)) return;
    const candidates = new Map<string, Candidate>();
    for (const tag of snapshot.tags) {
      if (!selects(rule.tags, tag.name)) continue;
      selected.add(tag.name);
      const manifest = manifests.get(tag.digest);
      const candidate = candidates.get(tag.digest) ?? {
        digest: tag.digest,
        tags: [],
        pushedAt: manifest?.createdAt ?? 0,
        pulledAt: manifest?.lastPulledAt ?? null,
      };
      candidate.tags.push(tag.name);
      // Pushed = the latest of the artifact's push and its tags' (Harbor's max over both).
      candidate.pushedAt = Math.max(candidate.pushedAt, tag.updatedAt);
      candidates.set(tag.digest, candidate);
    }
    if (includesUntagged(rule.tags)) {
      for (const digest of graph.topLevel) {
        if (graph.tagsOf.has(digest)) continue;
        const m = manifests.get(digest)!;
        selectedUntagged.add(digest);
        candidates.set(digest, { digest, tags: [], pushedAt: m.createdAt, pulledAt: m.lastPulledAt });
      }
    }
    const label = ruleLabel(rule, index);
    for (const candidate of retained(rule, [...candidates.values()], now)) {
      if (candidate.tags.length === 0) keptUntagged.add(candidate.digest);
      for (const tag of candidate.tags) push(kept, tag, label);
    }
  });

  const remove = new Map<string, string>();
  const digestOf = new Map(snapshot.tags.map((t) => [t.name, t.digest]));
  for (const tag of selected) if (!kept.has(tag)) remove.set(tag, digestOf.get(tag)!);
  keepReferrerTags(graph, kept, remove);
  const deleteUntagged = [...selectedUntagged].filter((d) => !keptUntagged.has(d)).sort();
  return { kept, remove, deleteUntagged };
}

/** Signatures and SBOMs stored under tag-schema tags stay while their subject stays. */
function keepReferrerTags(graph: ManifestGraph, kept: Map<string, string[]>, remove: Map<string, string>): void {
  const staying = graph.reachable(graph.taggedWithout(new Set(remove.keys())));
  for (const tag of [...remove.keys()]) {
    const m = REFERRER_TAG.exec(tag);
    const subject = m ? `${m[1]}:${m[2]}` : null;
    if (subject && staying.has(subject)) {
      remove.delete(tag);
      kept.set(tag, [`referrer of kept ${subject}`]);
    }
  }
}

/**
 * What deleting `removedTags` and `deletedManifests` leaves to GC: artifacts left without a tag,
 * and every manifest GC will now collect (those, the untagged ones deleted, and whatever only
 * they kept alive: index children, referrers).
 */
export function consequences(
  graph: ManifestGraph,
  removedTags: ReadonlySet<string>,
  deletedManifests: string[],
): { untagged: string[]; garbage: string[] } {
  const before = graph.reachable(graph.tagsOf.keys());
  const taggedAfter = graph.taggedWithout(removedTags);
  const after = graph.reachable(taggedAfter);
  const untagged = [...graph.tagsOf.keys()].filter((d) => !taggedAfter.has(d)).sort();
  const gone = [...before, ...graph.reachable(deletedManifests)].filter((d) => !after.has(d));
  return { untagged, garbage: [...new Set(gone)] };
}
