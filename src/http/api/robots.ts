import { z } from 'zod';
import { durationMs } from '../../config/schema.js';
import type { RobotRecord } from '../../auth/ports.js';
import { ROBOT_PERMISSIONS, robotGrant } from '../../auth/permissions.js';
import { projectWith } from './projects.js';
import type { ApiContext, ApiRoute } from './route.js';
import { Timestamp } from './schemas.js';

const Robot = z
  .strictObject({
    name: z.string().describe('robot$<project>+<name> or robot$<name> (system robot)'),
    project: z.string().nullable().describe('null: a system robot'),
    description: z.string().nullable(),
    permissions: z.array(
      z.strictObject({
        project: z.string(),
        repository: z.string().describe("repository pattern in the project ('*': all)"),
        actions: z.array(z.string()),
        gives: z.array(z.string()).describe('what the actions amount to (pull includes list-tags)'),
      }),
    ),
    expiresAt: z.string().nullable().describe('RFC 3339; null: never'),
    createdBy: z.string().nullable(),
    createdAt: Timestamp,
  })
  .meta({ id: 'Robot' });
const NewRobotAnswer = z.lazy(() =>
  z
    .strictObject({ ...Robot.shape, secret: z.string().describe('shown this once; only its hash is stored') })
    .meta({ id: 'RobotWithSecret' }),
);

const Grant = z.lazy(() =>
  z
    .object({
      project: z.string(),
      repository: z.string().default('*'),
      actions: z
        .array(z.enum(ROBOT_PERMISSIONS as unknown as [string, ...string[]]))
        .min(1)
        .describe(
          'pull (includes listing the tags of the matching repositories), push, delete; list-tags is accepted but gives nothing pull does not',
        ),
    })
    .strict(),
);
const NewRobot = z.lazy(() =>
  z
    .object({
      name: z.string(),
      description: z.string().max(1000).optional(),
      /** Lifetime, e.g. "30d"; omit for a robot that never expires. */
      expiresIn: z
        .string()
        .regex(/^\d+(s|m|h|d)$/)
        .optional(),
      permissions: z.array(Grant).min(1),
    })
    .strict(),
);

export function robotView(robot: RobotRecord) {
  return {
    name: robot.name,
    project: robot.project,
    description: robot.description,
    // `gives`: what each grant's actions amount to (pull includes list-tags; ROBOT_GRANTS in src/auth/permissions.ts).
    permissions: robot.permissions.map((grant) => ({
      ...grant,
      gives: [...new Set(grant.actions.flatMap((action) => robotGrant(action)))],
    })),
    expiresAt: robot.expiresAt?.toISOString() ?? null,
    createdBy: robot.createdBy,
    createdAt: robot.createdAt.toISOString(),
  };
}

async function create(ctx: ApiContext, project: string | null) {
  const b = ctx.body as z.infer<typeof NewRobot>;
  const expiresAt = b.expiresIn ? new Date(Date.now() + durationMs(b.expiresIn)) : null;
  const { robot, secret } = await ctx.auth.accounts.createRobot(ctx.actor, {
    name: b.name,
    project,
    permissions: b.permissions,
    description: b.description,
    expiresAt,
  });
  // The secret is returned this once; only its bcrypt hash is stored.
  return { ...robotView(robot), secret };
}

async function remove(ctx: ApiContext, project: string | null) {
  const robot = await ctx.auth.directory.robot(ctx.params.robot!, project);
  await ctx.auth.accounts.deleteRobot(ctx.actor, robot.name);
}

export const robotRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/projects/:project/robots',
    summary: "A project's robot accounts (project-admin)",
    response: z.array(Robot),
    handler: async (ctx) => (await ctx.auth.directory.robots((await projectWith(ctx, 'manage-project')).name)).map(robotView),
  },
  {
    method: 'POST',
    path: '/projects/:project/robots',
    summary: 'Create a project robot robot$<project>+<name>; the secret is shown once (project-admin)',
    body: NewRobot,
    response: NewRobotAnswer,
    status: 201,
    handler: async (ctx) => create(ctx, (await projectWith(ctx, 'manage-project')).name),
  },
  {
    method: 'DELETE',
    path: '/projects/:project/robots/:robot',
    summary: 'Revoke a project robot (project-admin)',
    status: 204,
    handler: async (ctx) => remove(ctx, (await projectWith(ctx, 'manage-project')).name),
  },
  {
    method: 'GET',
    path: '/robots',
    summary: 'System robot accounts (robot$<name>, may span projects)',
    response: z.array(Robot),
    handler: async ({ auth }) => (await auth.directory.robots(null)).map(robotView),
  },
  {
    method: 'POST',
    path: '/robots',
    summary: 'Create a system robot; the secret is shown once',
    body: NewRobot,
    response: NewRobotAnswer,
    status: 201,
    handler: async (ctx) => create(ctx, null),
  },
  {
    method: 'DELETE',
    path: '/robots/:robot',
    summary: 'Revoke a system robot',
    status: 204,
    handler: async (ctx) => remove(ctx, null),
  },
];
