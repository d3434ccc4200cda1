import { lazyPackage } from '../core/lazy.js';

/** Loaded at the first CloudEvents delivery: a registry without such webhooks keeps it (and its JSON-schema validator) out of memory. */
const cloudevents = lazyPackage<typeof import('cloudevents')>('cloudevents');
import { WEBHOOK_EVENT_KINDS, type WebhookEvent } from './events.js';
import type { WebhookFormat } from './ports.js';

/** Who sends: the registry's public base URL and this installation's identity (Distribution's `source`). */
export interface RenderContext {
  /** e.g. https://registry.example.com (http.host, else the listen address). */
  baseUrl: string;
  /** Distribution's source.instanceID: stable for the running process. */
  instanceId: string;
  /** Distribution's source.addr: host:port of the sender. */
  sourceAddr: string;
  /** Harbor's repository.repo_type: whether the event's project is public. */
  publicProject: boolean;
}

export interface RenderedBody {
  contentType: string;
  body: string;
}

export const DISTRIBUTION_V1_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';
export const DISTRIBUTION_V2_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v2+json';

/** True when the format can carry the event's kind (see the table in events.ts). */
export function formatCarries(format: WebhookFormat, event: WebhookEvent): boolean {
  return format === 'distribution' || format === 'distribution-v2' ? WEBHOOK_EVENT_KINDS[event.kind].distribution !== null : true;
}

/** The body an endpoint in `format` receives for `event` (null when the format has no such event). */
export function render(format: WebhookFormat, event: WebhookEvent, ctx: RenderContext): RenderedBody | null {
  if (!formatCarries(format, event)) return null;
  switch (format) {
    case 'distribution':
      return { contentType: DISTRIBUTION_V1_MEDIA_TYPE, body: JSON.stringify(distributionEnvelope(event, ctx)) };
    case 'distribution-v2':
      return { contentType: DISTRIBUTION_V2_MEDIA_TYPE, body: JSON.stringify(distributionEnvelope(event, ctx)) };
    case 'harbor':
      return { contentType: 'application/json', body: JSON.stringify(harborDefault(event, ctx)) };
    case 'cloudevents':
      return cloudEvent(event, ctx);
  }
}

function host(ctx: RenderContext): string {
  return new URL(ctx.baseUrl).host;
}

/** `host/repo:tag`, or `host/repo@digest` without a tag (Harbor's resource_url). */
function resourceUrl(ctx: RenderContext, repository: string, tag: string | null, digest: string | null): string {
  return `${host(ctx)}/${repository}${tag ? `:${tag}` : digest ? `@${digest}` : ''}`;
}

const DISTRIBUTION_METHOD: Record<string, string> = { push: 'PUT', pull: 'GET', delete: 'DELETE' };

/**
 * Distribution's notification envelope (notifications/event.go) with one event, as 2.8 sends it.
 * Deletes carry only {digest, repository} or {repository, tag}; a pull has no media type or
 * size (the batched pull count knows only the digest). Berth does not keep the request that
 * caused an event, so `request` names only the host and method.
 */
function distributionEnvelope(event: WebhookEvent, ctx: RenderContext) {
  const action = WEBHOOK_EVENT_KINDS[event.kind].distribution!;
  const repository = event.repository!;
  const tag = event.tags[0] ?? null;
  let target: Record<string, unknown>;
  if (event.kind === 'tag.deleted') target = { repository, tag };
  else if (event.kind === 'artifact.deleted') target = { digest: event.digest, repository };
  else {
    const url = `${ctx.baseUrl}/v2/${repository}/manifests/${event.digest}`;
    const sized = event.size === null ? {} : { size: event.size, length: event.size };
    target = {
      ...(event.mediaType ? { mediaType: event.mediaType } : {}),
      ...sized,
      digest: event.digest,
      repository,
      url,
      ...(tag ? { tag } : {}),
    };
  }
  return {
    events: [
      {
        id: event.id,
        timestamp: new Date(event.at).toISOString(),
        action,
        target,
        request: { id: event.id, addr: '', host: host(ctx), method: DISTRIBUTION_METHOD[action], useragent: '' },
        // Distribution leaves the name out for anonymous requests.
        actor: event.actor && event.actor !== 'anonymous' ? { name: event.actor } : {},
        source: { addr: ctx.sourceAddr, instanceID: ctx.instanceId },
      },
    ],
  };
}

