import type { Command } from 'commander';
import type { ProjectRecord, RobotRecord } from '../auth/ports.js';
import { out, withAuth, type LoadConfig } from './users.js';

interface JsonFlag {
  json?: boolean;
}

/** A project as GET /api/v1/projects shows it. */
function projectJson(project: ProjectRecord) {
  return { name: project.name, public: project.public, createdBy: project.createdBy, createdAt: project.createdAt.toISOString() };
}

/** Aligned columns for people; scripts use --json. */
function table(header: string[], rows: string[][]): void {
  if (rows.length === 0) return;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) out(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}

/** `robot$team+ci`, `team+ci` (robot$ added) or, for a system robot, `robot$name` / `name`. */
function robotLogin(name: string): string {
  return name.startsWith('robot$') ? name : `robot$${name}`;
}

function robotRow(robot: RobotRecord): string[] {
  const grants = robot.permissions.map((p) => `${p.project}/${p.repository}:${p.actions.join(',')}`).join(' ');
  return [robot.name, robot.expiresAt?.toISOString() ?? 'never', grants];
}

/**
 * `berth project …`, `berth member …`, `berth robot …`: what operators script, on the same
 * application services as /api/v1/projects and /api/v1/robots (auth.accounts for changes,
 * auth.directory for reads), against the server's own metadata DB. The CLI acts as a system
 * administrator. Human-readable output by default; `--json` prints what the API returns.
 */
