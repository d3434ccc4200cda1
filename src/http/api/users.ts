import { z } from 'zod';
import { isSystemAdmin } from '../../auth/identity.js';
import type { UserRecord } from '../../auth/ports.js';
import { verifySecret } from '../../auth/secrets.js';
import { RegistryError } from '../../core/errors.js';
import type { ApiContext, ApiRoute } from './route.js';

const NewUser = z.object({ username: z.string(), password: z.string(), admin: z.boolean().default(false) }).strict();
const PasswordChange = z.object({ password: z.string(), currentPassword: z.string().optional() }).strict();
const UserUpdate = z.object({ admin: z.boolean() }).strict();

export function userView(user: UserRecord) {
  return { username: user.username, admin: user.admin, createdAt: user.createdAt.toISOString() };
}

async function findUser(ctx: ApiContext): Promise<UserRecord> {
  const user = await ctx.auth.store.getUser(ctx.params.username!);
  if (!user) throw new RegistryError('NOT_FOUND', `user ${ctx.params.username} not found`);
  return user;
}

/** Admins manage everyone; a user may read and change only their own account. */
function requireSelfOrAdmin(ctx: ApiContext): void {
  const self = ctx.identity.kind === 'user' && ctx.identity.name === ctx.params.username;
  if (!self && !isSystemAdmin(ctx.identity)) throw new RegistryError('DENIED', 'only an administrator may manage other users');
}

export const userRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/me',
    access: 'user',
    summary: 'The caller: name, kind, admin flag and project memberships',
    handler: async ({ auth, identity }) => ({
      name: identity.kind === 'anonymous' ? '' : identity.name,
      kind: identity.kind,
      admin: isSystemAdmin(identity),
      memberships: identity.kind === 'user' ? await auth.store.listMemberships(identity.name) : [],
    }),
  },
  {
    method: 'GET',
    path: '/users',
    access: 'admin',
    summary: 'List users',
    handler: async ({ auth }) => (await auth.store.listUsers()).map(userView),
  },
  {
    method: 'POST',
    path: '/users',
    access: 'admin',
    summary: 'Create a user',
    body: NewUser,
    status: 201,
    handler: async ({ auth, actor, body }) => {
      const b = body as z.infer<typeof NewUser>;
      return userView(await auth.accounts.addUser(actor, b.username, b.password, b.admin));
    },
  },
  {
    method: 'GET',
    path: '/users/:username',
    access: 'user',
    summary: 'A user and their project memberships (admin, or the user themself)',
    handler: async (ctx) => {
      requireSelfOrAdmin(ctx);
      const user = await findUser(ctx);
      return { ...userView(user), memberships: await ctx.auth.store.listMemberships(user.username) };
    },
  },
  {
    method: 'PATCH',
    path: '/users/:username',
    access: 'admin',
    summary: 'Grant or revoke system administrator',
    body: UserUpdate,
    status: 204,
    handler: async ({ auth, actor, params, body }) => auth.accounts.setAdmin(actor, params.username!, (body as z.infer<typeof UserUpdate>).admin),
  },
  {
    method: 'PUT',
    path: '/users/:username/password',
    access: 'user',
    summary: 'Change a password (users changing their own must give currentPassword); revokes refresh tokens',
    body: PasswordChange,
    status: 204,
    handler: async (ctx) => {
      requireSelfOrAdmin(ctx);
      const b = ctx.body as z.infer<typeof PasswordChange>;
      if (!isSystemAdmin(ctx.identity)) {
        const user = await findUser(ctx);
        if (b.currentPassword === undefined || !(await verifySecret(b.currentPassword, user.passwordHash))) {
          throw new RegistryError('DENIED', 'currentPassword is missing or wrong');
        }
      }
      await ctx.auth.accounts.setPassword(ctx.actor, ctx.params.username!, b.password);
    },
  },
  {
    method: 'DELETE',
    path: '/users/:username',
    access: 'admin',
    summary: 'Delete a user (with their memberships and refresh tokens)',
    status: 204,
    handler: async ({ auth, actor, params, identity }) => {
      if (identity.kind === 'user' && identity.name === params.username) throw new RegistryError('DENIED', 'you cannot delete your own account');
      await auth.accounts.removeUser(actor, params.username!);
    },
  },
];
