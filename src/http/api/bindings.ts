import { z } from 'zod';
import { BINDING_KINDS } from '../../auth/bindings.js';
import { ROLES } from '../../auth/permissions.js';
import type { IdentityBindingRecord } from '../../auth/ports.js';
import { RegistryError } from '../../core/errors.js';
import type { ApiRoute } from './route.js';
import { Timestamp } from './schemas.js';

const NewBinding = z.lazy(() =>
  z
    .object({
      source: z.string().describe('identity source: ldap, spiffe, or oidc:<provider>'),
      kind: z
        .enum(BINDING_KINDS as unknown as [string, ...string[]])
        .describe('group: a group the source reports; id: the identity itself; prefix: identities under this path (SPIFFE IDs)'),
      subject: z.string().describe('the group (LDAP: its DN or cn, case-insensitive), the user name or SPIFFE ID, or the SPIFFE ID prefix'),
      project: z.string(),
      role: z.enum(ROLES as unknown as [string, ...string[]]),
    })
    .strict(),
);

const Binding = z.lazy(() =>
  z
    .strictObject({
      id: z.number(),
      source: z.string(),
      kind: z.enum(BINDING_KINDS as unknown as [string, ...string[]]),
      subject: z.string(),
      project: z.string(),
      role: z.enum(ROLES),
      createdBy: z.string(),
      createdAt: Timestamp,
    })
    .meta({ id: 'IdentityBinding' }),
);

const Filter = z.object({
  source: z.string().optional().describe('only bindings of this source'),
  project: z.string().optional().describe('only bindings into this project'),
});

export function bindingView(binding: IdentityBindingRecord) {
  return { ...binding, createdAt: binding.createdAt.toISOString() };
}

function bindingId(param: string | undefined): number {
  if (param === undefined || !/^[1-9]\d{0,14}$/.test(param)) throw new RegistryError('NOT_FOUND', `binding ${param ?? ''} not found`);
  return Number(param);
}

/** /api/v1/identity/bindings: external subjects → project roles (src/auth/bindings.ts). System admins only (API_OPERATIONS). */
export const bindingRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/identity/bindings',
    summary: 'List identity bindings (external group, identity or SPIFFE ID prefix → project role), oldest first',
    query: Filter,
    response: z.array(Binding),
    handler: async ({ auth, query }) => (await auth.bindings.list({ source: query.source, project: query.project })).map(bindingView),
  },
  {
    method: 'POST',
    path: '/identity/bindings',
    summary: 'Bind an external subject to a project role (effective at each matching identity’s next login)',
    body: NewBinding,
    response: Binding,
    status: 201,
    handler: async ({ auth, actor, body }) => bindingView(await auth.bindings.add(actor, body as z.infer<typeof NewBinding>)),
  },
  {
    method: 'DELETE',
    path: '/identity/bindings/:id',
    summary:
      'Remove a binding; users of its source lose what they held in its project at once (other bindings apply again at their next login)',
    status: 204,
    handler: async ({ auth, actor, params }) => auth.bindings.remove(actor, bindingId(params.id)),
  },
];
