import { z } from 'zod';
import type { AuditQuery } from '../../auth/ports.js';
import { RegistryError } from '../../core/errors.js';
import { AUDIT_OUTCOMES } from '../../core/events.js';
import { projectWith } from './projects.js';
import type { ApiContext, ApiRoute } from './route.js';
import { Timestamp } from './schemas.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** The query string of the audit endpoints (as sent: strings), documented in openapi.json. */
const ProjectAuditFilters = z
  .object({
    limit: z.string().optional().describe(`entries per page, 1..${MAX_LIMIT} (default ${DEFAULT_LIMIT})`),
    before: z.string().optional().describe('only entries with a smaller id: the last id of the previous page'),
    actor: z.string().min(1).optional().describe('who acted (user, robot$…, or the name a failed login tried)'),
    action: z.string().min(1).optional().describe('e.g. login, login.failed, access.denied, project.create, tag.delete'),
    resource: z
      .string()
      .min(1)
      .optional()
      .describe('the target, or anything under it: team/app matches team/app:1.0 and team/app@sha256:…'),
    from: z.iso.datetime({ offset: true }).optional().describe('at or after this time (RFC 3339)'),
    to: z.iso.datetime({ offset: true }).optional().describe('before this time (RFC 3339)'),
    outcome: z
      .enum(AUDIT_OUTCOMES)
      .optional()
      .describe('success, failure (failed or rate-limited login) or denied (authorization refused)'),
  })
  .strict();
const AuditEntry = z.lazy(() =>
  z
    .strictObject({
      id: z.number(),
      at: Timestamp,
      actor: z.string(),
      action: z.string(),
      target: z.string(),
      ip: z.string().nullable(),
      detail: z.unknown().optional().describe('action-specific JSON'),
      project: z.string().nullable().describe('the project the entry belongs to; null: system-wide'),
      outcome: z.enum(AUDIT_OUTCOMES),
    })
    .meta({ id: 'AuditEntry' }),
);
const AuditFilters = ProjectAuditFilters.extend({
  project: z.string().min(1).optional().describe('the project an entry belongs to'),
}).strict();

export const auditRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/audit',
    summary: 'Audit log, newest first, filtered (?actor, ?action, ?project, ?resource, ?from, ?to, ?outcome; ?limit, ?before=<id> to page)',
    query: AuditFilters,
    response: z.array(AuditEntry),
    handler: async (ctx) => auditPage(ctx, auditQuery(AuditFilters, ctx.query)),
  },
  {
    method: 'GET',
    path: '/projects/:project/audit',
    summary: "A project's audit entries, newest first, with the same filters (project-admin)",
    query: ProjectAuditFilters,
    response: z.array(AuditEntry),
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'manage-project');
      return auditPage(ctx, { ...auditQuery(ProjectAuditFilters, ctx.query), project: project.name });
    },
  },
];

/** Validates the query string into an AuditQuery; a bad value answers 400 naming the parameter. */
function auditQuery(schema: typeof AuditFilters | typeof ProjectAuditFilters, raw: Record<string, string | undefined>): AuditQuery {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new RegistryError(
      'INVALID_ARGUMENT',
      `invalid audit filter: ${issues.map((i) => `${i.path || '(query)'}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  const { limit, before, from, to, ...filters } = parsed.data as z.infer<typeof AuditFilters>;
  const query: AuditQuery = { ...filters, limit: limit === undefined ? DEFAULT_LIMIT : Number(limit) };
  if (before !== undefined) query.beforeId = Number(before);
  if (
    !Number.isInteger(query.limit) ||
    query.limit < 1 ||
    query.limit > MAX_LIMIT ||
    (query.beforeId !== undefined && !Number.isInteger(query.beforeId))
  ) {
    throw new RegistryError('PAGINATION_NUMBER_INVALID', `limit must be 1..${MAX_LIMIT} and before an entry id`);
  }
  if (from !== undefined) query.from = Date.parse(from);
  if (to !== undefined) query.to = Date.parse(to);
  return query;
}

/** One page; when it is full, a Link header (rel="next") names the next one with the same filters. */
async function auditPage(ctx: ApiContext, query: AuditQuery) {
  const entries = await ctx.auth.directory.audit(query);
  if (entries.length === query.limit) {
    const next = new URLSearchParams(
      Object.entries(ctx.query).filter((e): e is [string, string] => e[1] !== undefined && e[0] !== 'before'),
    );
    next.set('before', String(entries.at(-1)!.id));
    ctx.reply.header('link', `<${ctx.request.url.split('?')[0]}?${next.toString()}>; rel="next"`);
  }
  return entries.map((e) => ({ ...e, at: e.at.toISOString() }));
}
