import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { RetentionRun, RunTotals } from '../retention/ports.js';
import type { RetentionService } from '../retention/service.js';
import { out, withComposition, type LoadConfig } from './users.js';

interface JsonFlag {
  json?: boolean;
}

/**
 * Opens the stores and the same wiring as the server (core with its policies, so an immutable
 * tag refuses a retention delete here too), runs `fn` on the retention service, closes. A refusal
 * (no policy, invalid policy, a run in progress) prints its message and exits 1.
 */
async function withRetention(loadConfig: LoadConfig, fn: (retention: RetentionService) => Promise<void>): Promise<void> {
  await withComposition(loadConfig, ({ retention }) => fn(retention));
}

/** The policy from --file (JSON; `-` reads stdin); INVALID_ARGUMENT when it is not JSON. */
async function readPolicy(file: string): Promise<unknown> {
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    const { RegistryError } = await import('../core/errors.js');
    throw new RegistryError('INVALID_ARGUMENT', `${file === '-' ? 'stdin' : file} is not valid JSON: ${(err as Error).message}`);
  }
}

function totalsLine(t: RunTotals): string {
  return `${t.tagsRemoved} tags removed, ${t.tagsKept} kept, ${t.tagsRefused} refused, ${t.manifestsUntagged} artifacts untagged, ${t.manifestsDeleted} untagged deleted, ${t.bytes} bytes for GC to free, in ${t.repositories} repositories`;
}

function runLine(run: RetentionRun): string {
  const kind = run.dryRun ? 'dry run' : 'run';
  const summary = run.summary === null ? 'running' : 'error' in run.summary ? `failed: ${run.summary.error}` : totalsLine(run.summary);
  return `#${run.id}  ${run.startedAt.toISOString()}  ${kind} (${run.trigger}${run.actor ? ` by ${run.actor}` : ''})  ${run.status}  ${summary}`;
}

/** Prints a run's report for people: per repository, what went and what stayed and why. */
function printReport(run: RetentionRun): void {
  out(runLine(run));
  for (const repo of run.report?.repositories ?? []) {
    out(`${repo.repository}:`);
    for (const r of repo.removed) out(`  ${run.dryRun ? 'would remove' : 'removed'} ${r.tag}  ${r.digest}`);
    for (const k of repo.kept) out(`  kept ${k.tag}  (${k.reasons.join('; ')})`);
    for (const d of repo.deleted) out(`  ${run.dryRun ? 'would delete' : 'deleted'} untagged ${d}`);
  }
}

/** `berth retention …`: a project's retention policy and its runs, on the server's own stores (acting as a system admin). */
export function registerRetentionCommands(program: Command, loadConfig: LoadConfig): void {
  const retention = program.command('retention').description("a project's retention policy (which tags to keep) and its runs");
  retention
    .command('show <project>')
    .description("print the project's policy")
    .option('--json', 'print it as JSON (as GET /api/v1/projects/<project>/retention does)')
    .action((project: string, opts: JsonFlag) =>
      withRetention(loadConfig, async (service) => {
        const { policyView } = await import('../http/api/retention.js');
        const policy = await service.policy(project);
        if (!policy) {
          process.stderr.write(`berth: project ${project} has no retention policy\n`);
          process.exitCode = 1;
          return;
        }
        out(JSON.stringify(policyView(policy), null, opts.json ? 2 : undefined));
      }),
    );
  retention
    .command('set <project>')
    .description('set the policy from a JSON file: {"rules": [...], "schedule": "0 3 * * *"} (docs/policies.md#retention)')
    .requiredOption('-f, --file <file>', 'the policy as JSON; - reads stdin')
    .action((project: string, opts: { file: string }) =>
      withRetention(loadConfig, async (service) => {
        const policy = await service.setPolicy(project, await readPolicy(opts.file), 'cli');
        out(
          `retention policy of ${project}: ${policy.rules.length} rules, ${policy.schedule ? `runs on "${policy.schedule}", next ${policy.nextRunAt?.toISOString()}` : 'runs on demand only'}`,
        );
      }),
    );
  retention
    .command('rm <project>')
    .description("remove the project's policy")
    .action((project: string) =>
      withRetention(loadConfig, async (service) => {
        await service.deletePolicy(project);
        out(`removed the retention policy of ${project}`);
      }),
    );
  retention
    .command('run <project>')
    .description('run the policy now and print what it removed and kept')
    .option('--dry-run', 'report what a real run would remove, remove nothing')
    .option('--json', 'print the run with its full report as JSON')
    .action((project: string, opts: { dryRun?: boolean } & JsonFlag) =>
      withRetention(loadConfig, async (service) => {
        const run = await service.run(project, { dryRun: opts.dryRun === true, trigger: 'manual', actor: 'cli' });
        if (opts.json) {
          const { runView } = await import('../http/api/retention.js');
          return out(JSON.stringify(runView(run), null, 2));
        }
        printReport(run);
        if (run.status === 'failed') process.exitCode = 1;
      }),
    );
  retention
    .command('runs <project>')
    .description("the project's recent runs, newest first")
    .option('--limit <n>', 'how many', '20')
    .option('--json', 'print them as JSON')
    .action((project: string, opts: { limit: string } & JsonFlag) =>
      withRetention(loadConfig, async (service) => {
        const runs = await service.runs(project, Math.max(1, Math.min(100, Number(opts.limit) || 20)));
        if (opts.json) {
          const { runView } = await import('../http/api/retention.js');
          return out(JSON.stringify(runs.map(runView), null, 2));
        }
        if (runs.length === 0) return out(`no retention runs of ${project} yet`);
        for (const run of runs) out(runLine(run));
      }),
    );
  retention
    .command('report <project> <id>')
    .description('one run with its report')
    .option('--json', 'print it as JSON (as GET /api/v1/projects/<project>/retention/runs/<id> does)')
    .action((project: string, id: string, opts: JsonFlag) =>
      withRetention(loadConfig, async (service) => {
        const run = await service.runById(project, Number(id));
        if (opts.json) {
          const { runView } = await import('../http/api/retention.js');
          return out(JSON.stringify(runView(run), null, 2));
        }
        printReport(run);
      }),
    );
}
