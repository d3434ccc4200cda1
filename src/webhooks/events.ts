import { createHash } from 'node:crypto';
import type { StoredEvent } from '../core/events.js';

/**
 * The one table that knows how Berth's webhook events are named in each format. A format whose
 * column is null does not carry that kind (Distribution's envelope only knows push, pull and
 * delete), so endpoints in that format never receive it.
 */
export const WEBHOOK_EVENT_KINDS = {
  'artifact.pushed': { distribution: 'push', harbor: 'PUSH_ARTIFACT', cloudevents: 'io.berth.artifact.pushed' },
  'artifact.pulled': { distribution: 'pull', harbor: 'PULL_ARTIFACT', cloudevents: 'io.berth.artifact.pulled' },
  'artifact.deleted': { distribution: 'delete', harbor: 'DELETE_ARTIFACT', cloudevents: 'io.berth.artifact.deleted' },
  // Harbor records tag deletes (its DELETE_TAG topic) but offers no webhook for them: Berth sends them under that name.
  'tag.deleted': { distribution: 'delete', harbor: 'DELETE_TAG', cloudevents: 'io.berth.tag.deleted' },
  'quota.warning': { distribution: null, harbor: 'QUOTA_WARNING', cloudevents: 'io.berth.quota.warned' },
  'quota.exceeded': { distribution: null, harbor: 'QUOTA_EXCEED', cloudevents: 'io.berth.quota.exceeded' },
  'retention.finished': { distribution: null, harbor: 'TAG_RETENTION', cloudevents: 'io.berth.tag_retention.finished' },
  'gc.finished': { distribution: null, harbor: 'GC_FINISHED', cloudevents: 'io.berth.gc.finished' },
  // Distribution has no scan notifications; Harbor's names and Default payload (scan_overview per resource).
  'scan.completed': { distribution: null, harbor: 'SCANNING_COMPLETED', cloudevents: 'io.berth.scan.completed' },
  'scan.failed': { distribution: null, harbor: 'SCANNING_FAILED', cloudevents: 'io.berth.scan.failed' },
  // Harbor's REPLICATION (event_data.replication); registry-wide, like GC.
  'replication.finished': { distribution: null, harbor: 'REPLICATION', cloudevents: 'io.berth.replication.finished' },
} as const satisfies Record<string, { distribution: string | null; harbor: string; cloudevents: string }>;

export type WebhookEventKind = keyof typeof WEBHOOK_EVENT_KINDS;
export const WEBHOOK_EVENT_KIND_NAMES = Object.keys(WEBHOOK_EVENT_KINDS) as WebhookEventKind[];

export function isWebhookEventKind(value: string): value is WebhookEventKind {
  return Object.hasOwn(WEBHOOK_EVENT_KINDS, value);
}

/** What happened, independent of any format: formats.ts writes it as each receiver expects. */
export interface WebhookEvent {
  /** Stable across attempts, endpoints and redeliveries (derived from the outbox position): receivers deduplicate on it. */
  id: string;
  kind: WebhookEventKind;
  /** Epoch milliseconds of the change. */
  at: number;
  actor: string | null;
  /** The project (first path segment of the repository, or the event's own project); null for registry-wide events (GC). */
  project: string | null;
  repository: string | null;
  digest: string | null;
  mediaType: string | null;
  size: number | null;
  tags: string[];
  /** Kind-specific facts (pull count, quota message, run summary). */
  details: Record<string, unknown>;
}

/** A UUID-shaped id from the event's outbox position and time: the same for every endpoint and every attempt. */
export function stableEventId(stored: StoredEvent): string {
  const hex = createHash('sha256').update(`berth-event:${stored.seq}:${stored.at}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${hex.slice(18, 20)}-${hex.slice(20, 32)}`;
}

function projectOf(repository: string): string {
  const slash = repository.indexOf('/');
  return slash < 0 ? repository : repository.slice(0, slash);
}

type Fields = Omit<WebhookEvent, 'id' | 'at' | 'actor'>;

function repositoryEvent(kind: WebhookEventKind, repository: string, fields: Partial<Fields> = {}): Fields {
  return { kind, project: projectOf(repository), repository, digest: null, mediaType: null, size: null, tags: [], details: {}, ...fields };
}

/** Events of other features (quota, retention): their payload (without the type) goes out as details, so new fields reach receivers unchanged. */
function projectEvent(kind: WebhookEventKind, event: object): Fields {
  const payload = event as Record<string, unknown>;
  const repository = typeof payload.repository === 'string' ? payload.repository : null;
  const project = typeof payload.project === 'string' ? payload.project : repository ? projectOf(repository) : null;
  const { type: _type, ...details } = payload;
  return { kind, project, repository, digest: null, mediaType: null, size: null, tags: [], details };
}

/** The webhook event an outbox event becomes, or null when webhooks do not report it. */
function fieldsOf(stored: StoredEvent): Fields | null {
  const e = stored.event;
  switch (e.type) {
    case 'manifest.pushed':
      return repositoryEvent('artifact.pushed', e.repository, { digest: e.digest, mediaType: e.mediaType, size: e.size, tags: e.tags });
    case 'manifest.pulled':
      return repositoryEvent('artifact.pulled', e.repository, {
        digest: e.digest,
        details: { pulls: e.pulls, lastPulledAt: new Date(e.lastPulledAt).toISOString() },
      });
    case 'manifest.deleted':
      return repositoryEvent('artifact.deleted', e.repository, { digest: e.digest, tags: e.tags });
    case 'tag.deleted':
      return repositoryEvent('tag.deleted', e.repository, { digest: e.digest, tags: [e.tag] });
    case 'gc.finished': {
      const { type: _type, ...details } = e;
      return { kind: 'gc.finished', project: null, repository: null, digest: null, mediaType: null, size: null, tags: [], details };
    }
    // Harbor's messages (pkg/quota/errors.go, middleware/quota), which its receivers read from custom_attributes.Details.
    case 'quota.warning':
      return projectEvent('quota.warning', {
        ...e,
        message: `quota usage reach ${e.threshold}%: resource storage used ${e.used} of ${e.limit}`,
      });
    case 'quota.exceeded':
      return projectEvent('quota.exceeded', {
        ...e,
        message: `Quota exceeded when processing the request of adding ${e.requested} of storage resource, which when updated to current usage of ${e.used} will exceed the configured upper limit of ${e.limit}.`,
      });
    case 'retention.finished':
      return projectEvent('retention.finished', e);
    case 'scan.completed':
      return repositoryEvent('scan.completed', e.repository, {
        digest: e.digest,
        details: { packages: e.packages, summary: e.summary, ...(e.fixable !== undefined ? { fixable: e.fixable } : {}) },
      });
    case 'scan.failed':
      return repositoryEvent('scan.failed', e.repository, { digest: e.digest, details: { error: e.error } });
    case 'replication.finished': {
      const { type: _type, ...details } = e;
      return {
        kind: 'replication.finished',
        project: null,
        repository: null,
        digest: null,
        mediaType: null,
        size: null,
        tags: [],
        details,
      };
    }
    default:
      return null;
  }
}

export function webhookEventOf(stored: StoredEvent): WebhookEvent | null {
  const fields = fieldsOf(stored);
  return fields && { id: stableEventId(stored), at: stored.at, actor: stored.actor, ...fields };
}
