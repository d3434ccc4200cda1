import type { Command } from 'commander';
import type { BerthConfig } from '../config/schema.js';
import { formatReport } from '../fsck/format.js';
import { corruptionCount, type FsckOptions, type FsckReport } from '../fsck/types.js';

interface FsckFlags {
  repair?: boolean;
  json?: boolean;
  verifyContent?: boolean;
  grace: string;
}

/** Exit codes: 0 consistent, 1 corruption found (and not repaired), 2 usage or configuration error, 3 the check itself failed. */
export const FSCK_EXIT = { consistent: 0, problems: 1, usage: 2, failed: 3 } as const;

/** Registers `berth fsck [--repair] [--json] [--verify-content] [--grace <duration>]`. */
export function registerFsckCommand(program: Command, configFile: () => string | undefined): void {
  program
    .command('fsck')
    .description('check that metadata and blob storage agree (exit 0 consistent, 1 problems, 2 usage); --repair removes leftovers')
    .option('--repair', 'delete orphan blobs, orphan staging areas, broken upload sessions and unreferenced rows whose bytes are gone')
    .option('--json', 'print the report as JSON')
    .option('--verify-content', 're-hash every blob and manifest (slow: reads all content)')
    .option('--grace <duration>', 'leave leftovers younger than this alone, as they may belong to a request in flight', '1h')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : FSCK_EXIT.usage))
    .action(async (flags: FsckFlags) => {
      process.exitCode = await fsckCommand(configFile(), flags);
    });
}

async function fsckCommand(file: string | undefined, flags: FsckFlags): Promise<number> {
  // Imported when the command runs, so that `berth --help` does not load zod, YAML and the stores.
  const [{ durationMs }, { ConfigError, loadConfig }] = await Promise.all([import('../config/schema.js'), import('../config/load.js')]);
  let graceMs: number;
  let config;
  try {
    graceMs = durationMs(/^\d+$/.test(flags.grace) ? Number(flags.grace) : flags.grace);
    config = loadConfig({ file }).config;
  } catch (err) {
    const message = err instanceof ConfigError ? err.message : `--grace: ${(err as Error).message}`;
    process.stderr.write(`berth fsck: ${message}\n`);
    return FSCK_EXIT.usage;
  }
  try {
    const repair = flags.repair === true;
    const report = await fsckStores(config, { repair, verifyContent: flags.verifyContent === true, graceMs });
    process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, repair));
    return corruptionCount(report) > 0 ? FSCK_EXIT.problems : FSCK_EXIT.consistent;
  } catch (err) {
    process.stderr.write(`berth fsck: the check failed: ${(err as Error).stack ?? String(err)}\n`);
    return FSCK_EXIT.failed;
  }
}

/** Opens the stores a configuration names, checks them, closes them. */
export async function fsckStores(config: BerthConfig, options: FsckOptions): Promise<FsckReport> {
  const [{ openStores }, { runFsck }, { projectOf }] = await Promise.all([
    import('../stores.js'),
    import('../fsck/check.js'),
    import('../core/names.js'),
  ]);
  const stores = await openStores(config);
  try {
    // Pull-through cache repositories may reference content not fetched yet (docs/proxy-cache.md).
    const cacheProjects = new Set((await stores.proxyCache.projects()).map((p) => p.project));
    const mirror = config.proxy.remoteurl !== undefined;
    const readThrough = (repository: string) => mirror || cacheProjects.has(projectOf(repository));
    // With auth on, repositories without a project are admin-only until adopted: report them.
    return await runFsck(stores.blobs, stores.fsck, { orphans: config.auth.mode !== 'none', readThrough, ...options });
  } finally {
    await stores.close();
  }
}
