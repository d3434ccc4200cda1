import type { Command } from 'commander';
import { out, safeUser, usageError as fail, withComposition, type LoadConfig } from './users.js';

interface PolicyOptions {
  mode?: string;
  severity?: string;
  allow?: string[];
  clearAllowlist?: boolean;
  unscanned?: string;
  grace?: string;
  inheritIndex?: boolean;
}

const collect = (value: string, previous: string[] = []) => [
  ...previous,
  ...value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean),
];

/** `berth vuln-policy <project>`: show or change a project's vulnerability pull policy (docs/supply-chain.md). */
export function registerVulnPolicyCommands(program: Command, loadConfig: LoadConfig): void {
  program
    .command('vuln-policy <project>')
    .description("show a project's vulnerability pull policy, or change it (options not given keep their value)")
    .option('--mode <mode>', 'off: nothing checked; audit: pulls allowed, violations recorded; enforce: refused with 403')
    .option('--severity <level>', 'the lowest severity that refuses a pull: low, medium, high, critical')
    .option('--allow <ids>', 'add vulnerability ids (CVE-…, GHSA-…) to the allowlist; repeat or separate with commas', collect)
    .option('--clear-allowlist', 'empty the allowlist first')
    .option('--unscanned <rule>', 'artifacts without a complete scan: allow, deny, grace')
    .option('--grace <duration>', 'with --unscanned grace: how long after its push, e.g. 24h, 7d')
    .option('--inherit-index', "a child manifest without its own scan is judged by its index's scan (the default)")
    .option('--no-inherit-index', 'each platform manifest needs its own scan')
    .action((project: string, opts: PolicyOptions) =>
      withComposition(loadConfig, async ({ vulnPolicy }, stores) => {
        // Imported here, not at the top: `berth --help` loads no zod or scheduler (test/unit/first-hour.test.ts).
        const { durationMs } = await import('../config/schema.js');
        const { vulnPolicySettingsSchema } = await import('../scanning/policy-service.js');
        if ((await stores.auth.getProject(project)) === null)
          return fail(`project ${project} does not exist (berth project add ${project})`);
        const current = await vulnPolicy.show(project);
        const changing = ['mode', 'severity', 'allow', 'clearAllowlist', 'unscanned', 'grace', 'inheritIndex'].some(
          (k) => opts[k as keyof PolicyOptions] !== undefined,
        );
        if (!changing) return out(JSON.stringify(current, null, 2));
        let graceSeconds = current.graceSeconds;
        if (opts.grace !== undefined) {
          try {
            graceSeconds = Math.floor(durationMs(opts.grace) / 1000);
          } catch {
            return fail(`--grace must be a duration such as 30m, 24h, 7d (got "${opts.grace}")`);
          }
        }
        const parsed = vulnPolicySettingsSchema.safeParse({
          mode: opts.mode ?? current.mode,
          severity: opts.severity ?? current.severity,
          allowlist: [...(opts.clearAllowlist ? [] : current.allowlist), ...(opts.allow ?? [])],
          unscanned: opts.unscanned ?? current.unscanned,
          graceSeconds,
          inheritIndex: opts.inheritIndex ?? current.inheritIndex,
        });
        if (!parsed.success) return fail(parsed.error.issues.map((i) => `${i.path.join('.') || 'policy'}: ${i.message}`).join('; '));
        out(JSON.stringify(await vulnPolicy.setPolicy({ name: `cli:${safeUser()}`, ip: null }, project, parsed.data), null, 2));
      }),
    );
}
