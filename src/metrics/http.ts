import { CounterFamily, HistogramFamily, type FastCounter, type FastHistogram } from './fast.js';
import type { PromMetrics } from './registry.js';

/**
 * Distribution's route names (registry/api/v2/routes.go, "-" as "_"), plus Berth's referrers:
 * the `handler` label of the `registry_http_*` series. Anything else under /v2 is `unknown`.
 */
export type V2HandlerName =
  'base' | 'catalog' | 'tags' | 'manifest' | 'blob' | 'blob_upload' | 'blob_upload_chunk' | 'referrers' | 'unknown';

/** Distribution's duration buckets (metrics/prometheus.go), so its dashboards' quantiles match. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60];
/** 1 KiB × 2^n up to 4 GiB, as Distribution's size histograms. */
const SIZE_BUCKETS = Array.from({ length: 23 }, (_, n) => 1024 * 2 ** n);

/** The children of one (route, method, code), bound on first use: a request builds no label objects. */
interface Series {
  requests: FastCounter;
  duration: FastHistogram;
  requestBytes: FastCounter;
  responseBytes: FastCounter;
  /** Distribution's size histograms, for /v2 requests only (its request counter and latency are Berth's, relabelled at scrape time). */
  registry: { requestSize: FastHistogram; responseSize: FastHistogram } | null;
}

/** Children of a family by one label value, bound on first use. */
class ByValue<C> {
  private readonly children = new Map<string, C>();
  constructor(private readonly bind: (value: string) => C) {}
  get(value: string): C {
    let child = this.children.get(value);
    if (!child) this.children.set(value, (child = this.bind(value)));
    return child;
  }
}

/**
 * What the HTTP layer reports (src/http/metrics.ts calls it from its hooks): requests, latency,
 * bytes and requests in flight under Berth's names and Distribution's, and what a request
 * says about the registry (a manifest GET that succeeded is a pull) and about auth (401/403,
 * token requests). Label values come from fixed sets, except `project`, which is capped.
 */
export class HttpMetrics {
  private readonly series = new Map<string, Map<string, Map<number, Series>>>();
  private readonly requests: CounterFamily;
  private readonly duration: HistogramFamily;
  private readonly requestBytes: ByValue<FastCounter>;
  private readonly responseBytes: ByValue<FastCounter>;
  private readonly registryRequestSize: ByValue<FastHistogram>;
  private readonly registryResponseSize: ByValue<FastHistogram>;
  private readonly inFlight: FastCounter;
  private readonly registryInFlight: ByValue<FastCounter>;
  private readonly uploadsInFlight: FastCounter;
  private readonly pushes: ByValue<FastCounter>;
  private readonly pulls: ByValue<FastCounter>;
  private readonly deletes: ByValue<FastCounter>;
  private readonly blobBytesSent: FastCounter;
  private readonly authFailures: ByValue<FastCounter>;
  private readonly tokenRequests: ByValue<FastCounter>;
  /** The Distribution handler of each /v2 route template seen (the `registry_http_*` relabelling). */
  private readonly handlers = new Map<string, V2HandlerName>();

