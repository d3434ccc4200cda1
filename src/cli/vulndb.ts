import type { Command } from 'commander';
import type { VulnDbStore, VulnImportRun } from '../scanning/ports.js';
import { out, usageError, type LoadConfig } from './users.js';

/** Opens the server's metadata DB (same config), runs `fn` on the vulnerability database's store, closes it. */
async function withVulnDb(loadConfig: LoadConfig, fn: (store: VulnDbStore) => Promise<void>): Promise<void> {
  const config = await loadConfig();
  const [{ openMetadataAdapters }, { openSealer }] = await Promise.all([import('../metadata/index.js'), import('../secrets/index.js')]);
  const adapters = await openMetadataAdapters(config, undefined, openSealer(config.secrets));
  try {
    await fn(adapters.vulndb);
  } finally {
    await adapters.metadata.close();
  }
}

function when(ms: number | null): string {
  return ms === null ? 'never' : new Date(ms).toISOString();
}

/** "3d 4h", "12m", "40s": an age for people. */
export function humanAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m`;
  return `${s}s`;
}

function describeRun(run: VulnImportRun): string {
  return `${run.files} files: ${run.inserted} new, ${run.updated} updated, ${run.unchanged} unchanged, ${run.invalid} invalid`;
}

/** `berth vulndb import|status|match`: the offline OSV vulnerability database (docs/supply-chain.md). */
export function registerVulnDbCommands(program: Command, loadConfig: LoadConfig): void {
  const vulndb = program.command('vulndb').description('the offline vulnerability database (OSV): import, status, match');

  vulndb
    .command('import <path>')
    .description(
      'load OSV records from a directory, a .zip archive (as OSV publishes each ecosystem) or a .json file; records already stored with the same or a newer "modified" are left alone',
    )
    .option('--batch-size <n>', 'records per transaction', '500')
    .option('--json', 'print the run as JSON')
    .action((source: string, opts: { batchSize: string; json?: boolean }) =>
      withVulnDb(loadConfig, async (store) => {
        const batchSize = Number(opts.batchSize);
        if (!Number.isInteger(batchSize) || batchSize < 1)
          return usageError(`--batch-size must be a positive integer, not "${opts.batchSize}"`);
        const [{ VulnDb }, { readOsvSource }] = await Promise.all([import('../scanning/vulndb.js'), import('../scanning/sources.js')]);
        const { stat } = await import('node:fs/promises');
        const exists = await stat(source).then(
          () => true,
          () => false,
        );
        if (!exists) return usageError(`${source}: no such file or directory`);
        const progress = (run: VulnImportRun) => {
          if (!opts.json && process.stderr.isTTY) process.stderr.write(`\r${describeRun(run)}`);
        };
        let run: VulnImportRun;
        try {
          run = await new VulnDb(store).import(source, readOsvSource(source), { batchSize, onProgress: progress });
        } catch (err) {
          if (process.stderr.isTTY) process.stderr.write('\n');
          process.stderr.write(
            `berth: import stopped: ${(err as Error).message}; the batches stored before stay, run the same import again to resume\n`,
          );
          process.exitCode = 1;
          return;
        }
        if (!opts.json && process.stderr.isTTY) process.stderr.write('\n');
        if (opts.json) return out(JSON.stringify(run, null, 2));
        out(`imported ${source}: ${describeRun(run)}`);
        if (run.invalid > 0) {
          out(
            `skipped ${run.invalid} invalid ${run.invalid === 1 ? 'file' : 'files'}${run.errors.length < run.invalid ? ` (the first ${run.errors.length})` : ''}:`,
          );
          for (const reason of run.errors) out(`  ${reason}`);
        }
      }),
    );

  vulndb
    .command('status')
    .description("advisories per ecosystem, the last import and the database's age")
    .option('--max-age <duration>', 'older than this the database is stale (e.g. 24h, 7d)', '7d')
    .option('--check', 'exit 1 when the database is stale or empty (for monitoring)')
    .option('--json', 'print the status as JSON')
    .action((opts: { maxAge: string; check?: boolean; json?: boolean }) =>
      withVulnDb(loadConfig, async (store) => {
        const [{ VulnDb }, { durationMs }] = await Promise.all([import('../scanning/vulndb.js'), import('../config/schema.js')]);
        let maxAgeMs: number;
        try {
          maxAgeMs = durationMs(opts.maxAge);
        } catch {
          return usageError(`--max-age: "${opts.maxAge}" is not a duration such as 24h or 7d`);
        }
        const status = await new VulnDb(store).status(maxAgeMs);
        if (opts.check && status.stale) process.exitCode = 1;
        if (opts.json) return out(JSON.stringify(status, null, 2));
        out(`advisories: ${status.advisories} (${status.withdrawn} withdrawn)`);
        for (const [ecosystem, n] of Object.entries(status.byEcosystem)) out(`  ${ecosystem}: ${n}`);
        out(`newest record modified: ${when(status.newestModified)}`);
        const last = status.lastImport;
        out(last ? `last import: ${when(last.finishedAt)} from ${last.source} (${describeRun(last)})` : 'last import: never');
        const latest = status.latestRun;
        if (latest && latest.id !== last?.id)
          out(
            `latest run: ${latest.outcome === 'running' ? 'running or interrupted' : latest.outcome}, started ${when(latest.startedAt)} from ${latest.source} (${describeRun(latest)})`,
          );
        if (status.ageMs !== null)
          out(`age: ${humanAge(status.ageMs)}${status.stale ? ` — STALE (older than ${opts.maxAge}): import a newer copy` : ''}`);
        else out('STALE: no complete import yet; run berth vulndb import <path>');
      }),
    );

  vulndb
    .command('match <packages.json>')
    .description(
      'match a package list (JSON array of {ecosystem, name, version}: Debian source packages as "Debian:12", Alpine origins as "Alpine:v3.19", npm, Go, PyPI, crates.io) against the database',
    )
    .option('--json', 'print the findings and counts as JSON')
    .action((file: string, opts: { json?: boolean }) =>
      withVulnDb(loadConfig, async (store) => {
        const [{ readFile }, { matchPackages }, { packageListSchema }] = await Promise.all([
          import('node:fs/promises'),
          import('../scanning/match.js'),
          import('../scanning/packages.js'),
        ]);
        let parsed;
        try {
          parsed = packageListSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
        } catch (err) {
          return usageError(`${file}: ${(err as Error).message}`);
        }
        if (!parsed.success)
          return usageError(`${file}: not a package list: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
        const result = await matchPackages(store, parsed.data);
        if (opts.json) return out(JSON.stringify(result, null, 2));
        for (const f of result.findings) {
          const cve = f.aliases.find((a) => a.startsWith('CVE-'));
          out(
            `${f.severity.padEnd(10)} ${f.id}${cve && cve !== f.id ? ` (${cve})` : ''}  ${f.package} ${f.installed} → ${f.fixed ?? 'no fix'}`,
          );
        }
        const s = result.summary;
        out(
          `${s.total} vulnerabilities: ${s.Critical} critical, ${s.High} high, ${s.Medium} medium, ${s.Low} low, ${s.Negligible} negligible, ${s.Unknown} unknown`,
        );
      }),
    );
}
