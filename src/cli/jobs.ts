import type { Command } from 'commander';
import type { BerthConfig } from '../config/schema.js';

interface JobsFlags {
  job?: string;
  limit: string;
  json?: boolean;
}

/** Registers `berth jobs [--job <name>] [--limit <n>] [--json]`: the run history of background jobs. */
export function registerJobsCommand(program: Command, loadConfig: () => Promise<BerthConfig>): void {
  program
    .command('jobs')
    .description('show the recent runs of background jobs (gc, upload purge, event dispatch, …) across all replicas, newest first')
    .option('--job <name>', 'only this job')
    .option('--limit <n>', 'how many runs', '20')
    .option('--json', 'print the runs as JSON')
    .action(async (flags: JobsFlags) => {
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
        process.stderr.write(`berth jobs: --limit must be a whole number from 1 to 10000, got "${flags.limit}"\n`);
        process.exitCode = 2;
        return;
      }
      const { openStores } = await import('../stores.js');
      const stores = await openStores(await loadConfig());
      try {
        const runs = await stores.jobs.list(limit, flags.job);
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
          return;
        }
        if (runs.length === 0) {
          process.stdout.write('no job runs recorded yet\n');
          return;
        }
        for (const run of runs) {
          const took = run.finishedAt ? `${run.finishedAt.getTime() - run.startedAt.getTime()} ms` : 'running';
          process.stdout.write(
            `${run.startedAt.toISOString()}  ${run.job.padEnd(16)} ${run.outcome.padEnd(8)} ${took.padStart(9)}  ${run.holder}  ${JSON.stringify(run.summary ?? {})}\n`,
          );
        }
      } finally {
        await stores.close();
      }
    });
}
