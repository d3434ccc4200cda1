import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { Actor } from '../auth/accounts.js';
import type { Identity } from '../auth/identity.js';
import type { AuthService } from '../auth/service.js';
import type { Composition } from '../compose.js';
import type { BerthConfig } from '../config/schema.js';
import type { Stores } from '../stores.js';

/** Loads the configuration (asynchronously: zod and the YAML parser load only when a command runs). */
export type LoadConfig = () => Promise<BerthConfig>;

/**
 * Opens the server's metadata DB (same config, same data dir), runs `fn` on the same
 * application services the admin API calls (auth.accounts for changes, auth.directory for
 * reads), closes it. A refused change (bad name, unknown user…) is the user's mistake: its
 * message is printed without a stack trace and the exit status is 1.
 */
export async function withAuth<T>(
  loadConfig: LoadConfig,
  fn: (auth: AuthService, actor: Actor, identity: Identity) => Promise<T>,
): Promise<T> {
  const config = await loadConfig();
  const [{ openMetadataAdapters }, { createAuthService }, { RegistryError }, { openSealer }] = await Promise.all([
    import('../metadata/index.js'),
    import('../auth/index.js'),
    import('../core/errors.js'),
    import('../secrets/index.js'),
  ]);
  // Signing keys sealed at rest open (and `berth auth rotate-key` seals) with the server's secrets key.
  const { metadata, auth: store } = await openMetadataAdapters(config, undefined, openSealer(config.secrets));
  try {
    const auth = createAuthService(config, store, metadata, () => '');
    // Whoever runs the CLI on the server's host acts as a system administrator; the audit log names them.
    const name = `cli:${safeUser()}`;
    return await fn(auth, { name, ip: null }, { kind: 'user', name, admin: true });
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    process.stderr.write(`berth: ${err.message}\n`);
    process.exitCode = 1;
    return undefined as T;
  } finally {
    await metadata.close();
  }
}

export function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** --password-stdin, else --password, else a generated one (printed once). */
async function passwordFrom(opts: { password?: string; passwordStdin?: boolean }): Promise<{ password: string; generated: boolean }> {
  if (opts.passwordStdin) return { password: await readStdin(), generated: false };
  if (opts.password !== undefined) return { password: opts.password, generated: false };
  const { generateSecret } = await import('../auth/secrets.js');
  return { password: generateSecret(18), generated: true };
}

/** A wrong argument the command itself detects: its message, exit status 2 (as commander's own). */
export function usageError(message: string): void {
  process.stderr.write(`berth: ${message}\n`);
  process.exitCode = 2;
}

/**
 * Opens the server's stores with the server's wiring (core with its policies, so a command is
 * refused where a request would be), runs `fn`, closes them. A refusal (RegistryError) prints its
 * message without a stack trace and the exit status is 1.
 */
export async function withComposition(
  loadConfig: LoadConfig,
  fn: (composition: Composition, stores: Stores) => Promise<void>,
): Promise<void> {
  const config = await loadConfig();
  const [{ default: pino }, { openStores }, { compose }, { RegistryError }] = await Promise.all([
    import('pino'),
    import('../stores.js'),
    import('../compose.js'),
    import('../core/errors.js'),
  ]);
  const stores = await openStores(config);
  try {
    await fn(compose(config, stores, pino({ level: 'warn' }, pino.destination(2))), stores);
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    process.stderr.write(`berth: ${err.message}\n`);
    process.exitCode = 1;
  } finally {
    await stores.close();
  }
}

export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** `berth user …` and `berth auth …` — against the server's own DB (projects, members, robots: projects.ts). */
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
    .description('list users (name, then "admin" for system administrators)')
    .option('--json', 'print the users as JSON (as GET /api/v1/users does)')
    .action((opts: { json?: boolean }) =>
      withAuth(loadConfig, async (auth) => {
        const users = await auth.directory.listUsers();
        const { userView } = await import('../http/api/users.js');
        if (opts.json) return out(JSON.stringify(users.map(userView), null, 2));
        for (const u of users) out(`${u.username}${u.admin ? '\tadmin' : ''}`);
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
    .action(async () => {
      const { renderPermissionTables } = await import('../auth/permissions.js');
      process.stdout.write(renderPermissionTables());
    });
}
