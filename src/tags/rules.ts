import picomatch from 'picomatch';
import { projectOf } from '../core/names.js';
import { peers } from '../core/peers.js';
import type { ImmutableRule, RuleSnapshot, Selector, TagsTxQueries } from './ports.js';

/** What a worker tells its siblings when a project's rules changed (src/core/peers.ts). */
const PEER_TOPIC = 'tag-rules.forget';

/** A rule with its globs compiled once per load, not per push. */
interface CompiledRule {
  rule: ImmutableRule;
  repository: (name: string) => boolean;
  tag: (name: string) => boolean;
}

interface CachedRules {
  version: number;
  rules: CompiledRule[];
  /** When the version row was last compared (Date.now()). */
  checkedAt: number;
}

/** How long a replica trusts its cached rules before comparing the version row again. */
export const RULE_REFRESH_MS = 1000;

/** Doublestar semantics (Harbor's `doublestar` selector): `*` stays within a path segment, `**` crosses them. */
function selects(selector: Selector): (value: string) => boolean {
  const match = picomatch(selector.pattern, { dot: true });
  return selector.decoration === 'matches' ? (value) => match(value) : (value) => !match(value);
}

/** The repository name as rules see it: without its project (`app` for `team/app`). */
export function repositoryInProject(repository: string): string {
  const project = projectOf(repository);
  return repository === project ? repository : repository.slice(project.length + 1);
}

export function describeRule(rule: ImmutableRule): string {
  const part = (s: Selector) => `${s.decoration} ${s.pattern}`;
  return `rule ${rule.id} (repository ${part(rule.repository)}, tag ${part(rule.tag)})`;
}

/**
 * The immutable rules of each project, cached in memory for the push path. A replica compares
 * a project's version row (bumped by every rule change, in its transaction) at most once per
 * RULE_REFRESH_MS and reloads only when it moved, so a rule change made on another replica
 * applies within a second, and a push pays one indexed read per second per project.
 */
export class ImmutableRules {
  private readonly cache = new Map<string, CachedRules>();

  constructor(private readonly refreshMs = RULE_REFRESH_MS) {
    // A rule changed on another worker of this server: re-check its version at the next push.
    peers().subscribe(PEER_TOPIC, (project) => typeof project === 'string' && this.cache.delete(project));
  }

  /** The first enabled rule that makes `repository:tag` immutable, or null (Harbor: first match wins). */
  async protecting(queries: TagsTxQueries, repository: string, tag: string): Promise<ImmutableRule | null> {
    const rules = await this.current(queries, projectOf(repository));
    if (rules.length === 0) return null;
    const name = repositoryInProject(repository);
    return rules.find((r) => r.repository(name) && r.tag(tag))?.rule ?? null;
  }

  /** Drops a project's cached rules (after a change on this replica: applies at once here, and in this server's other workers). */
  forget(project: string): void {
    this.cache.delete(project);
    peers().publish(PEER_TOPIC, project);
  }

  private async current(queries: TagsTxQueries, project: string): Promise<CompiledRule[]> {
    const now = Date.now();
    const cached = this.cache.get(project);
    if (cached && now - cached.checkedAt < this.refreshMs) return cached.rules;
    const version = await queries.ruleVersion(project);
    if (cached && cached.version === version) {
      cached.checkedAt = now;
      return cached.rules;
    }
    const snapshot = await queries.rules(project);
    const rules = compile(snapshot);
    this.cache.set(project, { version: snapshot.version, rules, checkedAt: now });
    return rules;
  }
}

function compile(snapshot: RuleSnapshot): CompiledRule[] {
  return snapshot.rules.filter((r) => !r.disabled).map((rule) => ({ rule, repository: selects(rule.repository), tag: selects(rule.tag) }));
}

/** Throws when a pattern cannot be compiled (checked before a rule is stored). */
export function validatePattern(pattern: string): void {
  picomatch.makeRe(pattern);
}
