import { z } from 'zod';
import { RegistryError } from '../../core/errors.js';
import { WEBHOOK_FORMATS, type DeliveryStatus } from '../../webhooks/ports.js';
import { WEBHOOK_EVENT_KIND_NAMES, deliveryView, policyView, type WebhookService } from '../../webhooks/index.js';
import { projectWith } from './projects.js';
import type { ApiContext, ApiRoute } from './route.js';

const globs = z.array(z.string().min(1).max(255)).max(100);
const PolicyFields = {
  url: z
    .string()
    .url()
    .refine((u) => /^https?:/.test(u), 'an http or https URL'),
  format: z
    .enum(WEBHOOK_FORMATS)
    .describe('distribution (…events.v1+json), distribution-v2 (…events.v2+json), harbor (Default JSON) or cloudevents (1.0 structured)'),
  events: z.array(z.enum(WEBHOOK_EVENT_KIND_NAMES as [string, ...string[]])).describe('event kinds to send; empty or omitted: all'),
  repositories: globs.describe('picomatch globs over the repository name inside the project (team/app); empty: all'),
  tags: globs.describe('picomatch globs over tags; empty: all, and events without a tag'),
  enabled: z.boolean(),
  authHeader: z.string().min(1).max(4096).nullable().describe('sent as the Authorization header; stored sealed, never returned'),
  secret: z.string().min(1).max(4096).nullable().describe('key of the X-Berth-Signature HMAC-SHA256; stored sealed, never returned'),
};
const NewPolicy = z.lazy(() =>
  z
    .object({
      name: z.string().regex(/^[A-Za-z0-9][\w.-]{0,99}$/),
      ...PolicyFields,
      format: PolicyFields.format.default('harbor'),
      events: PolicyFields.events.default([]),
      repositories: PolicyFields.repositories.default([]),
      tags: PolicyFields.tags.default([]),
      enabled: PolicyFields.enabled.default(true),
      authHeader: PolicyFields.authHeader.default(null),
      secret: PolicyFields.secret.default(null),
    })
    .strict(),
);
const PolicyUpdate = z.lazy(() => z.object(PolicyFields).partial().strict());

