import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import { durationMs, type BerthConfig } from '../config/schema.js';
import type { EventConsumer } from '../core/events.js';
import type { LeaseStore } from '../jobs/leases.js';
import type { Job } from '../jobs/scheduler.js';
import { webhookConsumer } from './consumer.js';
import { WebhookDeliverer, type DeliveryObserver, type ResolvedTarget } from './delivery.js';
import type { WebhookStore } from './ports.js';
import { WebhookService } from './service.js';
import { configuredEndpoints, policyIdOf, policyTarget } from './targets.js';

export { WebhookService, policyView, deliveryView } from './service.js';
export { WEBHOOK_EVENT_KIND_NAMES, isWebhookEventKind } from './events.js';
export { SIGNATURE_HEADER, signature } from './delivery.js';

export interface WebhookComponents {
  consumer: EventConsumer;
  /** Delivery (every notifications.interval) and log pruning (hourly). */
  jobs: Job[];
  service: WebhookService;
  deliverer: WebhookDeliverer;
}

export interface WebhookWiring {
  store: WebhookStore;
  leases: LeaseStore;
  logger: Logger;
  observer?: DeliveryObserver;
}

/** The registry's base URL as receivers should see it: http.host, else the listen address. */
function baseUrlOf(config: BerthConfig): string {
  if (config.http.host) return config.http.host.replace(/\/+$/, '');
  const addr = config.http.addr.replace(/^(0\.0\.0\.0|\[::\]|):/, `${os.hostname()}:`);
  return `${config.http.tls ? 'https' : 'http'}://${addr}`;
}

/** Webhooks wired on their ports: the outbox consumer, the delivery job and the API's service. */
export function createWebhooks(config: BerthConfig, wiring: WebhookWiring): WebhookComponents {
  const endpoints = configuredEndpoints(config);
  const baseUrl = baseUrlOf(config);
  const consumer = webhookConsumer(wiring.store, {
    endpoints,
    context: { baseUrl, instanceId: randomUUID(), sourceAddr: new URL(baseUrl).host },
  });
  const resolve = async (endpoint: string): Promise<ResolvedTarget> => {
    const policyId = policyIdOf(endpoint);
    if (policyId === null) {
      const configured = endpoints.find((e) => e.key === endpoint);
      if (!configured) return { gone: 'the endpoint is no longer in notifications.endpoints' };
      return configured.disabled ? { gone: 'the endpoint is disabled' } : { target: configured };
    }
    const policy = await wiring.store.policyById(policyId);
    if (!policy) return { gone: 'the webhook policy was deleted' };
    return policy.enabled ? { target: policyTarget(policy, config) } : { gone: 'the webhook policy is disabled' };
  };
  const deliverer = new WebhookDeliverer(wiring.store, wiring.leases, wiring.logger, {
    intervalMs: durationMs(config.notifications.interval),
    concurrency: config.notifications.concurrency,
    resolve,
    observer: wiring.observer,
  });
  const retentionMs = durationMs(config.notifications.retention);
  const prune: Job = {
    name: 'webhooks-prune',
    schedule: { everyMs: Math.min(retentionMs, 3_600_000) },
    async run() {
      const pruned = await wiring.store.prune(Date.now() - retentionMs);
      return { summary: { pruned }, idle: pruned === 0 };
    },
  };
  return { consumer, jobs: [deliverer.job(), prune], service: new WebhookService(wiring.store), deliverer };
}
export { webhookMetrics } from './metrics.js';
