import { z } from 'zod';
import { REGISTRY_KINDS, endpointView, type RegistryService } from '../../registries/index.js';
import type { ProxyCacheService } from '../../registries/proxy-service.js';
import type { ApiContext, ApiRoute } from './route.js';

const Endpoint = z.lazy(() =>
  z
    .strictObject({
      id: z.number(),
      name: z.string(),
      url: z.string(),
      kind: z.enum(REGISTRY_KINDS),
      description: z.string(),
      username: z.string().nullable(),
      hasCredential: z.boolean().describe('a credential is stored (never shown)'),
      insecure: z.boolean(),
      hasCaBundle: z.boolean(),
      createdAt: z.string(),
      updatedAt: z.string(),
    })
    .meta({ id: 'RegistryEndpoint' }),
);
const Ping = z.lazy(() =>
  z
    .strictObject({
      ok: z.boolean(),
      status: z.number().describe('the final HTTP status of GET /v2/ (0: unreachable)'),
      auth: z.enum(['none', 'basic', 'bearer', 'unknown']),
      apiVersion: z.string().nullable().describe('the Docker-Distribution-API-Version header, when sent'),
      latencyMs: z.number(),
      reason: z.string().nullable().describe('why it failed (null when ok)'),
    })
    .meta({ id: 'RegistryPing' }),
);
const ProxyCacheProject = z.lazy(() =>
  z
    .strictObject({
      project: z.string(),
      endpoint: z.string().nullable().describe('the registry endpoint it caches'),
      namespace: z.string().nullable(),
      tagTtlSeconds: z.number(),
      keepDeletedTags: z.boolean().nullable().describe('null: the server default (proxy.keepdeletedtags)'),
      createdAt: z.string(),
      updatedAt: z.string(),
    })
    .meta({ id: 'ProxyCacheProject' }),
);

const EndpointFields = {
  url: z.string().min(1).max(2048).describe('base URL of the registry, http(s)://host[:port]; no credentials in it'),
  kind: z.enum(REGISTRY_KINDS).describe('distribution, berth, harbor, docker-hub (single-segment names map to library/<name>) or other'),
  description: z.string().max(1024),
  username: z.string().min(1).max(255).nullable().describe('user for Basic auth or the token flow; null: anonymous'),
  credential: z
    .string()
    .min(1)
    .max(8192)
    .nullable()
    .describe('password or token; stored sealed, never returned (hasCredential tells whether one is set)'),
  insecure: z.boolean().describe('skip TLS certificate verification'),
  caBundle: z.string().min(1).max(262_144).nullable().describe('PEM CA certificates trusted for this endpoint, beside the system roots'),
};
const NewEndpoint = z.lazy(() =>
  z
    .object({
      name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
      ...EndpointFields,
      kind: EndpointFields.kind.default('other'),
      description: EndpointFields.description.default(''),
      username: EndpointFields.username.default(null),
      credential: EndpointFields.credential.default(null),
      insecure: EndpointFields.insecure.default(false),
      caBundle: EndpointFields.caBundle.default(null),
    })
    .strict(),
);
const EndpointUpdate = z.lazy(() => z.object(EndpointFields).partial().strict());

function service(ctx: ApiContext): RegistryService {
  return ctx.features.registries!;
}

