import type { EventConsumer, StoredEvent } from '../core/events.js';
import type { MetadataTx } from '../core/ports.js';
import { webhookEventOf, type WebhookEvent } from './events.js';
import { render, type RenderContext } from './formats.js';
import type { NewDelivery, WebhookStore } from './ports.js';
import { configEndpointWants, policyEndpointKey, policyWants, type ConfiguredEndpoint } from './targets.js';

export const WEBHOOK_CONSUMER = 'webhooks';

export interface ConsumerOptions {
  endpoints: ConfiguredEndpoint[];
  /** Sender identity for the bodies (everything but repo_type). */
  context: Omit<RenderContext, 'publicProject'>;
}

/**
 * The outbox consumer of webhooks. It is transactional: it only inserts delivery rows (one per
 * event and endpoint that wants it, with the body rendered in the endpoint's format) in the
 * transaction that moves its cursor, so each event is queued exactly once per endpoint and a
 * crash loses none. Sending is the delivery job's (delivery.ts), so a slow receiver never holds
 * up the outbox, GC's review queue or a push.
 */
export function webhookConsumer(store: WebhookStore, options: ConsumerOptions): EventConsumer {
  return {
    name: WEBHOOK_CONSUMER,
    transactional: true,
    async handle(events: StoredEvent[], tx: MetadataTx | null) {
      if (!tx) throw new Error('the webhooks consumer runs inside a transaction');
      const webhookEvents = events.map(webhookEventOf).filter((e): e is WebhookEvent => e !== null);
      if (webhookEvents.length === 0) return;
      const rows = store.within(tx);
      const projects = [...new Set(webhookEvents.map((e) => e.project).filter((p): p is string => p !== null))];
      // Everything is read through the transaction: on SQLite a read outside it would wait for its own connection.
      const policies = await rows.enabledPolicies(projects);
      const publicProjects = await rows.publicProjects(projects);
      const deliveries: NewDelivery[] = [];
      for (const event of webhookEvents) {
        const context = { ...options.context, publicProject: event.project !== null && publicProjects.has(event.project) };
        const add = (endpoint: string, project: string | null, format: Parameters<typeof render>[0]) => {
          const rendered = render(format, event, context);
          if (!rendered) return;
          deliveries.push({
            endpoint,
            project,
            eventId: event.id,
            kind: event.kind,
            repository: event.repository,
            ...rendered,
            createdAt: Date.now(),
          });
        };
        for (const endpoint of options.endpoints) if (configEndpointWants(endpoint, event)) add(endpoint.key, null, endpoint.format);
        for (const policy of policies) if (policyWants(policy, event)) add(policyEndpointKey(policy.id), policy.project, policy.format);
      }
      if (deliveries.length > 0) await rows.enqueue(deliveries);
    },
  };
}
