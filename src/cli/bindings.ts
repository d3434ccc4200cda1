import type { Command } from 'commander';
import { out, usageError, withAuth, type LoadConfig } from './users.js';

/**
 * `berth binding list|add|rm`: identity bindings (external group, identity or SPIFFE ID prefix →
 * project role; src/auth/bindings.ts) in the server's metadata DB, through the same service as
 * /api/v1/identity/bindings. Changes are audited (actor cli:<os user>) and become events.
 */
export function registerBindingCommands(program: Command, loadConfig: LoadConfig): void {
  const binding = program.command('binding').description('identity bindings: external groups and identities → project roles');
  binding
    .command('list')
    .description('list bindings (id, source, kind, subject, project, role)')
    .option('--source <source>', 'only bindings of this source (ldap, spiffe, oidc:<provider>)')
    .option('--project <project>', 'only bindings into this project')
    .option('--json', 'print the bindings as JSON (as GET /api/v1/identity/bindings does)')
    .action((opts: { source?: string; project?: string; json?: boolean }) =>
      withAuth(loadConfig, async (auth) => {
        const bindings = await auth.bindings.list({ source: opts.source, project: opts.project });
        if (opts.json) {
          const { bindingView } = await import('../http/api/bindings.js');
          return out(JSON.stringify(bindings.map(bindingView), null, 2));
        }
        for (const b of bindings) out([b.id, b.source, b.kind, b.subject, b.project, b.role].join('\t'));
      }),
    );
  binding
    .command('add <source> <kind> <subject> <project> <role>')
    .description('bind: e.g. `berth binding add ldap group cn=devs,ou=groups,dc=example,dc=org team-a developer`')
    .action((source: string, kind: string, subject: string, project: string, role: string) =>
      withAuth(loadConfig, async (auth, actor) => {
        const created = await auth.bindings.add(actor, { source, kind, subject, project, role });
        out(`binding ${created.id}: ${created.source} ${created.kind} ${created.subject} → ${created.role} in ${created.project}`);
      }),
    );
  binding
    .command('rm <id>')
    .description('remove a binding (its source’s users lose what they held in its project at once)')
    .action((id: string) => {
      if (!/^[1-9]\d{0,14}$/.test(id)) return usageError(`binding id must be a positive number, not ${JSON.stringify(id)}`);
      return withAuth(loadConfig, async (auth, actor) => {
        await auth.bindings.remove(actor, Number(id));
        out(`removed binding ${id}`);
      });
    });
}