/** Registry endpoints (src/registries): system administrators only, credentials never returned. */
export const registryRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/registries',
    summary: 'Remote registry endpoints (replication, pull-through cache); credentials are never shown, only hasCredential',
    response: z.array(Endpoint),
    handler: async (ctx) => (await service(ctx).list()).map(endpointView),
  },
  {
    method: 'POST',
    path: '/registries',
    summary: 'Add a registry endpoint; the credential is stored sealed with the secrets key',
    response: Endpoint,
    body: NewEndpoint,
    status: 201,
    handler: async (ctx) => endpointView(await service(ctx).create(ctx.body as z.infer<typeof NewEndpoint>)),
  },
  {
    method: 'GET',
    path: '/registries/:name',
    summary: 'A registry endpoint',
    response: Endpoint,
    handler: async (ctx) => endpointView(await service(ctx).get(ctx.params.name!)),
  },
  {
    method: 'PATCH',
    path: '/registries/:name',
    summary: 'Change a registry endpoint; omitted fields keep their value, null clears username, credential or caBundle',
    response: Endpoint,
    body: EndpointUpdate,
    handler: async (ctx) => endpointView(await service(ctx).update(ctx.params.name!, ctx.body as z.infer<typeof EndpointUpdate>)),
  },
  {
    method: 'DELETE',
    path: '/registries/:name',
    summary: 'Delete a registry endpoint (refused with 409 while a cache project or replication policy uses it)',
    status: 204,
    handler: async (ctx) => {
      await service(ctx).remove(ctx.params.name!);
    },
  },
  {
    method: 'POST',
    path: '/registries/:name/ping',
    summary:
      'Test connection: GET /v2/ on the endpoint, authenticating as it asks (Basic or Bearer token); answers ok, status, auth scheme, latency and the reason of a failure',
    response: Ping,
    handler: async (ctx) => service(ctx).ping(ctx.params.name!),
  },
];

const ProxyBinding = z.lazy(() =>
  z
    .object({
      endpoint: z.string().min(1).max(64).describe('name of the registry endpoint to pull through from'),
      namespace: z
        .string()
        .regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/)
        .nullable()
        .default(null)
        .describe('prefix of repository names upstream (hub/app pulls <namespace>/app); null: none'),
      tagTtlSeconds: z
        .number()
        .int()
        .min(0)
        .max(365 * 86_400)
        .optional()
        .describe('a cached tag is revalidated upstream (one HEAD) only after this many seconds (default proxy.tagttl)'),
      keepDeletedTags: z
        .boolean()
        .nullable()
        .default(null)
        .describe(
          'a tag deleted upstream stays pullable from the cache (true) or is deleted from it on revalidation (false); null: proxy.keepdeletedtags',
        ),
    })
    .strict(),
);

function proxyService(ctx: ApiContext): ProxyCacheService {
  return ctx.features.proxyCache!;
}

/** Pull-through cache projects (src/registries): system administrators only. */
export const proxyCacheRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/proxy-cache',
    summary: 'The pull-through cache projects and their upstream endpoints',
    response: z.array(ProxyCacheProject),
    handler: async (ctx) => Promise.all((await proxyService(ctx).list()).map((b) => proxyService(ctx).view(b))),
  },
  {
    method: 'GET',
    path: '/projects/:project/proxy-cache',
    summary: "A cache project's upstream binding (404 when the project is not a cache)",
    response: ProxyCacheProject,
    handler: async (ctx) => proxyService(ctx).view(await proxyService(ctx).get(ctx.params.project!)),
  },
  {
    method: 'PUT',
    path: '/projects/:project/proxy-cache',
    summary: 'Make a project a pull-through cache of a registry endpoint (or change its binding); pushes to it are refused from then on',
    response: ProxyCacheProject,
    body: ProxyBinding,
    handler: async (ctx) => {
      const body = ctx.body as z.infer<typeof ProxyBinding>;
      const ttl = body.tagTtlSeconds === undefined ? (ctx.features.proxyCacheDefaultTtlMs ?? 300_000) : body.tagTtlSeconds * 1000;
      return proxyService(ctx).view(
        await proxyService(ctx).set(ctx.params.project!, {
          endpoint: body.endpoint,
          namespace: body.namespace,
          tagTtlMs: ttl,
          keepDeletedTags: body.keepDeletedTags,
        }),
      );
    },
  },
  {
    method: 'DELETE',
    path: '/projects/:project/proxy-cache',
    summary: 'Unbind a cache project from its upstream (cached blobs stay; its repositories then read and write as a normal project)',
    status: 204,
    handler: async (ctx) => {
      await proxyService(ctx).remove(ctx.params.project!);
    },
  },
];
