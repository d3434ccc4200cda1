import type { Command } from 'commander';
import { RegistryError } from '../core/errors.js';
import type { ReplicationPolicyInput } from '../replication/ports.js';
import { out, withComposition, type LoadConfig } from './users.js';

interface PolicyFlags {
  direction?: string;
  registry?: string;
  repo?: string[];
  tag?: string[];
  artifactType?: string[];
  onlySigned?: boolean;
  namespace?: string;
  flatten?: string;
  trigger?: string;
  cron?: string;
  override?: boolean;
  deletion?: boolean;
  concurrency?: string;
  bandwidth?: string;
  disabled?: boolean;
  description?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function policyInput(name: string, flags: PolicyFlags): ReplicationPolicyInput {
  if (flags.direction !== 'push' && flags.direction !== 'pull')
    throw new RegistryError('INVALID_ARGUMENT', '--direction must be push or pull');
  if (!flags.registry) throw new RegistryError('INVALID_ARGUMENT', '--registry <endpoint> is required');
  const trigger = (flags.trigger ?? 'manual') as ReplicationPolicyInput['trigger'];
  if (!['manual', 'cron', 'event'].includes(trigger))
    throw new RegistryError('INVALID_ARGUMENT', '--trigger must be manual, cron or event');
  return {
    name,
    description: flags.description ?? '',
    direction: flags.direction,
    registry: flags.registry,
    repositories: flags.repo ?? [],
    tags: flags.tag ?? [],
    artifactTypes: flags.artifactType ?? [],
    onlySigned: flags.onlySigned === true,
    destNamespace: flags.namespace ?? null,
    flatten: flags.flatten === undefined ? 0 : Number(flags.flatten),
    trigger,
    cron: flags.cron ?? null,
    override: flags.override === true,
    deletion: flags.deletion === true,
    concurrency: flags.concurrency === undefined ? 4 : Number(flags.concurrency),
    bandwidth: flags.bandwidth === undefined ? null : Number(flags.bandwidth),
    enabled: flags.disabled !== true,
  };
}

/** `berth replication …`: the policies, executions and tasks of /api/v1/replication, on the server's own DB. */
export function registerReplicationCommands(program: Command, loadConfig: LoadConfig): void {
  const replication = program
    .command('replication')
    .description('replication policies (push to / pull from registry endpoints) and their executions (docs/replication.md)');
  replication
    .command('create <name>')
    .description('create a policy')
    .requiredOption('--direction <push|pull>', 'push: this Berth → the endpoint; pull: the endpoint → this Berth')
    .requiredOption('--registry <endpoint>', 'registry endpoint name (berth registry add)')
    .option('--repo <glob>', 'source repository glob (repeatable; none: all)', collect)
    .option('--tag <glob>', 'tag glob (repeatable; none: all)', collect)
    .option('--artifact-type <type>', 'only this artifact type (repeatable)', collect)
    .option('--only-signed', 'only artifacts with a signature')
    .option('--namespace <ns>', 'destination namespace')
    .option('--flatten <n>', 'leading components dropped before the namespace (-1: keep the last only)')
    .option('--trigger <kind>', 'manual, cron or event (on push)', 'manual')
    .option('--cron <expr>', 'cron expression for --trigger cron')
    .option('--override', 're-point destination tags that point elsewhere')
    .option('--deletion', 'delete destination tags gone at the source')
    .option('--concurrency <n>', 'blobs in flight at once', '4')
    .option('--bandwidth <bytes-per-second>', 'bandwidth limit')
    .option('--disabled', 'create disabled')
    .option('--description <text>', 'free text')
    .action((name: string, flags: PolicyFlags) =>
      withComposition(loadConfig, async ({ replication: service }) => {
        out(JSON.stringify(await service.create(policyInput(name, flags)), null, 2));
      }),
    );
  replication
    .command('list')
    .description('list policies')
    .action(() =>
      withComposition(loadConfig, async ({ replication: service }) => {
        for (const p of await service.list())
          out(
            `${p.name}\t${p.direction}\t${p.registry}\t${p.trigger}${p.cron ? ` ${p.cron}` : ''}\t${p.enabled ? 'enabled' : 'disabled'}\trepos=${p.repositories.join(',') || '*'}\ttags=${p.tags.join(',') || '*'}`,
          );
      }),
    );
  replication
    .command('show <name>')
    .description('print a policy as JSON')
    .action((name: string) =>
      withComposition(loadConfig, async ({ replication: service }) => out(JSON.stringify(await service.get(name), null, 2))),
    );
  replication
    .command('delete <name>')
    .description('delete a policy')
    .action((name: string) => withComposition(loadConfig, async ({ replication: service }) => service.remove(name)));
  replication
    .command('run <name>')
    .description("queue an execution (the server's replication job runs it); with --now run it in this process under the replication lease")
    .option('--now', 'run here and wait; prints the execution when done')
    .action((name: string, flags: { now?: boolean }) =>
      withComposition(loadConfig, async ({ replication: service }, stores) => {
        const execution = await service.run(name, 'manual');
        if (!flags.now) return out(JSON.stringify(execution, null, 2));
        const { withLease } = await import('../jobs/leases.js');
        const outcome = await withLease(stores.leases, 'replication', (lease) => service.execute(execution, lease.signal), {
          ttlMs: 60_000,
        });
        if (!outcome.acquired) {
          process.stderr.write(
            `berth: the replication lease is held by ${outcome.heldBy ?? 'another process'}; execution ${execution.id} is queued for it\n`,
          );
          process.exitCode = 1;
          return;
        }
        out(JSON.stringify(await service.execution(execution.id), null, 2));
      }),
    );
  replication
    .command('executions')
    .description('list executions, newest first')
    .option('--policy <name>', 'of one policy')
    .option('--limit <n>', 'how many', '20')
    .action((flags: { policy?: string; limit: string }) =>
      withComposition(loadConfig, async ({ replication: service }) => {
        for (const e of await service.executions({ policy: flags.policy, limit: Number(flags.limit) })) {
          out(
            `${e.id}\t${e.policy}\t${e.trigger}\t${e.status}\tcopied=${e.copied} skipped=${e.skipped} failed=${e.failed} deleted=${e.deleted} bytes=${e.bytes}${e.error ? `\t${e.error}` : ''}`,
          );
        }
      }),
    );
  replication
    .command('stop <execution>')
    .description('stop an execution: a pending one at once, a running one before its next artifact')
    .action((id: string) =>
      withComposition(loadConfig, async ({ replication: service }) => {
        const e = await service.stop(Number(id));
        out(`${e.id}\t${e.policy}\t${e.status}`);
      }),
    );
  replication
    .command('tasks <execution>')
    .description('per-artifact results of an execution')
    .option('--status <status>', 'copied, skipped, failed or deleted')
    .action((id: string, flags: { status?: string }) =>
      withComposition(loadConfig, async ({ replication: service }) => {
        for (const t of await service.tasks(Number(id), { status: flags.status as never, limit: 100_000 })) {
          out(
            `${t.status}\t${t.sourceRepository}:${t.reference} → ${t.destRepository}\t${t.bytes} B\t${t.durationMs} ms${t.reason ? `\t${t.reason}` : ''}`,
          );
        }
      }),
    );
}