/** Harbor's "Default" payload (pkg/notifier/model/event.go): times in seconds, one resource per tag. */
function harborDefault(event: WebhookEvent, ctx: RenderContext) {
  const eventData: Record<string, unknown> = {};
  if (event.repository) {
    const repository = event.repository;
    const namespace = event.project ?? '';
    const tags: (string | null)[] = event.tags.length > 0 ? event.tags : [null];
    eventData.resources = event.digest
      ? tags.map((tag) => ({
          digest: event.digest,
          ...(tag ? { tag } : {}),
          resource_url: resourceUrl(ctx, repository, tag, event.digest),
        }))
      : [];
    eventData.repository = {
      name: repository.startsWith(`${namespace}/`) ? repository.slice(namespace.length + 1) : repository,
      namespace,
      repo_full_name: repository,
      repo_type: ctx.publicProject ? 'public' : 'private',
    };
  } else if (event.project) {
    eventData.repository = { namespace: event.project };
  }
  if (event.kind === 'scan.completed' || event.kind === 'scan.failed') {
    // Harbor's SCANNING_* payload: each resource carries the scan's overview under the native report's MIME type.
    const overview = { [HARBOR_REPORT_MIME]: harborScanOverview(event) };
    eventData.resources = (eventData.resources as Record<string, unknown>[]).map((r) => ({ ...r, scan_overview: overview }));
    eventData.scan = { scan_type: 'vulnerability' };
    if (event.kind === 'scan.failed') eventData.custom_attributes = { Details: String(event.details.error ?? '') };
  } else if (event.kind === 'retention.finished')
    eventData.retention = { harbor_hostname: host(ctx), project_name: event.project, ...event.details };
  else if (event.kind === 'replication.finished') eventData.replication = harborReplication(event, ctx);
  else if (Object.keys(event.details).length > 0) eventData.custom_attributes = customAttributes(event);
  return {
    type: WEBHOOK_EVENT_KINDS[event.kind].harbor,
    occur_at: Math.floor(event.at / 1000),
    operator: event.actor ?? 'anonymous',
    event_data: eventData,
  };
}

/**
 * Harbor's REPLICATION event_data.replication (controller/event/model/event.go), from what a
 * Berth execution reports: Harbor lists artifacts one by one, Berth gives counts (copied,
 * skipped, failed, deleted, bytes) beside its own policy, execution and direction fields.
 */
function harborReplication(event: WebhookEvent, ctx: RenderContext): Record<string, unknown> {
  const d = event.details;
  const remote = String(d.registry ?? '');
  return {
    harbor_hostname: host(ctx),
    job_status: d.status,
    description: `replication policy ${String(d.policy)} (${String(d.direction)}), execution ${String(d.executionId)}`,
    trigger_type: d.trigger,
    policy_creator: event.actor ?? 'system',
    execution_timestamp: Math.floor(event.at / 1000),
    src_resource: d.direction === 'pull' ? { registry_name: remote } : { registry_name: 'local' },
    dest_resource: d.direction === 'push' ? { registry_name: remote } : { registry_name: 'local' },
    ...d,
  };
}

const HARBOR_REPORT_MIME = 'application/vnd.security.vulnerability.report; version=1.1';
const HARBOR_SEVERITIES = ['Critical', 'High', 'Medium', 'Low', 'Negligible', 'Unknown'] as const;

/** Harbor's NativeReportSummary of a scan (report_id, scan_status, severity, summary{total, fixable, summary}, times, scanner). */
function harborScanOverview(event: WebhookEvent): Record<string, unknown> {
  const time = new Date(event.at).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const common = {
    report_id: event.id,
    duration: 0,
    start_time: time,
    end_time: time,
    scanner: { name: 'Berth', vendor: 'Berth', version: '1.0' },
    complete_percent: 100,
  };
  if (event.kind === 'scan.failed') return { ...common, scan_status: 'Error', severity: 'Unknown' };
  const counts = (event.details.summary ?? {}) as Record<string, number>;
  const severities = Object.fromEntries(HARBOR_SEVERITIES.filter((s) => (counts[s] ?? 0) > 0).map((s) => [s, counts[s]!]));
  const severity = HARBOR_SEVERITIES.find((s) => (counts[s] ?? 0) > 0) ?? 'None';
  return {
    ...common,
    scan_status: 'Success',
    severity,
    summary: { total: counts.total ?? 0, fixable: Number(event.details.fixable ?? 0), summary: severities },
  };
}

/** Harbor's custom_attributes are strings; a quota event's message goes to `Details` as Harbor's does. */
function customAttributes(event: WebhookEvent): Record<string, string> {
  const attributes = Object.fromEntries(Object.entries(event.details).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
  if (typeof event.details.message === 'string') attributes.Details = event.details.message;
  return attributes;
}

/** CloudEvents 1.0 structured JSON (the cloudevents SDK validates and serialises it). */
function cloudEvent(event: WebhookEvent, ctx: RenderContext): RenderedBody {
  const data: Record<string, unknown> = {};
  for (const key of ['project', 'repository', 'digest', 'mediaType', 'size'] as const) if (event[key] !== null) data[key] = event[key];
  if (event.tags.length > 0) data.tags = event.tags;
  Object.assign(data, event.details);
  const subject = event.repository ? `${event.repository}${event.digest ? `@${event.digest}` : ''}` : undefined;
  const { CloudEvent, HTTP } = cloudevents();
  const ce = new CloudEvent({
    specversion: '1.0',
    id: event.id,
    type: WEBHOOK_EVENT_KINDS[event.kind].cloudevents,
    source: ctx.baseUrl,
    time: new Date(event.at).toISOString(),
    datacontenttype: 'application/json',
    ...(subject ? { subject } : {}),
    ...(event.actor ? { operator: event.actor } : {}),
    data,
  });
  const message = HTTP.structured(ce);
  return { contentType: String(message.headers['content-type']), body: String(message.body) };
}