  constructor(
    metrics: PromMetrics,
    /** The `project` label of a repository's counters (capped: see ProjectLabels). */
    private readonly projectLabel: (project: string) => string,
  ) {
    const registry = metrics.registry;
    const counter = (name: string, help: string, type: 'counter' | 'gauge' = 'counter') => new CounterFamily(name, help, type, registry);
    const byLabel = (family: CounterFamily, label: string) => new ByValue((value) => family.child({ [label]: value }));
    this.requests = counter('berth_http_requests_total', 'HTTP requests by route template, method and status code');
    this.duration = new HistogramFamily(
      'berth_http_request_duration_seconds',
      'HTTP request latency by route template and method',
      registry,
      DURATION_BUCKETS,
    );
    this.requestBytes = byLabel(counter('berth_http_request_bytes_total', 'Request body bytes received, by route template'), 'route');
    this.responseBytes = byLabel(counter('berth_http_response_bytes_total', 'Response bytes sent, by route template'), 'route');
    this.inFlight = counter('berth_http_requests_in_flight', 'HTTP requests being served', 'gauge').child({});
    // Distribution's request counter and latency carry the same numbers as Berth's for /v2 routes
    // (one route template per handler): rendered from Berth's children at scrape time.
    this.requests.relabelled(
      'registry_http_requests_total',
      'Distribution-compatible: /v2 requests by handler, code and method',
      registry,
      ({ route, method, code }) => {
        const handler = this.handlers.get(route!);
        return handler === undefined ? null : { handler, code: code!, method: method! };
      },
    );
    this.duration.relabelled(
      'registry_http_request_duration_seconds',
      'Distribution-compatible: /v2 request latency by handler and method',
      registry,
      ({ route, method }) => {
        const handler = this.handlers.get(route!);
        return handler === undefined ? null : { handler, method: method! };
      },
    );
    const requestSize = new HistogramFamily(
      'registry_http_request_size_bytes',
      'Distribution-compatible: /v2 request sizes by handler',
      registry,
      SIZE_BUCKETS,
    );
    this.registryRequestSize = new ByValue((handler) => requestSize.child({ handler }));
    const responseSize = new HistogramFamily(
      'registry_http_response_size_bytes',
      'Distribution-compatible: /v2 response sizes by handler',
      registry,
      SIZE_BUCKETS,
    );
    this.registryResponseSize = new ByValue((handler) => responseSize.child({ handler }));
    this.registryInFlight = byLabel(
      counter('registry_http_in_flight_requests', 'Distribution-compatible: /v2 requests being served, by handler', 'gauge'),
      'handler',
    );
    this.uploadsInFlight = counter(
      'berth_registry_uploads_in_flight',
      'Blob upload requests (PATCH, PUT, monolithic POST) transferring now',
      'gauge',
    ).child({});
    this.pushes = byLabel(counter('berth_registry_pushes_total', 'Manifests pushed (PUT answered 201), by project'), 'project');
    this.pulls = byLabel(counter('berth_registry_pulls_total', 'Manifests pulled (GET answered 200), by project'), 'project');
    this.deletes = byLabel(
      counter('berth_registry_deletes_total', 'Manifests and tags deleted (DELETE answered 202), by project'),
      'project',
    );
    this.blobBytesSent = counter(
      'berth_registry_blob_bytes_sent_total',
      'Blob bytes sent to clients (redirected downloads not included)',
    ).child({});
    this.authFailures = byLabel(
      counter('berth_auth_failures_total', 'Requests refused for their credentials (401) or permissions (403)'),
      'code',
    );
    this.tokenRequests = byLabel(
      counter('berth_auth_token_requests_total', 'Token endpoint requests by outcome: issued, refused, ratelimited, invalid, error'),
      'outcome',
    );
  }

  /** A request arrived (`handler` null outside /v2). */
  started(handler: V2HandlerName | null, method: string): void {
    this.inFlight.value++;
    if (handler === null) return;
    this.registryInFlight.get(handler).value++;
    if (isUploadTransfer(handler, method)) this.uploadsInFlight.value++;
  }

  /** The request ended without a response (the client went away). */
  aborted(handler: V2HandlerName | null, method: string): void {
    this.inFlight.value--;
    if (handler === null) return;
    this.registryInFlight.get(handler).value--;
    if (isUploadTransfer(handler, method)) this.uploadsInFlight.value--;
  }

  /**
   * A response was sent. `project` is the repository's first path component (null when the
   * path names none); `route` the template (never the concrete path).
   */
  finished(
    route: string,
    handler: V2HandlerName | null,
    method: string,
    code: number,
    seconds: number,
    requestBytes: number,
    responseBytes: number,
    project: string | null,
  ): void {
    this.aborted(handler, method);
    const series = this.seriesFor(route, handler, method, code);
    series.requests.value++;
    series.duration.observe(seconds);
    series.requestBytes.value += requestBytes;
    series.responseBytes.value += responseBytes;
    if (code === 401 || code === 403) this.authFailures.get(String(code)).value++;
    if (route === '/token') this.tokenRequests.get(tokenOutcome(code)).value++;
    const registry = series.registry;
    if (!registry) return;
    registry.requestSize.observe(requestBytes);
    registry.responseSize.observe(responseBytes);
    if (code < 200 || code > 299) return;
    this.countRegistryWork(handler!, method, code, responseBytes, project);
  }

  /** Pulls, pushes, deletes and blob bytes sent; blob bytes received are counted where they are staged (blob-store.ts). */
  private countRegistryWork(handler: V2HandlerName, method: string, code: number, responseBytes: number, project: string | null): void {
    if (handler === 'blob' && method === 'GET') this.blobBytesSent.value += responseBytes;
    else if (handler === 'manifest' && project !== null) {
      if (method === 'GET' && code === 200) this.pulls.get(this.projectLabel(project)).value++;
      else if (method === 'PUT' && code === 201) this.pushes.get(this.projectLabel(project)).value++;
      else if (method === 'DELETE' && code === 202) this.deletes.get(this.projectLabel(project)).value++;
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

  /** The children of a new (route, method, code); the latency histograms of (route, method) are shared across codes. */
  private bind(route: string, handler: V2HandlerName | null, method: string, code: number): Series {
    const status = String(code);
    if (handler !== null) this.handlers.set(route, handler);
    const sibling = this.series.get(route)?.get(method)?.values().next().value;
    return {
      requests: this.requests.child({ route, method, code: status }),
      duration: sibling?.duration ?? this.duration.child({ route, method }),
      requestBytes: this.requestBytes.get(route),
      responseBytes: this.responseBytes.get(route),
      registry:
        handler === null
          ? null
          : {
              requestSize: this.registryRequestSize.get(handler),
              responseSize: this.registryResponseSize.get(handler),
            },
    };
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
