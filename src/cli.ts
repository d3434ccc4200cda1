#!/usr/bin/env -S node --max-semi-space-size=4
import { existsSync, readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { Command, InvalidArgumentError } from 'commander';
import type { BerthConfig } from './config/schema.js';

// Startup cost: this file and src/cli/*.ts import only commander and types at the top; each
// command imports what it runs (the server, the stores, zod and the YAML parser) when it runs,
// so `berth --help` or `berth user list` do not load the whole server first. `berth serve`
// does not even load or declare the other commands (src/cli/*.ts, ~80 commander objects):
// each worker would keep them in its heap for nothing (issue 19).

// src/cli.ts (run through tsx) sits one level below package.json; dist/src/cli.js two.
const pkgUrl = [new URL('../package.json', import.meta.url), new URL('../../package.json', import.meta.url)].find((u) => existsSync(u))!;
const pkg = JSON.parse(readFileSync(pkgUrl, 'utf8')) as { version: string };

/**
 * V8 "pretenures" objects from allocation sites whose objects often survived a young-generation
 * collection: it allocates them straight into the old generation, which is collected rarely.
 * Under concurrent blob downloads that decision flipped on in some runs and not in others; when
 * on, request objects piled up as old-generation garbage (heap 58 -> 108 MB in 10 s, peak RSS
 * 140 -> 205 MB in the bench's blob-load).
 *
 * Even without pretenuring, the objects of 64 requests in flight outlive two young-generation
 * collections and die in the old generation, which grew ~4 MB/s under the bench's blob-load
 * until V8's next full collection (peak RSS 147-160 MB). Letting the old generation grow by 50 %
 * of the live heap (~14 MB) before the next full collection keeps that garbage smaller (peak
 * 123-131 MB, same rate; docs/performance.md). Not less: at 20 % a 1 GiB push ran 65 full
 * collections instead of 1 (the staging's external memory swings by ~8 MiB) and cost twice the CPU.
 *
 * Both flags are read at every collection, so setting them here takes effect.
 */
function tuneGarbageCollector(): void {
  v8.setFlagsFromString('--no-allocation-site-pretenuring');
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/** How much the old generation may grow, in % of the heap live after a full collection, before the next one. */
const HEAP_GROWING_PERCENT = 50;

/** Settings that are not Berth's (a misspelt BERTH_* variable…): said on stderr, not fatal. */
function printWarnings(warnings: string[]): void {
  for (const warning of warnings) process.stderr.write(`berth: warning: ${warning}\n`);
}

/** The configuration (--config, else $BERTH_CONFIG, else ./berth.yaml, plus BERTH_* variables), with its warnings printed. */
async function loadConfigured(): Promise<BerthConfig> {
  const { loadConfig } = await import('./config/load.js');
  const { config, warnings } = loadConfig({ file: program.opts<{ config?: string }>().config });
  printWarnings(warnings);
  return config;
}

/**
 * `berth vulndb status | head`: the reader closing the pipe early is a normal end for a
 * listing, not a crash (Node would throw an unhandled EPIPE with a stack trace); other output
 * errors still fail loudly.
 */
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command()
  .name('berth')
  .description('Berth: an OCI Distribution Spec v1.1 container registry')
  .version(pkg.version, '-v, --version')
  .option('-c, --config <file>', 'configuration file (default: $BERTH_CONFIG, then ./berth.yaml)');

program
  .command('serve')
  .description('run the registry server')
  .option(
    '-w, --workers <n>',
    'worker processes serving HTTP on the same port: a number, or auto for one per core (default: server.workers, auto)',
    parseWorkers,
  )
  .action(async (options: { workers?: number | 'auto' }) => {
    const config = await loadConfigured();
    const { joinCluster, runPrimary, workerCount, workerPlace } = await import('./cluster.js');
    const place = workerPlace();
    // A worker of a cluster (src/cluster.ts) knows how many they are from the primary.
    const workers = place ? place.count : workerCount(options.workers ?? config.server.workers);
    config.server.workers = workers;
    if (workers > 1 && !place) {
      // The primary: forks and supervises the workers, serves nothing itself.
      const { default: pino } = await import('pino');
      process.exit(await runPrimary(workers, pino({ level: config.log.level, base: { service: 'berth', role: 'primary' } })));
    }
    const member = joinCluster();
    tuneGarbageCollector();
    const { createLogger, startServer } = await import('./server.js');
    const logger = member ? createLogger(config).child({ worker: member.index }) : createLogger(config);
    const server = await startServer(config, logger, member);
    const { compactWhenIdle } = await import('./idle-compaction.js');
    const compaction = compactWhenIdle({
      onCompaction: ({ when, ms, heapBefore, heapAfter }) =>
        server.app.log.debug(
          { when, ms: Math.round(ms), heapMB: [heapBefore, heapAfter].map((b) => Math.round(b / 1e6)) },
          'heap compacted',
        ),
    });
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      server.app.log.info({ signal }, 'shutting down');
      compaction.stop();
      await server.close();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
    // A worker whose primary is gone (killed) stops too, cleanly.
    if (member) process.on('disconnect', () => void stop('primary gone'));
    // SIGHUP re-reads the TLS certificate and key (renewals without a restart).
    process.on('SIGHUP', () => server.reloadTls());
  });

/** --workers: a positive number or `auto`. */
function parseWorkers(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new InvalidArgumentError('expected a number of workers from 1 to 256, or auto');
  return n;
}

const configCommand = program.command('config').description('configuration tools');
configCommand
  .command('check')
  .description('validate the configuration (file + BERTH_* environment) and print the effective result')
  .action(async () => {
    const { loadConfig, redactConfig } = await import('./config/load.js');
    const { config, file, warnings } = loadConfig({ file: program.opts<{ config?: string }>().config });
    printWarnings(warnings);
    process.stdout.write(`configuration OK${file ? ` (${file})` : ' (defaults + environment)'}\n`);
    process.stdout.write(`${JSON.stringify(redactConfig(config), null, 2)}\n`);
  });

if (commandName(process.argv.slice(2)) !== 'serve') await registerOtherCommands();

/** The other commands than serve, from src/cli/*.ts. */
async function registerOtherCommands(): Promise<void> {
  const configFile = () => program.opts<{ config?: string }>().config;
  (await import('./cli/fsck.js')).registerFsckCommand(program, configFile);
  (await import('./cli/gc.js')).registerGcCommand(program, configFile);
  (await import('./cli/jobs.js')).registerJobsCommand(program, loadConfigured);
  (await import('./cli/users.js')).registerUserCommands(program, loadConfigured);
  (await import('./cli/bindings.js')).registerBindingCommands(program, loadConfigured);
  (await import('./cli/projects.js')).registerProjectCommands(program, loadConfigured);
  (await import('./cli/migrate-metadata.js')).registerMigrateMetadataCommand(program, loadConfigured);
  (await import('./cli/quotas.js')).registerQuotaCommands(program, loadConfigured);
  (await import('./cli/retention.js')).registerRetentionCommands(program, loadConfigured);
  (await import('./cli/tags.js')).registerTagCommands(program, loadConfigured);
  (await import('./cli/webhooks.js')).registerWebhookCommands(program, loadConfigured);
  (await import('./cli/signatures.js')).registerSignatureCommands(program, loadConfigured);
  (await import('./cli/vulndb.js')).registerVulnDbCommands(program, loadConfigured);
  (await import('./cli/vuln-policy.js')).registerVulnPolicyCommands(program, loadConfigured);
  (await import('./cli/sbom.js')).registerSbomCommands(program, loadConfigured);
  const registries = await import('./cli/registries.js');
  registries.registerRegistryCommands(program, loadConfigured);
  registries.registerCacheCommands(program, loadConfigured);
  (await import('./cli/replication.js')).registerReplicationCommands(program, loadConfigured);
}

/**
 * The command a command line runs: its first word that is not an option (nor the value of
 * -c/--config, the one global option that takes a separate value).
 */
function commandName(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-c' || arg === '--config') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

program.parseAsync(process.argv).catch((err: unknown) => {
  // A ConfigError (src/config/load.ts, not imported here to keep startup light): the message says it all.
  // So is a SealedSecretError (src/core/secrets.ts): a missing or wrong secrets key.
  if ((err as Error | null)?.name === 'ConfigError' || (err as Error | null)?.name === 'SealedSecretError') {
    process.stderr.write(`berth: ${(err as Error).message}\n`);
    process.exit(2);
  }
  // A StorageFullError (src/core/errors.ts): the disk or the database is full. No stack: the
  // operator needs the fact and the remedy. (berth gc records its work before it deletes, so it
  // too needs a little room.)
  if ((err as Error | null)?.name === 'StorageFullError') {
    process.stderr.write(`berth: ${(err as Error).message}: the disk or database is full; free some space and run the command again\n`);
    process.exit(1);
  }
  // A LeaseBusyError (src/jobs/leases.ts): another process holds the work's lease; the message names it.
  if ((err as Error | null)?.name === 'LeaseBusyError') {
    process.stderr.write(`berth: ${(err as Error).message}\n`);
    process.exit(1);
  }
  process.stderr.write(`berth: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
