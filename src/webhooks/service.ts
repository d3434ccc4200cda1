import { RegistryError } from '../core/errors.js';
import type { Delivery, DeliveryQuery, WebhookPolicy, WebhookPolicyInput, WebhookStore } from './ports.js';
import { policyEndpointKey } from './targets.js';

/** A policy as the API and CLI show it: whether a secret or Authorization header is set, never their values. */
export function policyView(policy: WebhookPolicy) {
  return {
    id: policy.id,
    project: policy.project,
    name: policy.name,
    url: policy.url,
    format: policy.format,
    events: policy.events,
    repositories: policy.repositories,
    tags: policy.tags,
    enabled: policy.enabled,
    hasAuthHeader: policy.authHeader !== null,
    hasSecret: policy.secret !== null,
    createdAt: new Date(policy.createdAt).toISOString(),
    updatedAt: new Date(policy.updatedAt).toISOString(),
  };
}

/** A delivery log entry (the body is left out of listings: it is in the delivery's own view). */
export function deliveryView(delivery: Delivery, withBody = false) {
  const time = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: delivery.id,
    endpoint: delivery.endpoint,
    project: delivery.project,
    eventId: delivery.eventId,
    event: delivery.kind,
    repository: delivery.repository,
    status: delivery.status,
    attempts: delivery.attempts,
    lastStatusCode: delivery.lastStatusCode,
    lastError: delivery.lastError,
    lastLatencyMs: delivery.lastLatencyMs,
    createdAt: time(delivery.createdAt),
    nextAttemptAt: delivery.status === 'pending' ? time(delivery.nextAttemptAt) : null,
    deliveredAt: time(delivery.deliveredAt),
    redeliveryOf: delivery.redeliveryOf,
    ...(withBody ? { contentType: delivery.contentType, body: delivery.body } : {}),
  };
}

/** A change to a policy: omitted fields keep their value; `null` clears the secret or the Authorization header. */
export type PolicyPatch = Partial<WebhookPolicyInput>;

const MAX_PAGE = 500;

/**
 * The webhook policies and the delivery log, for /api/v1 and `berth webhooks`. Callers have
 * already checked that the caller may manage `project` (the API's permission table); a policy
 * or delivery of another project answers NOT_FOUND like one that does not exist.
 */
export class WebhookService {
  constructor(private readonly store: WebhookStore) {}

  policies(project: string): Promise<WebhookPolicy[]> {
    return this.store.policies(project);
  }

  async policy(project: string, id: number): Promise<WebhookPolicy> {
    const found = Number.isSafeInteger(id) ? await this.store.policy(project, id) : null;
    if (!found) throw new RegistryError('NOT_FOUND', `webhook policy ${id} not found in project ${project}`);
    return found;
  }

  async create(project: string, input: WebhookPolicyInput): Promise<WebhookPolicy> {
    if ((await this.store.policies(project)).some((p) => p.name === input.name)) {
      throw new RegistryError('CONFLICT', `project ${project} already has a webhook policy named ${input.name}`);
    }
    return this.store.createPolicy(project, input, Date.now());
  }

  async update(project: string, id: number, patch: PolicyPatch): Promise<WebhookPolicy> {
    const current = await this.policy(project, id);
    const { id: _id, project: _project, createdAt: _c, updatedAt: _u, ...input } = current;
    const updated = await this.store.updatePolicy(project, id, { ...input, ...patch }, Date.now());
    if (!updated) throw new RegistryError('NOT_FOUND', `webhook policy ${id} not found in project ${project}`);
    return updated;
  }

  async remove(project: string, id: number): Promise<void> {
    if (!(await this.store.deletePolicy(project, id)))
      throw new RegistryError('NOT_FOUND', `webhook policy ${id} not found in project ${project}`);
  }

  /** The log of one policy (newest first). */
  async policyDeliveries(project: string, id: number, query: Omit<DeliveryQuery, 'endpoint' | 'project'>): Promise<Delivery[]> {
    await this.policy(project, id);
    return this.store.deliveries({ ...query, limit: Math.min(query.limit, MAX_PAGE), endpoint: policyEndpointKey(id), project });
  }

  /** Any endpoint's log (system administrators). */
  deliveries(query: DeliveryQuery): Promise<Delivery[]> {
    return this.store.deliveries({ ...query, limit: Math.min(query.limit, MAX_PAGE) });
  }

  /** A delivery; with `project`, only one of that project's policies. */
  async delivery(id: number, project?: string): Promise<Delivery> {
    const found = Number.isSafeInteger(id) ? await this.store.delivery(id) : null;
    if (!found || (project !== undefined && found.project !== project))
      throw new RegistryError('NOT_FOUND', `webhook delivery ${id} not found`);
    return found;
  }

  /** Queues the delivery's body again for its endpoint (same event id, so a receiver that has it can drop it). */
  async redeliver(id: number, project?: string): Promise<Delivery> {
    await this.delivery(id, project);
    const queued = await this.store.redeliver(id, Date.now());
    if (!queued) throw new RegistryError('NOT_FOUND', `webhook delivery ${id} not found`);
    return queued;
  }
}
