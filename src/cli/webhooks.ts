import type { Command } from 'commander';
import type { WebhookService } from '../webhooks/service.js';
import { out, type LoadConfig } from './users.js';

interface ListFlags {
  json?: boolean;
}
interface DeliveryFlags extends ListFlags {
  endpoint?: string;
  project?: string;
  status?: string;
  limit: string;
}

/**
 * Opens the server's stores (same config, same metadata DB, same secrets key), runs `fn` on
 * the webhook service the admin API uses, closes them. A refused request (unknown delivery)
 * prints its message without a stack trace, exit status 1 (a wrong option: 2).
 */
async function withWebhooks(loadConfig: LoadConfig, fn: (service: WebhookService) => Promise<void>): Promise<void> {
  const config = await loadConfig();
  const [{ openStores }, { WebhookService }, { RegistryError }] = await Promise.all([
    import('../stores.js'),
    import('../webhooks/service.js'),
    import('../core/errors.js'),
  ]);
  const stores = await openStores(config);
  try {
    await fn(new WebhookService(stores.webhooks));
  } catch (err) {
    const wrongOption = (err as { usage?: boolean }).usage === true;
    if (!(err instanceof RegistryError) && !wrongOption) throw err;
    process.stderr.write(`berth: ${(err as Error).message}\n`);
    process.exitCode = wrongOption ? 2 : 1;
  } finally {
    await stores.close();
  }
}

/** `berth webhooks list|deliveries|redeliver`: policies and the delivery log, as /api/v1 shows them to a system admin. */
export function registerWebhookCommands(program: Command, loadConfig: LoadConfig): void {
  const webhooks = program.command('webhooks').description('webhook policies and the delivery log (docs/observability.md#webhooks)');
  webhooks
    .command('list <project>')
    .description("a project's webhook policies (secrets and Authorization headers are never shown)")
    .option('--json', 'print the policies as JSON (as GET /api/v1/projects/<project>/webhooks)')
    .action((project: string, flags: ListFlags) =>
      withWebhooks(loadConfig, async (service) => {
        const { policyView } = await import('../webhooks/service.js');
        const policies = (await service.policies(project)).map(policyView);
        if (flags.json) return out(JSON.stringify(policies, null, 2));
        if (policies.length === 0) return out(`no webhook policies in project ${project}`);
        for (const p of policies)
          out(`${String(p.id).padEnd(6)} ${p.name.padEnd(20)} ${p.enabled ? 'enabled ' : 'disabled'} ${p.format.padEnd(15)} ${p.url}`);
      }),
    );
  webhooks
    .command('deliveries')
    .description('the delivery log, newest first: status, attempts, last answer or error, latency')
    .option('--endpoint <key>', 'only this endpoint: config:<name> or policy:<id>')
    .option('--project <name>', "only this project's policies")
    .option('--status <status>', 'pending, delivered or failed')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'print the deliveries as JSON (as GET /api/v1/webhooks/deliveries)')
    .action((flags: DeliveryFlags) =>
      withWebhooks(loadConfig, async (service) => {
        const limit = Number(flags.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw usage('--limit must be a whole number from 1 to 500');
        if (flags.status !== undefined && !['pending', 'delivered', 'failed'].includes(flags.status))
          throw usage('--status must be pending, delivered or failed');
        const { deliveryView } = await import('../webhooks/service.js');
        const query = {
          limit,
          endpoint: flags.endpoint,
          project: flags.project,
          status: flags.status as 'pending' | 'delivered' | 'failed' | undefined,
        };
        const deliveries = (await service.deliveries(query)).map((d) => deliveryView(d));
        if (flags.json) return out(JSON.stringify(deliveries, null, 2));
        if (deliveries.length === 0) return out('no deliveries');
        for (const d of deliveries) {
          const answer = d.lastError ?? (d.lastStatusCode === null ? '-' : `HTTP ${d.lastStatusCode}`);
          out(
            `${String(d.id).padEnd(8)} ${d.createdAt}  ${d.endpoint.padEnd(20)} ${d.event.padEnd(18)} ${d.status.padEnd(9)} ${String(d.attempts).padStart(3)}  ${answer}${d.lastLatencyMs === null ? '' : ` (${d.lastLatencyMs} ms)`}`,
          );
        }
      }),
    );
  webhooks
    .command('redeliver <delivery>')
    .description('send a delivery again (same body and event id) as a new delivery')
    .option('--json', 'print the new delivery as JSON')
    .action((id: string, flags: ListFlags) =>
      withWebhooks(loadConfig, async (service) => {
        const { deliveryView } = await import('../webhooks/service.js');
        const queued = deliveryView(await service.redeliver(/^\d{1,15}$/.test(id) ? Number(id) : NaN));
        out(flags.json ? JSON.stringify(queued, null, 2) : `queued delivery ${queued.id} (redelivery of ${id}) to ${queued.endpoint}`);
      }),
    );
}

/** A wrong option: its message alone, exit status 2. */
function usage(message: string): Error {
  return Object.assign(new Error(message), { usage: true });
}
