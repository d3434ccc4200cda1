import { z } from 'zod';
import { REGISTRY_KINDS, endpointView, type RegistryService } from '../../registries/index.js';
import type { ApiContext, ApiRoute } from './route.js';

const EndpointFields = {
  url: z.string().min(1).max(2048).describe('base URL of the registry, http(s)://host[:port]; no credentials in it'),
  kind: z.enum(REGISTRY_KINDS).describe('distribution, berth, harbor, docker-hub (single-segment names map to library/<name>) or other'),
  description: z.string().max(1024),
  username: z.string().min(1).max(255).nullable().describe('user for Basic auth or the token flow; null: anonymous'),
  credential: z.string().min(1).max(8192).nullable().describe('password or token; stored sealed, never returned (hasCredential tells whether one is set)'),
  insecure: z.boolean().describe('skip TLS certificate verification'),
  caBundle: z.string().min(1).max(262_144).nullable().describe('PEM CA certificates trusted for this endpoint, beside the system roots'),
};
const NewEndpoint = z
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
  .strict();
const EndpointUpdate = z.object(EndpointFields).partial().strict();

function service(ctx: ApiContext): RegistryService {
  return ctx.features.registries!;
}

/** Registry endpoints (src/registries): system administrators only, credentials never returned. */
export const registryRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/registries',
    summary: 'Remote registry endpoints (replication, pull-through cache); credentials are never shown, only hasCredential',
    handler: async (ctx) => (await service(ctx).list()).map(endpointView),
  },
  {
    method: 'POST',
    path: '/registries',
    summary: 'Add a registry endpoint; the credential is stored sealed with the secrets key',
    body: NewEndpoint,
    status: 201,
    handler: async (ctx) => endpointView(await service(ctx).create(ctx.body as z.infer<typeof NewEndpoint>)),
  },
  {
    method: 'GET',
    path: '/registries/:name',
    summary: 'A registry endpoint',
    handler: async (ctx) => endpointView(await service(ctx).get(ctx.params.name!)),
  },
  {
    method: 'PATCH',
    path: '/registries/:name',
    summary: 'Change a registry endpoint; omitted fields keep their value, null clears username, credential or caBundle',
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
    summary: 'Test connection: GET /v2/ on the endpoint, authenticating as it asks (Basic or Bearer token); answers ok, status, auth scheme, latency and the reason of a failure',
    handler: async (ctx) => service(ctx).ping(ctx.params.name!),
  },
];
