import { z } from 'zod';
import { isSystemAdmin } from '../../auth/identity.js';
import { ROLES, type Permission } from '../../auth/permissions.js';
import type { ProjectRecord } from '../../auth/ports.js';
import { RegistryError } from '../../core/errors.js';
import type { ApiContext, ApiRoute } from './route.js';
import { Quota, Timestamp } from './schemas.js';
import { MemberSchema } from './users.js';

const Project = z
  .strictObject({ name: z.string(), public: z.boolean(), createdBy: z.string().nullable(), createdAt: Timestamp })
  .meta({ id: 'Project' });

const NewProject = z.lazy(() => z.object({ name: z.string(), public: z.boolean().default(false) }).strict());
const ProjectUpdate = z.lazy(() => z.object({ public: z.boolean() }).strict());
const Membership = z.lazy(() => z.object({ role: z.enum(ROLES) }).strict());

function projectView(project: ProjectRecord) {
  return { name: project.name, public: project.public, createdBy: project.createdBy, createdAt: project.createdAt.toISOString() };
}

/** :project, if the caller holds `permission` in it (NOT_FOUND when they may not even read it, so private names do not leak). */
export function projectWith(ctx: ApiContext, permission: Permission): Promise<ProjectRecord> {
  return ctx.auth.directory.project(ctx.identity, ctx.params.project!, permission);
}

export const projectRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/projects',
    summary: 'Projects the caller may see (all, for an admin)',
    response: z.array(Project),
    handler: async ({ auth, identity }) => (await auth.directory.projects(identity)).map(projectView),
  },
  {
    method: 'POST',
    path: '/projects',
    summary: 'Create a project; the creator becomes its project-admin',
    body: NewProject,
    response: Project,
    status: 201,
    handler: async ({ auth, actor, identity, body }) => {
      if (!auth.directory.mayCreateProjects(identity))
        throw new RegistryError('DENIED', 'only administrators may create projects (auth.projects.creation: adminonly)');
      const b = body as z.infer<typeof NewProject>;
      const admin = isSystemAdmin(identity);
      const owner = identity.kind === 'user' && !admin ? identity.name : undefined;
      // Only an admin may create a project over repositories that exist without one.
      return projectView(await auth.accounts.createProject(actor, b.name, b.public, owner, { overExisting: admin }));
    },
  },
  {
    method: 'GET',
    path: '/projects/:project',
    summary: 'A project, with its storage quota (used, limit, percent: one row)',
    response: z
      .strictObject({ ...Project.shape, quota: Quota.optional().describe('absent when quotas are off') })
      .meta({ id: 'ProjectDetail' }),
    handler: async (ctx) => {
      const project = projectView(await projectWith(ctx, 'read-project'));
      return ctx.features.quotas ? { ...project, quota: await ctx.features.quotas.show(project.name) } : project;
    },
  },
  {
    method: 'PATCH',
    path: '/projects/:project',
    summary: 'Make a project public or private (project-admin)',
    body: ProjectUpdate,
    status: 204,
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'manage-project');
      await ctx.auth.accounts.setVisibility(ctx.actor, project.name, (ctx.body as z.infer<typeof ProjectUpdate>).public);
    },
  },
  {
    method: 'DELETE',
    path: '/projects/:project',
    summary: 'Delete a project with its members and robots; its repositories become admin-only (project-admin)',
    status: 204,
    handler: async (ctx) => ctx.auth.accounts.deleteProject(ctx.actor, (await projectWith(ctx, 'manage-project')).name),
  },
  {
    method: 'GET',
    path: '/projects/:project/members',
    summary: "A project's members and their roles",
    response: z.array(MemberSchema),
    handler: async (ctx) => ctx.auth.directory.members((await projectWith(ctx, 'read-project')).name),
  },
  {
    method: 'PUT',
    path: '/projects/:project/members/:username',
    summary: 'Add a member or change their role (project-admin)',
    body: Membership,
    status: 204,
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'manage-project');
      await ctx.auth.accounts.setMember(ctx.actor, project.name, ctx.params.username!, (ctx.body as z.infer<typeof Membership>).role);
    },
  },
  {
    method: 'DELETE',
    path: '/projects/:project/members/:username',
    summary: 'Remove a member (project-admin)',
    status: 204,
    handler: async (ctx) =>
      ctx.auth.accounts.removeMember(ctx.actor, (await projectWith(ctx, 'manage-project')).name, ctx.params.username!),
  },
];
