import type { Counter, Gauge, Histogram } from 'prom-client';
import type { PromMetrics } from './registry.js';

/**
 * Distribution's route names (registry/api/v2/routes.go, "-" as "_"), plus Berth's referrers:
 * the `handler` label of the `registry_http_*` series. Anything else under /v2 is `unknown`.
 */
export type V2HandlerName = 'base' | 'catalog' | 'tags' | 'manifest' | 'blob' | 'blob_upload' | 'blob_upload_chunk' | 'referrers' | 'unknown';

/** Distribution's duration buckets (metrics/prometheus.go), so its dashboards' quantiles match. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60];
/** 1 KiB × 2^n up to 4 GiB, as Distribution's size histograms. */
const SIZE_BUCKETS = Array.from({ length: 23 }, (_, n) => 1024 * 2 ** n);

/** The pre-bound children of one (route, method, code): no label objects are built per request. */
interface Series {
  requests: Counter.Internal;
  duration: Histogram.Internal<string>;
  requestBytes: Counter.Internal;
  responseBytes: Counter.Internal;
  /** Distribution's series, for /v2 requests only. */
  registry: { requests: Counter.Internal; duration: Histogram.Internal<string>; requestSize: Histogram.Internal<string>; responseSize: Histogram.Internal<string> } | null;
}

/**
 * What the HTTP layer reports (src/http/metrics.ts calls it from its hooks): requests, latency,
 * bytes and requests in flight under Berth's names and Distribution's, and what a request
 * says about the registry (a manifest GET that succeeded is a pull) and about auth (401/403,
 * token requests). Label values come from fixed sets, except `project`, which is capped.
 */
export class HttpMetrics {
  private readonly series = new Map<string, Map<string, Map<number, Series>>>();
  private readonly requests: Counter<'route' | 'method' | 'code'>;
  private readonly duration: Histogram<'route' | 'method'>;
  private readonly requestBytes: Counter<'route'>;
  private readonly responseBytes: Counter<'route'>;
  private readonly inFlight: Gauge;
  private readonly registryRequests: Counter<'handler' | 'code' | 'method'>;
  private readonly registryDuration: Histogram<'handler' | 'method'>;
  private readonly registryRequestSize: Histogram<'handler'>;
  private readonly registryResponseSize: Histogram<'handler'>;
  private readonly registryInFlight: Gauge<'handler'>;
  private readonly registryInFlightChildren = new Map<string, Gauge.Internal<'handler'>>();
  private readonly uploadsInFlight: Gauge;
  private readonly pushes: Counter<'project'>;
  private readonly pulls: Counter<'project'>;
  private readonly deletes: Counter<'project'>;
  private readonly blobBytesSent: Counter;
  private readonly authFailures: Counter<'code'>;
  private readonly tokenRequests: Counter<'outcome'>;

  constructor(
    metrics: PromMetrics,
    /** The `project` label of a repository's counters (capped: see ProjectLabels). */
    private readonly projectLabel: (project: string) => string,
  ) {
    this.requests = metrics.counter({ name: 'berth_http_requests_total', help: 'HTTP requests by route template, method and status code', labels: ['route', 'method', 'code'] }).prom;
    this.duration = metrics.histogram({ name: 'berth_http_request_duration_seconds', help: 'HTTP request latency by route template and method', labels: ['route', 'method'], buckets: DURATION_BUCKETS }).prom;
    this.requestBytes = metrics.counter({ name: 'berth_http_request_bytes_total', help: 'Request body bytes received, by route template', labels: ['route'] }).prom;
    this.responseBytes = metrics.counter({ name: 'berth_http_response_bytes_total', help: 'Response bytes sent, by route template', labels: ['route'] }).prom;
    this.inFlight = metrics.gauge({ name: 'berth_http_requests_in_flight', help: 'HTTP requests being served' }).prom;
    this.registryRequests = metrics.counter({ name: 'registry_http_requests_total', help: 'Distribution-compatible: /v2 requests by handler, code and method', labels: ['handler', 'code', 'method'] }).prom;
    this.registryDuration = metrics.histogram({ name: 'registry_http_request_duration_seconds', help: 'Distribution-compatible: /v2 request latency by handler and method', labels: ['handler', 'method'], buckets: DURATION_BUCKETS }).prom;
    this.registryRequestSize = metrics.histogram({ name: 'registry_http_request_size_bytes', help: 'Distribution-compatible: /v2 request sizes by handler', labels: ['handler'], buckets: SIZE_BUCKETS }).prom;
    this.registryResponseSize = metrics.histogram({ name: 'registry_http_response_size_bytes', help: 'Distribution-compatible: /v2 response sizes by handler', labels: ['handler'], buckets: SIZE_BUCKETS }).prom;
    this.registryInFlight = metrics.gauge({ name: 'registry_http_in_flight_requests', help: 'Distribution-compatible: /v2 requests being served, by handler', labels: ['handler'] }).prom;
    this.uploadsInFlight = metrics.gauge({ name: 'berth_registry_uploads_in_flight', help: 'Blob upload requests (PATCH, PUT, monolithic POST) transferring now' }).prom;
    this.pushes = metrics.counter({ name: 'berth_registry_pushes_total', help: 'Manifests pushed (PUT answered 201), by project', labels: ['project'] }).prom;
    this.pulls = metrics.counter({ name: 'berth_registry_pulls_total', help: 'Manifests pulled (GET answered 200), by project', labels: ['project'] }).prom;
    this.deletes = metrics.counter({ name: 'berth_registry_deletes_total', help: 'Manifests and tags deleted (DELETE answered 202), by project', labels: ['project'] }).prom;
    this.blobBytesSent = metrics.counter({ name: 'berth_registry_blob_bytes_sent_total', help: 'Blob bytes sent to clients (redirected downloads not included)' }).prom;
    this.authFailures = metrics.counter({ name: 'berth_auth_failures_total', help: 'Requests refused for their credentials (401) or permissions (403)', labels: ['code'] }).prom;
    this.tokenRequests = metrics.counter({ name: 'berth_auth_token_requests_total', help: 'Token endpoint requests by outcome: issued, refused, ratelimited, invalid, error', labels: ['outcome'] }).prom;
  }

