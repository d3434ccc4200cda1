import type { MetricsRegistry } from '../core/metrics.js';
import type { DeliveryObserver } from './delivery.js';
import type { WebhookStore } from './ports.js';

/**
 * Delivery metrics through core's metrics seam: Berth's own series, and Distribution's
 * registry_notifications_* names so its dashboards and alerts keep working. The endpoint label
 * is the queue key (`config:<name>` or `policy:<id>`): bounded by the configured endpoints and policies.
 */
export function webhookMetrics(metrics: MetricsRegistry, store: WebhookStore): DeliveryObserver {
  const attempts = metrics.counter<'endpoint' | 'outcome'>({
    name: 'berth_webhook_attempts_total',
    help: 'Webhook delivery attempts by outcome (delivered, retrying, failed = given up)',
    labels: ['endpoint', 'outcome'],
  });
  const latency = metrics.histogram<'endpoint'>({
    name: 'berth_webhook_attempt_duration_seconds',
    help: 'Time to a webhook response (or timeout)',
    labels: ['endpoint'],
  });
  const pending = async () => Object.entries(await store.pendingCounts()).map(([endpoint, value]) => ({ labels: { endpoint }, value }));
  metrics.gauge<'endpoint'>({
    name: 'berth_webhook_pending_deliveries',
    help: 'Webhook deliveries queued and not yet delivered or given up',
    labels: ['endpoint'],
    collect: pending,
  });
  const distributionEvents = metrics.counter<'type' | 'endpoint'>({
    name: 'registry_notifications_events_total',
    help: 'Distribution-compatible: notification attempts (type Successes, Failures, Errors)',
    labels: ['type', 'endpoint'],
  });
  const distributionStatus = metrics.counter<'code' | 'endpoint'>({
    name: 'registry_notifications_status_total',
    help: 'Distribution-compatible: notification responses by HTTP status',
    labels: ['code', 'endpoint'],
  });
  metrics.gauge<'endpoint'>({
    name: 'registry_notifications_pending_total',
    help: 'Distribution-compatible: notifications pending',
    labels: ['endpoint'],
    collect: pending,
  });
  return {
    attempted(endpoint, outcome) {
      const result = outcome.status === 'pending' ? 'retrying' : outcome.status;
      attempts.inc({ endpoint, outcome: result });
      latency.observe({ endpoint }, outcome.latencyMs / 1000);
      distributionEvents.inc({
        endpoint,
        type: outcome.status === 'delivered' ? 'Successes' : outcome.statusCode === null ? 'Errors' : 'Failures',
      });
      if (outcome.statusCode !== null)
        distributionStatus.inc({ endpoint, code: `${outcome.statusCode} ${statusText(outcome.statusCode)}` });
    },
  };
}

/** Distribution labels codes as "200 OK"; the class name keeps the label set small and needs no table. */
function statusText(code: number): string {
  return code < 300 ? 'OK' : code < 400 ? 'Redirect' : code < 500 ? 'Client Error' : 'Server Error';
}
