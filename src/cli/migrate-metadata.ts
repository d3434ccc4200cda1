import type { Command } from 'commander';
import type { BerthConfig } from '../config/schema.js';

interface MigrateFlags {
  from: string;
  to: string;
  force?: boolean;
  batchSize: string;
}

/** Exit codes: 0 copied, 1 the copy failed (target unchanged), 2 usage error or non-empty target without --force. */
export const MIGRATE_EXIT = { copied: 0, failed: 1, usage: 2 } as const;

/**
 * Registers `berth migrate-metadata --from sqlite:<path> --to postgres://… [--force]`.
 * Pool settings (metadata.pool, statementtimeout) come from the configuration as for `serve`.
 */
export function registerMigrateMetadataCommand(program: Command, loadConfig: () => Promise<BerthConfig>): void {
  program
    .command('migrate-metadata')
    .description('copy all metadata from a SQLite database into PostgreSQL (one transaction; refuses a non-empty target unless --force)')
    .requiredOption('--from <source>', 'sqlite:<path of berth.db>')
    .requiredOption('--to <url>', 'postgres://user:password@host:port/database')
    .option('--force', 'replace the contents of a target that already holds metadata')
    .option('--batch-size <rows>', 'rows per INSERT', '1000')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : MIGRATE_EXIT.usage))
    .action(async (flags: MigrateFlags) => {
      process.exitCode = await migrateMetadata(flags, loadConfig);
    });
}

async function migrateMetadata(flags: MigrateFlags, loadConfig: () => Promise<BerthConfig>): Promise<number> {
  const usage = (message: string) => {
    process.stderr.write(`berth migrate-metadata: ${message}\n`);
    return MIGRATE_EXIT.usage;
  };
  if (!flags.from.startsWith('sqlite:') || flags.from.length === 'sqlite:'.length) return usage('--from must be sqlite:<path>');
  if (/^(mysql|mariadb):\/\//.test(flags.to)) {
    return usage(
      'copying into MySQL/MariaDB is not supported yet: --to must be a postgres:// URL (a MySQL deployment starts from an empty database)',
    );
  }
  if (!/^postgres(ql)?:\/\//.test(flags.to)) return usage('--to must be a postgres:// URL');
  const batchSize = Number(flags.batchSize);
  if (!Number.isInteger(batchSize) || batchSize < 1) return usage('--batch-size must be a positive integer');
  const config = await loadConfig();
  const { postgresOptions } = await import('../metadata/index.js');
  const target = postgresOptions({ ...config, metadata: { ...config.metadata, driver: 'postgres', url: flags.to } });
  // Imported here so that every other berth command (serve above all) never loads the pg driver.
  const { copySqliteToPostgres, TargetNotEmptyError } = await import('../metadata/copy.js');
  try {
    const started = Date.now();
    const result = await copySqliteToPostgres(flags.from.slice('sqlite:'.length), target, {
      force: flags.force === true,
      batchSize,
      log: (line) => process.stdout.write(`${line}\n`),
    });
    const rows = result.tables.reduce((sum, t) => sum + t.rows, 0);
    process.stdout.write(`done: ${rows} rows in ${result.tables.length} tables, ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    return MIGRATE_EXIT.copied;
  } catch (err) {
    if (err instanceof TargetNotEmptyError) return usage(err.message);
    process.stderr.write(
      `berth migrate-metadata: the copy failed; nothing was copied (the target's data is as it was): ${(err as Error).message}\n`,
    );
    return MIGRATE_EXIT.failed;
  }
}