  /** A request arrived (`handler` null outside /v2). */
  started(handler: V2HandlerName | null, method: string): void {
    this.inFlight.inc();
    if (handler === null) return;
    this.registryInFlightChild(handler).inc();
    if (isUploadTransfer(handler, method)) this.uploadsInFlight.inc();
  }

  /** The request ended without a response (the client went away). */
  aborted(handler: V2HandlerName | null, method: string): void {
    this.inFlight.dec();
    if (handler === null) return;
    this.registryInFlightChild(handler).dec();
    if (isUploadTransfer(handler, method)) this.uploadsInFlight.dec();
  }

  /**
   * A response was sent. `project` is the repository's first path component (null when the
   * path names none); `route` the template (never the concrete path).
   */
  finished(route: string, handler: V2HandlerName | null, method: string, code: number, seconds: number, requestBytes: number, responseBytes: number, project: string | null): void {
    this.aborted(handler, method);
    const series = this.seriesFor(route, handler, method, code);
    series.requests.inc();
    series.duration.observe(seconds);
    if (requestBytes > 0) series.requestBytes.inc(requestBytes);
    if (responseBytes > 0) series.responseBytes.inc(responseBytes);
    if (code === 401 || code === 403) this.authFailures.inc({ code: String(code) });
    if (route === '/token') this.tokenRequests.inc({ outcome: tokenOutcome(code) });
    const registry = series.registry;
    if (!registry) return;
    registry.requests.inc();
    registry.duration.observe(seconds);
    registry.requestSize.observe(requestBytes);
    registry.responseSize.observe(responseBytes);
    if (code < 200 || code > 299) return;
    this.countRegistryWork(handler!, method, code, responseBytes, project);
  }

  /** Pulls, pushes, deletes and blob bytes sent; blob bytes received are counted where they are staged (blob-store.ts). */
  private countRegistryWork(handler: V2HandlerName, method: string, code: number, responseBytes: number, project: string | null): void {
    if (handler === 'blob' && method === 'GET') this.blobBytesSent.inc(responseBytes);
    else if (handler === 'manifest' && project !== null) {
      if (method === 'GET' && code === 200) this.pulls.inc({ project: this.projectLabel(project) });
      else if (method === 'PUT' && code === 201) this.pushes.inc({ project: this.projectLabel(project) });
      else if (method === 'DELETE' && code === 202) this.deletes.inc({ project: this.projectLabel(project) });
    }
  }

  private seriesFor(route: string, handler: V2HandlerName | null, method: string, code: number): Series {
    let byMethod = this.series.get(route);
    if (!byMethod) this.series.set(route, (byMethod = new Map()));
    let byCode = byMethod.get(method);
    if (!byCode) byMethod.set(method, (byCode = new Map()));
    let series = byCode.get(code);
    if (!series) byCode.set(code, (series = this.bind(route, handler, method, code)));
    return series;
  }

  private bind(route: string, handler: V2HandlerName | null, method: string, code: number): Series {
    const status = String(code);
    return {
      requests: this.requests.labels({ route, method, code: status }),
      duration: this.duration.labels({ route, method }),
      requestBytes: this.requestBytes.labels({ route }),
      responseBytes: this.responseBytes.labels({ route }),
      registry:
        handler === null
          ? null
          : {
              requests: this.registryRequests.labels({ handler, code: status, method }),
              duration: this.registryDuration.labels({ handler, method }),
              requestSize: this.registryRequestSize.labels({ handler }),
              responseSize: this.registryResponseSize.labels({ handler }),
            },
    };
  }

  private registryInFlightChild(handler: V2HandlerName): Gauge.Internal<'handler'> {
    let child = this.registryInFlightChildren.get(handler);
    if (!child) this.registryInFlightChildren.set(handler, (child = this.registryInFlight.labels({ handler })));
    return child;
  }
}

/** A request that carries blob bytes: PATCH/PUT of an upload session, or a monolithic POST. */
function isUploadTransfer(handler: V2HandlerName, method: string): boolean {
  return handler === 'blob_upload_chunk' ? method === 'PATCH' || method === 'PUT' : handler === 'blob_upload' && method === 'POST';
}

function tokenOutcome(code: number): string {
  if (code >= 200 && code < 300) return 'issued';
  if (code === 401 || code === 403) return 'refused';
  if (code === 429) return 'ratelimited';
  return code < 500 ? 'invalid' : 'error';
}
