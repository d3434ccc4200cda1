import type { MetadataTx } from '../core/ports.js';

/** How a delivery body is written (formats.ts): the media type a receiver expects. */
export const WEBHOOK_FORMATS = ['distribution', 'distribution-v2', 'harbor', 'cloudevents'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** A per-project webhook policy (the admin API's resource). Secrets are opened: never render them. */
export interface WebhookPolicy {
  id: number;
  project: string;
  name: string;
  url: string;
  format: WebhookFormat;
  /** Event kinds to send (events.ts WEBHOOK_EVENT_KINDS); empty sends every kind. */
  events: string[];
  /** picomatch globs over the repository name inside the project (empty: every repository). */
  repositories: string[];
  /** picomatch globs over tags (empty: every tag, and events without one). */
  tags: string[];
  enabled: boolean;
  /** Sent as the Authorization header; sealed at rest. */
  authHeader: string | null;
  /** Key of the X-Berth-Signature HMAC; sealed at rest. */
  secret: string | null;
  createdAt: number;
  updatedAt: number;
}

export type WebhookPolicyInput = Omit<WebhookPolicy, 'id' | 'project' | 'createdAt' | 'updatedAt'>;

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** One event for one endpoint: the body is rendered once, so every attempt sends the same bytes. */
export interface NewDelivery {
  /** `config:<name>` for a notifications.endpoints entry, `policy:<id>` for a project policy. */
  endpoint: string;
  project: string | null;
  eventId: string;
  /** The webhook event kind (e.g. artifact.pushed). */
  kind: string;
  repository: string | null;
  contentType: string;
  body: string;
  createdAt: number;
}

export interface Delivery extends NewDelivery {
  id: number;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number;
  lastStatusCode: number | null;
  lastError: string | null;
  lastLatencyMs: number | null;
  deliveredAt: number | null;
  /** The delivery this one sends again (manual redelivery), or null. */
  redeliveryOf: number | null;
}

/** The result of one attempt, recorded on the delivery row. */
export interface AttemptOutcome {
  status: DeliveryStatus;
  statusCode: number | null;
  error: string | null;
  latencyMs: number;
  at: number;
  /** When the next attempt is due (for status 'pending'). */
  nextAttemptAt: number;
}

export interface DeliveryQuery {
  /** Only this endpoint's deliveries. */
  endpoint?: string;
  /** Only deliveries of this project's policies. */
  project?: string;
  status?: DeliveryStatus;
  /** Keyset pagination: deliveries with a smaller id. */
  before?: number;
  limit: number;
}

/** Webhook rows inside another transaction (the outbox consumer's). */
export interface WebhookTxRows {
  /** Enabled policies of the given projects (with their filters; secrets are not opened here). */
  enabledPolicies(projects: string[]): Promise<Omit<WebhookPolicy, 'authHeader' | 'secret'>[]>;
  enqueue(deliveries: NewDelivery[]): Promise<void>;
  /** Which of `projects` are public (Harbor's repo_type), read in the same transaction. */
  publicProjects(projects: string[]): Promise<Set<string>>;
}

/** The webhook feature's tables (src/metadata/webhook-store.ts), one implementation for SQLite, PostgreSQL and MySQL. */
export interface WebhookStore {
  within(tx: MetadataTx): WebhookTxRows;

  policies(project: string): Promise<WebhookPolicy[]>;
  policy(project: string, id: number): Promise<WebhookPolicy | null>;
  /** Any project's policy by id (the delivery worker resolves `policy:<id>`). */
  policyById(id: number): Promise<WebhookPolicy | null>;
  createPolicy(project: string, input: WebhookPolicyInput, now: number): Promise<WebhookPolicy>;
  /** Null when the project has no such policy. */
  updatePolicy(project: string, id: number, input: WebhookPolicyInput, now: number): Promise<WebhookPolicy | null>;
  deletePolicy(project: string, id: number): Promise<boolean>;

  /** Endpoints whose oldest pending delivery is due at `now` (per-endpoint order: only the head is ever sent). */
  dueEndpoints(now: number, limit: number): Promise<string[]>;
  /** The endpoint's oldest pending delivery. */
  head(endpoint: string): Promise<Delivery | null>;
  /** Records an attempt on a pending row; false when the row was no longer pending with `attempts` attempts. */
  recordAttempt(id: number, attempts: number, outcome: AttemptOutcome): Promise<boolean>;
  /** Gives up every pending delivery of an endpoint (its policy was deleted or disabled). */
  abandon(endpoint: string, reason: string, now: number): Promise<number>;
  deliveries(query: DeliveryQuery): Promise<Delivery[]>;
  delivery(id: number): Promise<Delivery | null>;
  /** A new pending delivery with the same endpoint, event id and body (the log of the original stays). */
  redeliver(id: number, now: number): Promise<Delivery | null>;
  /**
   * Seals policy secrets and Authorization headers stored before the secrets key was configured
   * (or under a previous key), each by compare-and-set; returns how many values it sealed.
   */
  sealStoredSecrets(): Promise<number>;
  /** Deletes delivered and failed deliveries created before `before` (epoch ms); returns how many. */
  prune(before: number): Promise<number>;
  /** Pending deliveries per endpoint (for metrics and the API). */
  pendingCounts(): Promise<Record<string, number>>;
}
