import type { Command } from 'commander';
import type { SbomFormat } from '../sbom/index.js';
import { out, withComposition, type LoadConfig } from './users.js';

interface GenerateFlags {
  project?: string;
  format?: string;
  json?: boolean;
  queue?: boolean;
  scan?: boolean;
}

/** `berth sbom generate [--project p]`: SBOMs for existing images, on the server's own stores (safe while it runs). */
export function registerSbomCommands(program: Command, loadConfig: LoadConfig): void {
  const sbom = program.command('sbom').description('SBOMs of images (generated from their layers, attached as OCI referrers)');
  sbom
    .command('generate')
    .description('generate the SBOM of every tagged image (of one project with --project) that has none; those with one are reused')
    .option('--project <project>', 'only the repositories of this project')
    .option('--format <format>', 'spdx or cyclonedx (default: both)')
    .option('--json', 'print one JSON object per image and the totals')
    .option(
      '--queue',
      "queue the images without an SBOM for the running server's supply-chain job instead of generating here (both formats)",
    )
    .option('--scan', 'with --queue: scan every image too')
    .action((flags: GenerateFlags) =>
      withComposition(loadConfig, async ({ sbom: service, supplyChain }, stores) => {
        const { RegistryError } = await import('../core/errors.js');
        if (flags.scan && !flags.queue) throw new RegistryError('INVALID_ARGUMENT', '--scan goes with --queue');
        if (flags.queue) {
          if (flags.format) throw new RegistryError('INVALID_ARGUMENT', '--format does not go with --queue: the job writes both formats');
          const queued = await supplyChain.backfill(flags.project ?? null, { sbom: true, scan: flags.scan === true });
          out(
            flags.json
              ? JSON.stringify(queued)
              : `${queued.manifests} tagged manifests: ${queued.queued} queued for the supply-chain job (GET /api/v1/supply-chain/status shows the queue)`,
          );
          return;
        }
        if (flags.format && flags.format !== 'spdx' && flags.format !== 'cyclonedx')
          throw new RegistryError('INVALID_ARGUMENT', `--format ${flags.format}: spdx or cyclonedx`);
        const totals = await service.generateAll(stores.metadata, {
          project: flags.project,
          formats: flags.format ? [flags.format as SbomFormat] : undefined,
          // The system's own writes (as on push): with auth on no project role is asked of a CLI name.
          actor: null,
          onResult: (r) => {
            if (flags.json) return out(JSON.stringify(r));
            if ('error' in r) return out(`${r.repository}@${r.digest}  failed: ${r.error}`);
            const sboms = [...r.sboms, ...(r.children ?? []).flatMap((c) => c.sboms)];
            out(
              `${r.repository}@${r.digest}  ${r.reused ? 'reused' : 'generated'}  ${sboms.map((s) => `${s.format}:${s.origin}`).join(' ')}${r.packages !== null ? `  ${r.packages} packages` : ''}`,
            );
          },
        });
        if (flags.json) out(JSON.stringify(totals));
        else out(`${totals.images} images: ${totals.generated} generated, ${totals.reused} reused, ${totals.failed} failed`);
        if (totals.failed > 0) process.exitCode = 1;
      }),
    );
}
