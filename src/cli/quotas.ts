import type { Command } from 'commander';
import type { QuotaService, QuotaView } from '../quotas/service.js';
import { out, usageError as fail, type LoadConfig } from './users.js';

/**
 * Opens the server's metadata DB (same config), runs `fn` on the quota service the admin API
 * uses, closes it. A refusal (bad size, bad name) prints its message and exits 1.
 */
async function withQuotas(loadConfig: LoadConfig, fn: (quotas: QuotaService) => Promise<void>): Promise<void> {
  const config = await loadConfig();
  const [{ openMetadataAdapters }, { QuotaService }, { RegistryError }, { openSealer }] = await Promise.all([
    import('../metadata/index.js'),
    import('../quotas/service.js'),
    import('../core/errors.js'),
    import('../secrets/index.js'),
  ]);
  const adapters = await openMetadataAdapters(config, undefined, openSealer(config.secrets));
  try {
    await fn(new QuotaService(adapters.quotas));
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    process.stderr.write(`berth: ${err.message}\n`);
    process.exitCode = 1;
  } finally {
    await adapters.metadata.close();
  }
}

async function describe(view: QuotaView): Promise<string> {
  const { humanBytes } = await import('../quotas/bytes.js');
  const limit = view.limit === null ? 'unlimited' : `${humanBytes(view.limit)} (${view.percent}% used)`;
  return `${view.project}: ${humanBytes(view.used)} used of ${limit}`;
}

/** `berth quota set|show|recount`: storage quotas per project (docs/policies.md#storage-quotas). */
export function registerQuotaCommands(program: Command, loadConfig: LoadConfig): void {
  const quota = program.command('quota').description('storage quotas per project: set, show, recount');
  quota
    .command('set <project> <size>')
    .description('set a project\'s quota: bytes or a size such as 10GiB, 500MB ("unlimited" removes it)')
    .option('--json', 'print the quota as JSON (as PUT /api/v1/projects/<project>/quota does)')
    .action((project: string, size: string, opts: { json?: boolean }) =>
      withQuotas(loadConfig, async (quotas) => {
        const [{ parseBytes }, { validateRepositoryName }] = await Promise.all([import('../quotas/bytes.js'), import('../core/names.js')]);
        if (project.includes('/')) return fail(`a project is one path component ("team-a", not "${project}")`);
        validateRepositoryName(project);
        const limit = size === 'unlimited' ? null : parseBytes(size);
        if (limit === null && size !== 'unlimited')
          return fail(`"${size}" is not a size: give bytes or a size such as 10GiB, 500MB, or "unlimited"`);
        const view = await quotas.setLimit(project, limit);
        out(opts.json ? JSON.stringify(view, null, 2) : await describe(view));
      }),
    );
  quota
    .command('show [project]')
    .description('usage and quota of one project, or of every project with content or a quota')
    .option('--json', 'print JSON (as GET /api/v1/projects/<project>/quota or GET /api/v1/quotas do)')
    .action((project: string | undefined, opts: { json?: boolean }) =>
      withQuotas(loadConfig, async (quotas) => {
        const views = project === undefined ? await quotas.list() : [await quotas.show(project)];
        if (opts.json) return out(JSON.stringify(project === undefined ? views : views[0], null, 2));
        if (views.length === 0) return out('no projects use storage yet');
        for (const view of views) out(await describe(view));
      }),
    );
  quota
    .command('recount')
    .description("recount every project's usage from scratch and correct the kept figures (--check: only compare)")
    .option('--check', 'compare only; exit 1 when a kept figure differs from the recount')
    .option('--json', 'print the differences as JSON')
    .action((opts: { check?: boolean; json?: boolean }) =>
      withQuotas(loadConfig, async (quotas) => {
        if (opts.check) {
          const drift = await quotas.verify();
          if (opts.json) out(JSON.stringify(drift, null, 2));
          else
            out(
              drift.length === 0
                ? 'usage matches a recount'
                : drift.map((d) => `${d.project}: kept ${d.kept}, recounted ${d.recounted}`).join('\n'),
            );
          if (drift.length > 0) process.exitCode = 1;
          return;
        }
        const changed = await quotas.recount();
        if (opts.json) return out(JSON.stringify(changed, null, 2));
        out(
          changed.length === 0
            ? 'usage already matched a recount'
            : changed.map((c) => `${c.project}: ${c.before} -> ${c.after} bytes`).join('\n'),
        );
      }),
    );
}
