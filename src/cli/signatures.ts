import type { Command } from 'commander';
import type { SignatureService } from '../signatures/service.js';
import { out, safeUser, usageError as fail, withComposition, type LoadConfig } from './users.js';

/** Runs `fn` on the signature service the admin API uses (the server's stores and wiring), as `cli:<user>`. */
async function withSignatures(
  loadConfig: LoadConfig,
  project: string,
  fn: (signatures: SignatureService, actor: { name: string; ip: null }) => Promise<void>,
): Promise<void> {
  await withComposition(loadConfig, async ({ signatures }, stores) => {
    if ((await stores.auth.getProject(project)) === null) return fail(`project ${project} does not exist (berth project add ${project})`);
    await fn(signatures, { name: `cli:${safeUser()}`, ip: null });
  });
}

const MODES = ['off', 'audit', 'enforce'];

/** `berth signature policy|trust|untrust|status`: signature trust policies (docs/supply-chain.md). */
export function registerSignatureCommands(program: Command, loadConfig: LoadConfig): void {
  const signature = program
    .command('signature')
    .description('signature trust policies per project: mode, trusted keys and certificates, status');
  signature
    .command('policy <project>')
    .description("show a project's signature trust policy, or set it with --mode (off, audit, enforce)")
    .option('--mode <mode>', 'off: nothing checked; audit: pulls allowed, violations recorded; enforce: unsigned pulls refused')
    .option('--no-inherit-index', 'children of a verified index do not count as verified')
    .action((project: string, opts: { mode?: string; inheritIndex: boolean }) =>
      withSignatures(loadConfig, project, async (signatures, actor) => {
        if (opts.mode !== undefined && !MODES.includes(opts.mode)) return fail(`--mode must be one of ${MODES.join(', ')}`);
        const view =
          opts.mode === undefined
            ? await signatures.show(project)
            : await signatures.setPolicy(actor, project, { mode: opts.mode as 'off', inheritIndex: opts.inheritIndex });
        out(JSON.stringify(view, null, 2));
      }),
    );
  signature
    .command('trust <project> <name> <pem-file>')
    .description('trust a PEM public key (cosign.pub) or certificate (a Notation root) for the project ("-": read it from stdin)')
    .action((project: string, name: string, file: string) =>
      withSignatures(loadConfig, project, async (signatures, actor) => {
        const { readFileSync } = await import('node:fs');
        const key = await signatures.addKey(actor, project, name, readFileSync(file === '-' ? 0 : file, 'utf8'));
        out(JSON.stringify({ ...key, pem: undefined }, null, 2));
      }),
    );
  signature
    .command('untrust <project> <id>')
    .description('stop trusting a key or certificate (its id from `berth signature policy`)')
    .action((project: string, id: string) =>
      withSignatures(loadConfig, project, async (signatures, actor) => {
        if (!/^\d{1,15}$/.test(id)) return fail(`"${id}" is not a key id`);
        await signatures.deleteKey(actor, project, Number(id));
      }),
    );
  signature
    .command('status <artifact>')
    .description("every signature of <repository>@<digest> and whether it verifies under the project's policy")
    .action((artifact: string) => {
      const at = artifact.lastIndexOf('@');
      if (at <= 0) return fail('give the artifact as <repository>@<digest>, e.g. team/app@sha256:…');
      const repository = artifact.slice(0, at);
      const project = repository.split('/')[0]!;
      return withSignatures(loadConfig, project, async (signatures) =>
        out(JSON.stringify(await signatures.status(project, repository, artifact.slice(at + 1)), null, 2)),
      );
    });
}
