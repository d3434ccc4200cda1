import picomatch from 'picomatch';
import { durationMs, type BerthConfig } from '../config/schema.js';
import { WEBHOOK_EVENT_KINDS, type WebhookEvent } from './events.js';
import type { WebhookFormat, WebhookPolicy } from './ports.js';

/** How an endpoint is reached and retried, whether it comes from the configuration or a project policy. */
export interface DeliveryTarget {
  /** `config:<name>` or `policy:<id>`: the key of its delivery queue. */
  key: string;
  url: string;
  /** Extra request headers (configured headers, or the policy's Authorization). Never logged. */
  headers: Record<string, string>;
  secret: string | null;
  timeoutMs: number;
  /** Failures retried after `backoffMs` before the delay starts doubling. */
  threshold: number;
  backoffMs: number;
  maxBackoffMs: number;
  maxAttempts: number;
}

/** A notifications.endpoints entry: its target plus the filters Distribution's keys describe. */
export interface ConfiguredEndpoint extends DeliveryTarget {
  name: string;
  format: WebhookFormat;
  disabled: boolean;
  events: string[];
  /** ignoredmediatypes and ignore.mediatypes together. */
  ignoredMediaTypes: string[];
  /** ignore.actions: Distribution action names (push, pull, delete) or Berth event kinds. */
  ignoredActions: string[];
}

export function configEndpointKey(name: string): string {
  return `config:${name}`;
}

export function policyEndpointKey(id: number): string {
  return `policy:${id}`;
}

/** The policy id of a `policy:<id>` key, or null for a configured endpoint. */
export function policyIdOf(key: string): number | null {
  const m = /^policy:(\d+)$/.exec(key);
  return m ? Number(m[1]) : null;
}

export function configuredEndpoints(config: BerthConfig): ConfiguredEndpoint[] {
  const n = config.notifications;
  return n.endpoints.map((e) => ({
    key: configEndpointKey(e.name),
    name: e.name,
    url: e.url,
    headers: Object.fromEntries(Object.entries(e.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v])),
    secret: e.secret ?? null,
    timeoutMs: durationMs(e.timeout),
    threshold: e.threshold,
    backoffMs: durationMs(e.backoff),
    maxBackoffMs: durationMs(n.maxbackoff),
    maxAttempts: e.maxattempts ?? n.maxattempts,
    format: e.format,
    disabled: e.disabled,
    events: e.events,
    ignoredMediaTypes: [...e.ignoredmediatypes, ...e.ignore.mediatypes],
    ignoredActions: e.ignore.actions,
  }));
}

/** A project policy as a delivery target, with the policy defaults of `notifications:`. */
export function policyTarget(policy: WebhookPolicy, config: BerthConfig): DeliveryTarget {
  const n = config.notifications;
  return {
    key: policyEndpointKey(policy.id),
    url: policy.url,
    headers: policy.authHeader ? { Authorization: policy.authHeader } : {},
    secret: policy.secret,
    timeoutMs: durationMs(n.timeout),
    threshold: 1,
    backoffMs: durationMs(n.backoff),
    maxBackoffMs: durationMs(n.maxbackoff),
    maxAttempts: n.maxattempts,
  };
}

export function configEndpointWants(endpoint: ConfiguredEndpoint, event: WebhookEvent): boolean {
  if (endpoint.disabled) return false;
  if (endpoint.events.length > 0 && !endpoint.events.includes(event.kind)) return false;
  if (event.mediaType && endpoint.ignoredMediaTypes.includes(event.mediaType)) return false;
  const action = WEBHOOK_EVENT_KINDS[event.kind].distribution;
  return !endpoint.ignoredActions.some((ignored) => ignored === event.kind || ignored === action);
}

/** Compiled picomatch globs (cached: policies are re-read every batch, their patterns rarely change). */
const matchers = new Map<string, (value: string) => boolean>();
function matches(patterns: string[], value: string): boolean {
  return patterns.some((pattern) => {
    let matcher = matchers.get(pattern);
    if (!matcher) {
      if (matchers.size > 10_000) matchers.clear();
      matchers.set(pattern, (matcher = picomatch(pattern, { dot: true })));
    }
    return matcher(value);
  });
}

/**
 * A project policy's filters: event kinds; repository globs over the name inside the project
 * (`team/app` for `myproject/team/app`); tag globs over the event's tags (an event without a
 * tag passes only an empty tag filter). Events without a repository (quota, retention) pass
 * the repository and tag filters.
 */
export function policyWants(policy: Pick<WebhookPolicy, 'events' | 'repositories' | 'tags' | 'project'>, event: WebhookEvent): boolean {
  if (event.project !== policy.project) return false;
  if (policy.events.length > 0 && !policy.events.includes(event.kind)) return false;
  if (!event.repository) return true;
  const inProject = event.repository.slice(policy.project.length + 1);
  if (policy.repositories.length > 0 && !matches(policy.repositories, inProject)) return false;
  if (policy.tags.length === 0) return true;
  return event.tags.some((tag) => matches(policy.tags, tag));
}

/** The delay before the next attempt after `failures` failed attempts (Distribution's threshold, then doubling). */
export function retryDelayMs(target: Pick<DeliveryTarget, 'threshold' | 'backoffMs' | 'maxBackoffMs'>, failures: number): number {
  const doublings = Math.max(0, failures - target.threshold);
  return Math.min(target.maxBackoffMs, target.backoffMs * 2 ** Math.min(doublings, 30));
}