const WebhookPolicySchema = z.lazy(() =>
  z
    .strictObject({
      id: z.number(),
      project: z.string(),
      name: z.string(),
      url: z.string(),
      format: z.enum(WEBHOOK_FORMATS),
      events: z.array(z.string()).describe('event kinds sent; empty: all'),
      repositories: z.array(z.string()),
      tags: z.array(z.string()),
      enabled: z.boolean(),
      hasAuthHeader: z.boolean().describe('an Authorization header is set (never shown)'),
      hasSecret: z.boolean().describe('an HMAC secret is set (never shown)'),
      createdAt: z.string(),
      updatedAt: z.string(),
    })
    .meta({ id: 'WebhookPolicy' }),
);
const DeliveryFields = {
  id: z.number(),
  endpoint: z.string().describe('config:<name> for a configured endpoint, policy:<id> for a project policy'),
  project: z.string().nullable(),
  eventId: z.string(),
  event: z.string().describe('the event kind, e.g. artifact.pushed'),
  repository: z.string().nullable(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number(),
  lastStatusCode: z.number().nullable(),
  lastError: z.string().nullable(),
  lastLatencyMs: z.number().nullable(),
  createdAt: z.string(),
  nextAttemptAt: z.string().nullable().describe('when pending: the next attempt'),
  deliveredAt: z.string().nullable(),
  redeliveryOf: z.number().nullable().describe('the delivery this one sends again'),
};
const DeliverySchema = z.lazy(() => z.strictObject(DeliveryFields).meta({ id: 'WebhookDelivery' }));
const DeliveryWithBody = z.lazy(() =>
  z.strictObject({ ...DeliveryFields, contentType: z.string(), body: z.string() }).meta({ id: 'WebhookDeliveryWithBody' }),
);

function service(ctx: ApiContext): WebhookService {
  return ctx.features.webhooks!;
}

function numberParam(ctx: ApiContext, name: string): number {
  const value = ctx.params[name]!;
  if (!/^\d{1,15}$/.test(value)) throw new RegistryError('NOT_FOUND', `${name} ${value} not found`);
  return Number(value);
}

/** ?status=, ?before= (an id, keyset paging) and ?limit= (default 100, at most 500) of a delivery listing. */
function deliveryQuery(ctx: ApiContext) {
  const { status, before, limit } = ctx.query;
  if (status !== undefined && !['pending', 'delivered', 'failed'].includes(status))
    throw new RegistryError('INVALID_ARGUMENT', 'status must be pending, delivered or failed');
  if (before !== undefined && !/^\d{1,15}$/.test(before)) throw new RegistryError('INVALID_ARGUMENT', 'before must be a delivery id');
  if (limit !== undefined && !/^\d{1,4}$/.test(limit)) throw new RegistryError('INVALID_ARGUMENT', 'limit must be a number up to 500');
  return {
    status: status as DeliveryStatus | undefined,
    before: before === undefined ? undefined : Number(before),
    limit: Math.min(Number(limit ?? 100), 500),
  };
}

/** The project (404 unless the caller may manage it) and the policy id of the path. */
async function policyPath(ctx: ApiContext): Promise<{ project: string; id: number }> {
  const project = (await projectWith(ctx, 'manage-project')).name;
  return { project, id: numberParam(ctx, 'id') };
}

export const webhookRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/projects/:project/webhooks',
    summary: "A project's webhook policies (project-admin); secrets and Authorization headers are never shown",
    response: z.array(WebhookPolicySchema),
    handler: async (ctx) => (await service(ctx).policies((await projectWith(ctx, 'manage-project')).name)).map(policyView),
  },
  {
    method: 'POST',
    path: '/projects/:project/webhooks',
    summary: 'Create a webhook policy (project-admin)',
    response: WebhookPolicySchema,
    body: NewPolicy,
    status: 201,
    handler: async (ctx) => {
      const project = (await projectWith(ctx, 'manage-project')).name;
      const { name, ...fields } = ctx.body as z.infer<typeof NewPolicy>;
      return policyView(await service(ctx).create(project, { name, ...fields, format: fields.format }));
    },
  },
  {
    method: 'GET',
    path: '/projects/:project/webhooks/:id',
    summary: 'A webhook policy (project-admin)',
    response: WebhookPolicySchema,
    handler: async (ctx) => {
      const { project, id } = await policyPath(ctx);
      return policyView(await service(ctx).policy(project, id));
    },
  },
  {
    method: 'PATCH',
    path: '/projects/:project/webhooks/:id',
    summary: 'Change a webhook policy; omitted fields keep their value, null clears authHeader or secret (project-admin)',
    response: WebhookPolicySchema,
    body: PolicyUpdate,
    handler: async (ctx) => {
      const { project, id } = await policyPath(ctx);
      return policyView(await service(ctx).update(project, id, ctx.body as z.infer<typeof PolicyUpdate>));
    },
  },
  {
    method: 'DELETE',
    path: '/projects/:project/webhooks/:id',
    summary: 'Delete a webhook policy; its pending deliveries are given up (project-admin)',
    status: 204,
    handler: async (ctx) => {
      const { project, id } = await policyPath(ctx);
      await service(ctx).remove(project, id);
    },
  },
  {
    method: 'GET',
    path: '/projects/:project/webhooks/:id/deliveries',
    summary: "A webhook policy's delivery log, newest first: attempts, status, latency, last error (project-admin)",
    response: z.array(DeliverySchema),
    handler: async (ctx) => {
      const { project, id } = await policyPath(ctx);
      return (await service(ctx).policyDeliveries(project, id, deliveryQuery(ctx))).map((d) => deliveryView(d));
    },
  },
  {
    method: 'POST',
    path: '/projects/:project/webhooks/:id/deliveries/:delivery/redeliver',
    summary: 'Send a delivery again (same body and event id) as a new delivery (project-admin)',
    response: DeliverySchema,
    status: 202,
    handler: async (ctx) => {
      const { project, id } = await policyPath(ctx);
      const delivery = await service(ctx).delivery(numberParam(ctx, 'delivery'), project);
      if (delivery.endpoint !== `policy:${id}`) throw new RegistryError('NOT_FOUND', `webhook delivery ${delivery.id} not found`);
      return deliveryView(await service(ctx).redeliver(delivery.id, project));
    },
  },
  {
    method: 'GET',
    path: '/webhooks/deliveries',
    summary: 'Every delivery log, configured endpoints (config:<name>) and project policies (policy:<id>) alike; ?endpoint= filters',
    response: z.array(DeliverySchema),
    handler: async (ctx) => {
      const endpoint = ctx.query.endpoint;
      return (await service(ctx).deliveries({ ...deliveryQuery(ctx), ...(endpoint ? { endpoint } : {}) })).map((d) => deliveryView(d));
    },
  },
  {
    method: 'GET',
    path: '/webhooks/deliveries/:delivery',
    summary: 'One delivery with its body',
    response: DeliveryWithBody,
    handler: async (ctx) => deliveryView(await service(ctx).delivery(numberParam(ctx, 'delivery')), true),
  },
  {
    method: 'POST',
    path: '/webhooks/deliveries/:delivery/redeliver',
    summary: 'Send any delivery again (same body and event id) as a new delivery',
    response: DeliverySchema,
    status: 202,
    handler: async (ctx) => deliveryView(await service(ctx).redeliver(numberParam(ctx, 'delivery'))),
  },
];