export function registerProjectCommands(program: Command, loadConfig: LoadConfig): void {
  const project = program.command('project').description('manage projects (list, show, add, rm) and their members');
  project
    .command('list')
    .description('list all projects')
    .option('--json', 'print the projects as JSON (as GET /api/v1/projects does for an admin)')
    .action((opts: JsonFlag) =>
      withAuth(loadConfig, async (auth, _actor, identity) => {
        const projects = await auth.directory.projects(identity);
        if (opts.json) return out(JSON.stringify(projects.map(projectJson), null, 2));
        if (projects.length === 0) return out('no projects');
        table(
          ['NAME', 'VISIBILITY', 'CREATED', 'BY'],
          projects.map((p) => [p.name, p.public ? 'public' : 'private', p.createdAt.toISOString(), p.createdBy ?? '-']),
        );
      }),
    );
  project
    .command('show <name>')
    .description('a project with its members and robot accounts')
    .option('--json', 'print {project, members, robots} as JSON')
    .action((name: string, opts: JsonFlag) =>
      withAuth(loadConfig, async (auth, _actor, identity) => {
        const found = await auth.directory.project(identity, name, 'read-project');
        const members = await auth.directory.members(found.name);
        const robots = await auth.directory.robots(found.name);
        if (opts.json) {
          const { robotView } = await import('../http/api/robots.js');
          return out(JSON.stringify({ project: projectJson(found), members, robots: robots.map(robotView) }, null, 2));
        }
        out(
          `project ${found.name}: ${found.public ? 'public' : 'private'}, created ${found.createdAt.toISOString()}${found.createdBy ? ` by ${found.createdBy}` : ''}`,
        );
        out(`members: ${members.length === 0 ? 'none' : ''}`);
        table(
          ['  USER', 'ROLE'],
          members.map((m) => [`  ${m.username}`, m.role]),
        );
        out(`robots: ${robots.length === 0 ? 'none' : ''}`);
        table(
          ['  ROBOT', 'EXPIRES', 'PERMISSIONS'],
          robots.map((r) => robotRow(r).map((cell, i) => (i === 0 ? `  ${cell}` : cell))),
        );
      }),
    );
  project
    .command('add <name>')
    .description('create a project')
    .option('--public', 'anyone (even anonymous) may pull')
    .option('--owner <username>', 'make this user its project-admin')
    .option('--json', 'print the created project as JSON')
    .action((name: string, opts: { public?: boolean; owner?: string } & JsonFlag) =>
      withAuth(loadConfig, async (auth, actor) => {
        const created = await auth.accounts.createProject(actor, name, opts.public ?? false, opts.owner);
        out(
          opts.json
            ? JSON.stringify(projectJson(created), null, 2)
            : `created ${created.public ? 'public' : 'private'} project ${created.name}`,
        );
      }),
    );
  project
    .command('rm <name>')
    .description('delete a project with its members and robots (refused while it still has repositories)')
    .action((name: string) =>
      withAuth(loadConfig, async (auth, actor) => {
        await auth.accounts.deleteProject(actor, name);
        out(`deleted project ${name}`);
      }),
    );
  project
    .command('visibility <name> <public|private>')
    .description('make a project public (anyone may pull) or private')
    .action((name: string, visibility: string) =>
      withAuth(loadConfig, async (auth, actor) => {
        if (visibility !== 'public' && visibility !== 'private') {
          process.stderr.write(`berth: visibility must be public or private, got "${visibility}"\n`);
          process.exitCode = 2;
          return;
        }
        await auth.accounts.setVisibility(actor, name, visibility === 'public');
        out(`project ${name} is ${visibility}`);
      }),
    );
  // Kept from before `berth member`: the same as `berth member add` (role "none" removes).
  project
    .command('member <project> <username> <role>')
    .description('add a member or change their role: project-admin, maintainer, developer, guest, limited-guest (or "none" to remove)')
    .action((name: string, username: string, role: string) =>
      withAuth(loadConfig, async (auth, actor) => {
        if (role === 'none') await auth.accounts.removeMember(actor, name, username);
        else await auth.accounts.setMember(actor, name, username, role);
        out(`${username} in ${name}: ${role}`);
      }),
    );

  const member = program.command('member').description("manage a project's members and their roles");
  member
    .command('list <project>')
    .description("a project's members and their roles")
    .option('--json', 'print the members as JSON (as GET /api/v1/projects/<project>/members does)')
    .action((name: string, opts: JsonFlag) =>
      withAuth(loadConfig, async (auth, _actor, identity) => {
        const found = await auth.directory.project(identity, name, 'read-project');
        const members = await auth.directory.members(found.name);
        if (opts.json) return out(JSON.stringify(members, null, 2));
        if (members.length === 0) return out(`project ${found.name} has no members`);
        table(
          ['USER', 'ROLE'],
          members.map((m) => [m.username, m.role]),
        );
      }),
    );
  member
    .command('add <project> <username> <role>')
    .description('add a member or change their role: project-admin, maintainer, developer, guest, limited-guest')
    .action((name: string, username: string, role: string) =>
      withAuth(loadConfig, async (auth, actor) => {
        await auth.accounts.setMember(actor, name, username, role);
        out(`${username} in ${name}: ${role}`);
      }),
    );
  member
    .command('rm <project> <username>')
    .description('remove a member from a project')
    .action((name: string, username: string) =>
      withAuth(loadConfig, async (auth, actor) => {
        await auth.accounts.removeMember(actor, name, username);
        out(`removed ${username} from ${name}`);
      }),
    );

  const robot = program.command('robot').description('robot accounts (logins for CI: robot$<project>+<name>)');
  robot
    .command('list [project]')
    .description("a project's robot accounts; without a project, every robot (system robots and all projects')")
    .option('--json', 'print the robots as JSON (as GET /api/v1/projects/<project>/robots does; never the secret)')
    .action((name: string | undefined, opts: JsonFlag) =>
      withAuth(loadConfig, async (auth, _actor, identity) => {
        let robots: RobotRecord[];
        if (name !== undefined) robots = await auth.directory.robots((await auth.directory.project(identity, name, 'manage-project')).name);
        else {
          robots = await auth.directory.robots(null);
          for (const p of await auth.directory.projects(identity)) robots.push(...(await auth.directory.robots(p.name)));
        }
        if (opts.json) {
          const { robotView } = await import('../http/api/robots.js');
          return out(JSON.stringify(robots.map(robotView), null, 2));
        }
        if (robots.length === 0) return out(name === undefined ? 'no robot accounts' : `project ${name} has no robot accounts`);
        table(['ROBOT', 'EXPIRES', 'PERMISSIONS'], robots.map(robotRow));
      }),
    );
  robot
    .command('add <project> <name>')
    .description('create robot$<project>+<name> with the given actions on the project; prints the secret once')
    .option('--actions <list>', 'comma-separated: pull,push,delete,list-tags', 'pull')
    .option('--repository <pattern>', 'repositories it may touch (glob, * = all in the project)', '*')
    .option('--expires-in <duration>', 'e.g. 90d (default: never)')
    .option('--description <text>', 'what the robot is for')
    .option('--json', 'print the robot and its secret as JSON (as POST /api/v1/projects/<project>/robots does)')
    .action(
      (
        projectName: string,
        name: string,
        opts: { actions: string; repository: string; expiresIn?: string; description?: string } & JsonFlag,
      ) =>
        withAuth(loadConfig, async (auth, actor) => {
          const { durationMs } = await import('../config/schema.js');
          const expiresAt = opts.expiresIn ? new Date(Date.now() + durationMs(opts.expiresIn)) : null;
          const permissions = [{ project: projectName, repository: opts.repository, actions: opts.actions.split(',') }];
          const { robot: created, secret } = await auth.accounts.createRobot(actor, {
            name,
            project: projectName,
            permissions,
            description: opts.description,
            expiresAt,
          });
          if (opts.json) {
            const { robotView } = await import('../http/api/robots.js');
            return out(JSON.stringify({ ...robotView(created), secret }, null, 2));
          }
          out(`created ${created.name}\nsecret: ${secret}`);
        }),
    );
  robot
    .command('rm <robot>')
    .description("revoke a robot account: its full login ('robot$team+ci', quoted for the shell) or team+ci")
    .action((name: string) =>
      withAuth(loadConfig, async (auth, actor) => {
        await auth.accounts.deleteRobot(actor, robotLogin(name));
        out(`deleted ${robotLogin(name)}`);
      }),
    );
}
