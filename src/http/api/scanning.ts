import { z } from 'zod';
import { parseDigest } from '../../core/digest.js';
import { RegistryError } from '../../core/errors.js';
import { validateRepositoryName } from '../../core/names.js';
import { packageListSchema } from '../../scanning/packages.js';
import type { ArtifactScanner } from '../../scanning/scanner.js';
import { projectWith } from './projects.js';
import type { ApiContext, ApiRoute } from './route.js';

const Finding = z.lazy(() =>
  z
    .looseObject({
      id: z.string().describe('the advisory id (DSA-…, GHSA-…, CVE-…)'),
      aliases: z.array(z.string()),
      summary: z.string().nullable(),
      package: z.string(),
      ecosystem: z.string(),
      installed: z.string(),
      fixed: z.string().nullable().describe('the lowest version that fixes it (null: no fix known)'),
      severity: z.string(),
      cvss: z.unknown(),
      severitySource: z.enum(['cvss', 'database', 'none', 'scanner']),
      links: z.array(z.string()),
      cweIds: z.array(z.string()).optional(),
      vendorAttributes: z.record(z.string(), z.unknown()).optional(),
    })
    .meta({ id: 'VulnerabilityFinding' }),
);
const ScanRecord = z.lazy(() =>
  z
    .strictObject({
      digest: z.string(),
      status: z.enum(['complete', 'failed']),
      scannedAt: z.number().describe('epoch ms'),
      source: z.string().describe('where the package list came from: request, or the lister (e.g. sbom)'),
      databaseImport: z.number().nullable().describe('the database import it matched against'),
      packages: z.number(),
      summary: z.record(z.string(), z.number()).describe('counts by severity and total'),
      findings: z.array(Finding).describe('most severe first'),
      error: z.string().nullable(),
    })
    .meta({ id: 'VulnerabilityReport' }),
);

const ScanRequest = z.lazy(() =>
  z
    .object({
      packages: packageListSchema
        .optional()
        .describe(
          'the installed packages ({ecosystem, name, version}; Debian source packages as "Debian:12", Alpine origins as "Alpine:v3.19", npm, Go, PyPI, crates.io); without it the SBOM extractor lists them',
        ),
    })
    .strict(),
);

function scanner(ctx: ApiContext): ArtifactScanner {
  return ctx.features.scanning!;
}

/**
 * `project/repository` and the digest from the path (repository URL-encoded when it has
 * slashes), when the caller holds `action` on the repository; NOT_FOUND otherwise, so no
 * names leak.
 */
async function artifact(ctx: ApiContext, action: 'pull' | 'push'): Promise<{ repository: string; digest: string }> {
  const project = (await projectWith(ctx, 'read-project')).name;
  const repository = validateRepositoryName(`${project}/${ctx.params.repository!}`);
  const held = await ctx.auth.rules.permissions(ctx.identity, repository);
  if (!held.has('pull')) throw new RegistryError('NOT_FOUND', `repository ${repository} not found`);
  if (!held.has(action)) throw new RegistryError('DENIED', `scanning ${repository} needs ${action} access`);
  return { repository, digest: parseDigest(ctx.params.digest!).value };
}

export const scanningRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/projects/:project/repositories/:repository/artifacts/:digest/vulnerabilities',
    summary:
      "An artifact's last vulnerability scan: status, the findings (advisory, aliases, package, installed and fixed version, severity, CVSS, links) most severe first, counts by severity; repository without the project, URL-encoded",
    response: ScanRecord,
    handler: async (ctx) => {
      const { repository, digest } = await artifact(ctx, 'pull');
      return scanner(ctx).report(repository, digest);
    },
  },
  {
    method: 'POST',
    path: '/projects/:project/repositories/:repository/artifacts/:digest/scan',
    summary:
      'Scan an artifact now (push access): against the offline vulnerability database with the package list given or its SBOM, or with the configured Harbor scanner adapter; the result replaces the last one and a scan.completed or scan.failed event follows',
    response: ScanRecord,
    body: ScanRequest,
    handler: async (ctx) => {
      const { repository, digest } = await artifact(ctx, 'push');
      return scanner(ctx).scan(repository, digest, (ctx.body as z.infer<typeof ScanRequest> | undefined)?.packages, {
        actor: ctx.actor.name,
        requester: ctx.identity,
      });
    },
  },
];
