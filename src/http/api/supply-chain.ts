import { z } from 'zod';
import type { SupplyChainService } from '../../scanning/supply-chain.js';
import { projectWith } from './projects.js';
import type { ApiContext, ApiRoute } from './route.js';

const SettingsView = z.lazy(() =>
  z
    .strictObject({
      project: z.string(),
      sbomOnPush: z.boolean(),
      scanOnPush: z.boolean(),
      updatedAt: z.number().nullable().describe('epoch ms of the last change; null: never set'),
      updatedBy: z.string().nullable(),
    })
    .meta({ id: 'SupplyChainSettings' }),
);
const Status = z.lazy(() =>
  z
    .strictObject({
      queue: z.strictObject({
        pending: z.number(),
        failed: z.number(),
        oldestPendingAt: z.string().nullable(),
        failures: z.array(
          z.strictObject({ repository: z.string(), digest: z.string(), attempts: z.number(), error: z.string().nullable() }),
        ),
      }),
      rescan: z
        .looseObject({ remaining: z.number(), startedAt: z.string(), updatedAt: z.string(), finishedAt: z.string().nullable() })
        .nullable()
        .describe('the rescan after the last database change'),
      vulndb: z.strictObject({
        lastImport: z.number().nullable(),
        lastImportAt: z.string().nullable(),
        changedImport: z.number().nullable(),
      }),
    })
    .meta({ id: 'SupplyChainStatus' }),
);

const Settings = z.lazy(() =>
  z
    .object({
      sbomOnPush: z.boolean().describe('generate (or find) an SBOM of each pushed image and attach it as an OCI referrer'),
      scanOnPush: z.boolean().describe('scan each pushed image against the offline vulnerability database'),
    })
    .strict(),
);
const Backfill = z
  .object({
    sbom: z.boolean().default(true).describe('give every tagged image without an SBOM one'),
    scan: z.boolean().default(false).describe('scan every tagged image'),
  })
  .strict();

function supplyChain(ctx: ApiContext): SupplyChainService {
  return ctx.features.supplyChain!;
}

export const supplyChainRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/projects/:project/supply-chain',
    summary: "A project's supply-chain settings: SBOM and vulnerability scan on push (both off until set)",
    response: SettingsView,
    handler: async (ctx) => supplyChain(ctx).settings((await projectWith(ctx, 'read-project')).name),
  },
  {
    method: 'PUT',
    path: '/projects/:project/supply-chain',
    summary: 'Set SBOM on push and scan on push for the images pushed into the project from now on (project-admin)',
    response: SettingsView,
    body: Settings,
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'manage-project');
      return supplyChain(ctx).setSettings(ctx.actor.name, project.name, ctx.body as z.infer<typeof Settings>);
    },
  },
  {
    method: 'POST',
    path: '/projects/:project/supply-chain/backfill',
    summary:
      "Queue the project's existing tagged images: an SBOM for those without one (sbom, default true) and a scan (scan); the supply-chain job does the work (project-admin)",
    response: z.strictObject({ project: z.string(), manifests: z.number(), queued: z.number() }),
    body: Backfill,
    status: 202,
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'manage-project');
      const want = Backfill.parse(ctx.body ?? {});
      return { project: project.name, ...(await supplyChain(ctx).backfill(project.name, want)) };
    },
  },
  {
    method: 'GET',
    path: '/supply-chain/status',
    summary:
      'The supply-chain queue (pending, failed with their errors), the rescan after the last database change (scanned / total) and the database imports it follows',
    response: Status,
    handler: async (ctx) => supplyChain(ctx).status(),
  },
];
