import { z } from 'zod';
import { vulnPolicySettingsSchema, type VulnPolicyService } from '../../scanning/policy-service.js';
import type { VulnPolicySettings } from '../../scanning/ports.js';
import { projectWith } from './projects.js';
import type { ApiContext, ApiRoute } from './route.js';

const PolicyView = z.lazy(() =>
  z
    .strictObject({
      project: z.string(),
      mode: z.enum(['off', 'audit', 'enforce']),
      severity: z.enum(['low', 'medium', 'high', 'critical']).describe('the lowest severity that counts'),
      allowlist: z.array(z.string()).describe('vulnerabilities that never count'),
      unscanned: z.enum(['allow', 'deny', 'grace']),
      graceSeconds: z.number(),
      inheritIndex: z.boolean(),
      updatedBy: z.string().nullable(),
      updatedAt: z.string().nullable(),
    })
    .meta({ id: 'VulnerabilityPolicy' }),
);

const PolicySettings = vulnPolicySettingsSchema;

function service(ctx: ApiContext): VulnPolicyService {
  return ctx.features.vulnPolicy!;
}

export const vulnPolicyRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/projects/:project/vulnerability-policy',
    summary:
      "A project's vulnerability pull policy: mode, severity threshold, allowlist, unscanned artifacts (allow, deny, grace), index inheritance",
    response: PolicyView,
    handler: async (ctx) => service(ctx).show((await projectWith(ctx, 'read-project')).name),
  },
  {
    method: 'PUT',
    path: '/projects/:project/vulnerability-policy',
    summary:
      'Set the vulnerability pull policy: mode off | audit | enforce, severity low | medium | high | critical, allowlist, unscanned allow | deny | grace with graceSeconds, inheritIndex (project-admin)',
    response: PolicyView,
    body: PolicySettings,
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'manage-project');
      return service(ctx).setPolicy(ctx.actor, project.name, ctx.body as VulnPolicySettings);
    },
  },
];
