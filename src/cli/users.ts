import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { Actor } from '../auth/accounts.js';
import { renderPermissionTables } from '../auth/permissions.js';
import { generateSecret } from '../auth/secrets.js';
import { createAuthService } from '../auth/index.js';
import type { AuthService } from '../auth/service.js';
import { durationMs, type BerthConfig } from '../config/schema.js';
import { RegistryError } from '../core/errors.js';
import { openMetadataAdapters } from '../metadata/index.js';

type LoadConfig = () => BerthConfig;

/** Opens the server's metadata DB (same config, same data dir), runs `fn`, closes it. */
async function withAuth<T>(loadConfig: LoadConfig, fn: (auth: AuthService, actor: Actor) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const { metadata, auth: store } = await openMetadataAdapters(config);
  try {
    const auth = createAuthService(config, store, metadata, () => '');
    return await fn(auth, { name: `cli:${safeUser()}`, ip: null });
  } catch (err) {
    // A refused change (bad name, unknown user…) is the user's mistake: say why, without a stack trace.
    if (!(err instanceof RegistryError)) throw err;
    process.stderr.write(`berth: ${err.message}\n`);
    process.exitCode = 1;
    return undefined as T;
  } finally {
    await metadata.close();
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** --password-stdin, else --password, else a generated one (printed once). */
async function passwordFrom(opts: { password?: string; passwordStdin?: boolean }): Promise<{ password: string; generated: boolean }> {
  if (opts.passwordStdin) return { password: await readStdin(), generated: false };
  if (opts.password !== undefined) return { password: opts.password, generated: false };
  return { password: generateSecret(18), generated: true };
}

const out = (line: string) => process.stdout.write(`${line}\n`);

/** `berth user …`, `berth project …`, `berth robot …`, `berth auth …` — against the server's own DB. */
export function registerUserCommands(program: Command, loadConfig: LoadConfig): void {
  const user = program.command('user').description('manage user accounts (in the metadata DB the server uses)');
  user
    .command('add <username>')
    .description('create a user (password from --password-stdin, --password, or generated and printed once)')
    .option('--admin', 'make the user a system administrator')
    .option('--password <password>', 'the password (visible in the process list: prefer --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .action((username: string, opts: { admin?: boolean; password?: string; passwordStdin?: boolean }) =>
      withAuth(loadConfig, async (auth, actor) => {
        const { password, generated } = await passwordFrom(opts);
        await auth.accounts.addUser(actor, username, password, opts.admin ?? false);
        out(`created user ${username}${opts.admin ? ' (admin)' : ''}${generated ? `\npassword: ${password}` : ''}`);
      }),
    );
  user
    .command('passwd <username>')
    .description("set a user's password (revokes their refresh tokens)")
    .option('--password <password>', 'the new password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .action((username: string, opts: { password?: string; passwordStdin?: boolean }) =>
      withAuth(loadConfig, async (auth, actor) => {
        const { password, generated } = await passwordFrom(opts);
        await auth.accounts.setPassword(actor, username, password);
        out(`password of ${username} changed${generated ? `\npassword: ${password}` : ''}`);
      }),
    );
  user
    .command('rm <username>')
    .description('delete a user')
    .action((username: string) =>
      withAuth(loadConfig, async (auth, actor) => {
        await auth.accounts.removeUser(actor, username);
        out(`deleted user ${username}`);
      }),
    );
  user
    .command('list')
    .description('list users')
    .action(() =>
      withAuth(loadConfig, async (auth) => {
        for (const u of await auth.store.listUsers()) out(`${u.username}${u.admin ? '\tadmin' : ''}`);
      }),
    );

  const project = program.command('project').description('manage projects and their members');
  project
    .command('add <name>')
    .description('create a project')
    .option('--public', 'anyone (even anonymous) may pull')
    .option('--owner <username>', 'make this user its project-admin')
    .action((name: string, opts: { public?: boolean; owner?: string }) =>
      withAuth(loadConfig, async (auth, actor) => {
        await auth.accounts.createProject(actor, name, opts.public ?? false, opts.owner);
        out(`created ${opts.public ? 'public' : 'private'} project ${name}`);
      }),
    );
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

  program
    .command('robot')
    .description('robot accounts')
    .command('add <project> <name>')
    .description('create robot$<project>+<name> with the given actions on the project; prints the secret once')
    .option('--actions <list>', 'comma-separated: pull,push,delete,list-tags', 'pull')
    .option('--repository <pattern>', 'repositories it may touch (glob, * = all in the project)', '*')
    .option('--expires-in <duration>', 'e.g. 90d (default: never)')
    .action((projectName: string, name: string, opts: { actions: string; repository: string; expiresIn?: string }) =>
      withAuth(loadConfig, async (auth, actor) => {
        const expiresAt = opts.expiresIn ? new Date(Date.now() + durationMs(opts.expiresIn)) : null;
        const permissions = [{ project: projectName, repository: opts.repository, actions: opts.actions.split(',') }];
        const { robot, secret } = await auth.accounts.createRobot(actor, { name, project: projectName, permissions, expiresAt });
        out(`created ${robot.name}\nsecret: ${secret}`);
      }),
    );

  const authCommand = program.command('auth').description('token keys and permissions');
  authCommand
    .command('rotate-key')
    .description('make a new token signing key; tokens signed by the old one stay valid until they expire')
    .action(() =>
      withAuth(loadConfig, async (auth) => {
        out(`new signing key ${await auth.keys.rotate()}`);
      }),
    );
  authCommand
    .command('permissions')
    .description('print the permission table (Markdown)')
    .action(() => {
      process.stdout.write(renderPermissionTables());
    });
}
