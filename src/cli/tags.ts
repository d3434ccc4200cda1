import type { Command } from 'commander';
import type { Decoration, ImmutableRuleInput, TagsActor, TagsService } from '../tags/index.js';
import { out, safeUser, usageError as fail, withComposition, type LoadConfig } from './users.js';

interface JsonFlag {
  json?: boolean;
}

/**
 * Opens the server's stores (same config) with the server's wiring, runs `fn` on the tags
 * service the admin API uses, as `cli:<user>` (a system administrator, as in the other
 * commands), and closes them. A refusal prints its message and exits 1.
 */
async function withTags(
  loadConfig: LoadConfig,
  fn: (tags: TagsService, actor: TagsActor, projectExists: (name: string) => Promise<boolean>) => Promise<void>,
): Promise<void> {
  await withComposition(loadConfig, ({ tags }, stores) =>
    fn(tags, { name: `cli:${safeUser()}`, ip: null }, async (name) => (await stores.auth.getProject(name)) !== null),
  );
}

/** `team/app:v1` → ['team/app', 'v1'] (the tag is after the last colon: registry ports never appear here). */
function splitReference(reference: string): [string, string] | null {
  const colon = reference.lastIndexOf(':');
  if (colon <= 0 || reference.lastIndexOf('/') > colon) return null;
  return [reference.slice(0, colon), reference.slice(colon + 1)];
}

interface RuleFlags extends JsonFlag {
  tag: string;
  repository: string;
  excludeTag?: boolean;
  excludeRepository?: boolean;
  disabled?: boolean;
}

function ruleInput(flags: RuleFlags): ImmutableRuleInput {
  const decoration = (exclude?: boolean): Decoration => (exclude ? 'excludes' : 'matches');
  return {
    repository: { pattern: flags.repository, decoration: decoration(flags.excludeRepository) },
    tag: { pattern: flags.tag, decoration: decoration(flags.excludeTag) },
    disabled: flags.disabled === true,
  };
}

/** `berth tag history|restore` and `berth tag rule list|add|rm` (docs/policies.md). */
export function registerTagCommands(program: Command, loadConfig: LoadConfig): void {
  const tag = program.command('tag').description('tag history and rollback; immutable tag rules');
  tag
    .command('history <repository>')
    .description('tag creations, moves and deletes of a repository, newest first')
    .option('--tag <tag>', 'only this tag')
    .option('-n, --limit <n>', 'at most this many entries', '50')
    .option('--json', 'print the page as JSON (as GET /api/v1/repositories/<name>/tag-history does)')
    .action((repository: string, opts: { tag?: string; limit: string } & JsonFlag) =>
      withTags(loadConfig, async (tags) => {
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1) return fail(`--limit must be a whole number ≥ 1, got "${opts.limit}"`);
        const page = await tags.history(repository, { limit, ...(opts.tag ? { tag: opts.tag } : {}) });
        const { historyView } = await import('../http/api/tags.js');
        if (opts.json) return out(JSON.stringify({ repository, entries: page.entries.map(historyView), next: page.next }, null, 2));
        if (page.entries.length === 0) return out(`no tag history for ${repository} within tags.history.retention`);
        for (const e of page.entries) {
          out(`${e.at.toISOString()}  ${e.tag}  ${e.oldDigest ?? '-'} -> ${e.newDigest ?? '-'}  ${e.via} by ${e.actor ?? 'anonymous'}`);
        }
      }),
    );
  tag
    .command('restore <reference> <digest>')
    .description('point <repository>:<tag> back at a digest it pointed to within the history window')
    .option('--json', 'print the result as JSON (as POST …/tags/<tag>/restore does)')
    .action((reference: string, digest: string, opts: JsonFlag) =>
      withTags(loadConfig, async (tags, actor) => {
        const parts = splitReference(reference);
        if (!parts) return fail(`"${reference}" is not <repository>:<tag>`);
        const [repository, name] = parts;
        const { previous } = await tags.restore(actor, repository, name, digest);
        if (opts.json) return out(JSON.stringify({ repository, tag: name, digest, previous }, null, 2));
        out(
          previous === digest
            ? `${reference} already points to ${digest}`
            : `${reference} now points to ${digest} (was ${previous ?? 'absent'})`,
        );
      }),
    );

  const rule = tag.command('rule').description('immutable tag rules of a project');
  rule
    .command('list <project>')
    .description("a project's immutable tag rules")
    .option('--json', 'print the rules as JSON (as GET /api/v1/projects/<project>/immutable-rules does)')
    .action((project: string, opts: JsonFlag) =>
      withTags(loadConfig, async (tags) => {
        const { ruleView } = await import('../http/api/tags.js');
        const rules = (await tags.listRules(project)).map(ruleView);
        if (opts.json) return out(JSON.stringify(rules, null, 2));
        if (rules.length === 0) return out(`no immutable tag rules in ${project}`);
        for (const r of rules)
          out(
            `${r.id}  repository ${r.repository.decoration} ${r.repository.pattern}  tag ${r.tag.decoration} ${r.tag.pattern}${r.disabled ? '  (disabled)' : ''}`,
          );
      }),
    );
  rule
    .command('add <project>')
    .description('make the tags a repository glob × tag glob selects immutable')
    .requiredOption('--tag <glob>', 'tag pattern (doublestar glob), e.g. "v*"')
    .option('--repository <glob>', 'repository pattern, without the project (doublestar glob)', '**')
    .option('--exclude-tag', 'protect the tags the pattern does NOT match')
    .option('--exclude-repository', 'apply to the repositories the pattern does NOT match')
    .option('--disabled', 'store the rule switched off')
    .option('--json', 'print the rule as JSON')
    .action((project: string, flags: RuleFlags) =>
      withTags(loadConfig, async (tags, actor, projectExists) => {
        if (!(await projectExists(project))) return fail(`project ${project} not found`);
        const { ruleView } = await import('../http/api/tags.js');
        const created = ruleView(await tags.addRule(actor, project, ruleInput(flags)));
        out(flags.json ? JSON.stringify(created, null, 2) : `added immutable rule ${created.id} to ${project}`);
      }),
    );
  rule
    .command('rm <project> <id>')
    .description('delete an immutable tag rule')
    .action((project: string, id: string) =>
      withTags(loadConfig, async (tags, actor) => {
        if (!/^\d+$/.test(id)) return fail(`"${id}" is not a rule id`);
        await tags.deleteRule(actor, project, Number(id));
        out(`deleted immutable rule ${id} of ${project}`);
      }),
    );
}
