import { z } from 'zod';
import type { UserRecord } from '../../auth/ports.js';
import { sourceOfAccount } from '../../auth/sources.js';
import { RegistryError } from '../../core/errors.js';
import type { ApiRoute } from './route.js';
import { Role, Timestamp } from './schemas.js';

const User = z
  .strictObject({
    username: z.string(),
    admin: z.boolean(),
    createdAt: Timestamp,
    source: z.string().optional().describe('identity source of an external user (ldap, oidc:<provider>); absent for local users'),
  })
  .meta({ id: 'User' });

const Membership = z.lazy(() =>
  z
    .strictObject({
      project: z.string(),
      username: z.string(),
      role: Role,
      source: z.string().optional().describe('set when the role comes from identity bindings of that source, not a membership'),
    })
    .meta({ id: 'Member' }),
);

const Me = z.lazy(() =>
  z
    .strictObject({
      name: z.string(),
      username: z.string().describe('the same as name'),
      kind: z.enum(['anonymous', 'user', 'robot', 'external', 'workload']),
      admin: z.boolean(),
      memberships: z.array(Membership),
      projects: z.array(z.strictObject({ name: z.string(), role: Role })).describe('the memberships as project name and role'),
    })
    .meta({ id: 'Me' }),
);

export { Membership as MemberSchema };

const NewUser = z.lazy(() => z.object({ username: z.string(), password: z.string(), admin: z.boolean().default(false) }).strict());
const PasswordChange = z.lazy(() => z.object({ password: z.string(), currentPassword: z.string().optional() }).strict());
const UserUpdate = z.lazy(() => z.object({ admin: z.boolean() }).strict());

export function userView(user: UserRecord) {
  // `source`: the identity source of an external user (ldap, oidc:<provider>), absent for local users.
  const source = sourceOfAccount(user.passwordHash);
  return { username: user.username, admin: user.admin, createdAt: user.createdAt.toISOString(), ...(source !== null ? { source } : {}) };
}

export const userRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/me',
    summary: 'The caller: name (also as username), kind, admin flag, project memberships, and projects with the role held in each (web UI)',
    response: Me,
    handler: async ({ auth, identity }) => {
      const me = await auth.directory.me(identity);
      return { ...me, username: me.name, projects: me.memberships.map((m) => ({ name: m.project, role: m.role })) };
    },
  },
  {
    method: 'GET',
    path: '/users',
    summary: 'List users',
    response: z.array(User),
    handler: async ({ auth }) => (await auth.directory.listUsers()).map(userView),
  },
  {
    method: 'POST',
    path: '/users',
    summary: 'Create a user',
    body: NewUser,
    response: User,
    status: 201,
    handler: async ({ auth, actor, body }) => {
      const b = body as z.infer<typeof NewUser>;
      return userView(await auth.accounts.addUser(actor, b.username, b.password, b.admin));
    },
  },
  {
    method: 'GET',
    path: '/users/:username',
    summary: 'A user and their project memberships (admin, or the user themself)',
    response: z.strictObject({ ...User.shape, memberships: z.array(Membership) }),
    handler: async ({ auth, identity, params }) => {
      auth.directory.requireSelfOrAdmin(identity, params.username!);
      const user = await auth.directory.user(params.username!);
      return { ...userView(user), memberships: await auth.directory.memberships(user.username) };
    },
  },
  {
    method: 'PATCH',
    path: '/users/:username',
    summary: 'Grant or revoke system administrator',
    body: UserUpdate,
    status: 204,
    handler: async ({ auth, actor, params, body }) =>
      auth.accounts.setAdmin(actor, params.username!, (body as z.infer<typeof UserUpdate>).admin),
  },
  {
    method: 'PUT',
    path: '/users/:username/password',
    summary:
      'Change a password (8 characters to 72 bytes; users changing their own must give currentPassword, throttled like logins); revokes refresh tokens',
    body: PasswordChange,
    status: 204,
    handler: async ({ auth, identity, actor, params, body, credentials }) => {
      const b = body as z.infer<typeof PasswordChange>;
      auth.directory.requireSelfOrAdmin(identity, params.username!);
      await auth.requireCurrentPassword(identity, params.username!, b.currentPassword, credentials.ip);
      await auth.accounts.setPassword(actor, params.username!, b.password);
    },
  },
  {
    method: 'DELETE',
    path: '/users/:username',
    summary: 'Delete a user (with their memberships and refresh tokens)',
    status: 204,
    handler: async ({ auth, actor, params, identity }) => {
      if (identity.kind === 'user' && identity.name === params.username)
        throw new RegistryError('DENIED', 'you cannot delete your own account');
      await auth.accounts.removeUser(actor, params.username!);
    },
  },
];
