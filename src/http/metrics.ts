import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthService } from '../auth/service.js';
import type { HttpMetrics, V2HandlerName } from '../metrics/http.js';
import { credentialsReader } from './credentials.js';

/** What buildApp needs to measure requests and, unless a separate listener serves it, to answer GET /metrics. */
export interface AppMetrics {
  http: HttpMetrics;
  /** The Prometheus text exposition and its content type. */
  scrape(): Promise<{ contentType: string; body: string }>;
  /** Serve GET /metrics on this listener (false when metrics.addr names a listener of its own). */
  serve: boolean;
  /** metrics.auth: 'admin' asks for a system admin's credentials (Basic or an API token); 'none' leaves it open. */
  auth: 'admin' | 'none';
}

/** Route templates of the /v2 handlers: the `route` label, never the concrete path. */
const V2_ROUTES: Record<V2HandlerName, string> = {
  base: '/v2/',
  catalog: '/v2/_catalog',
  tags: '/v2/{name}/tags/list',
  manifest: '/v2/{name}/manifests/{reference}',
  blob: '/v2/{name}/blobs/{digest}',
  blob_upload: '/v2/{name}/blobs/uploads/',
  blob_upload_chunk: '/v2/{name}/blobs/uploads/{uuid}',
  referrers: '/v2/{name}/referrers/{digest}',
  unknown: '/v2/*',
};

/**
 * Per-request state lives in request decorations (numbers and a string set once), so the hooks
 * allocate nothing per request. `metricsStart` is the socket's byte count when the request
 * arrived, -1 once the request has been counted (a response and an abort never count twice).
 */
declare module 'fastify' {
  interface FastifyRequest {
    metricsHandler: V2HandlerName | null;
    metricsRead: number;
    metricsWritten: number;
  }
}

/** Measures every request (hooks on the root instance) and serves GET /metrics when asked to. */
export function registerMetrics(app: FastifyInstance, metrics: AppMetrics, auth: AuthService | undefined): void {
  const http = metrics.http;
  app.decorateRequest('metricsHandler', null);
  app.decorateRequest('metricsRead', -1);
  app.decorateRequest('metricsWritten', 0);
  app.addHook('onRequest', (request, _reply, done) => {
    const path = pathOf(request);
    request.metricsHandler = path.startsWith('/v2') && (path.length === 3 || path[3] === '/') ? v2Handler(path) : null;
    const socket = request.raw.socket;
    request.metricsRead = socket.bytesRead;
    request.metricsWritten = socket.bytesWritten;
    http.started(request.metricsHandler, request.method);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    if (request.metricsRead >= 0) {
      const handler = request.metricsHandler;
      const socket = request.raw.socket;
      const route = handler === null ? (request.routeOptions.url ?? 'unmatched') : V2_ROUTES[handler];
      const project = handler === null || handler === 'base' || handler === 'catalog' ? null : projectOf(pathOf(request));
      http.finished(
        route,
        handler,
        request.method,
        reply.statusCode,
        reply.elapsedTime / 1000,
        requestBytes(request, socket.bytesRead - request.metricsRead),
        socket.bytesWritten - request.metricsWritten,
        project,
      );
      request.metricsRead = -1;
    }
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    if (request.metricsRead >= 0) http.aborted(request.metricsHandler, request.method);
    request.metricsRead = -1;
    done();
  });

  if (!metrics.serve) return;
  const credentials = credentialsReader(auth?.baseUrl);
  app.get('/metrics', async (request, reply) => {
    if (auth && metrics.auth === 'admin') await auth.authorizeApi(credentials(request), 'admin');
    const { contentType, body } = await metrics.scrape();
    return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body);
  });
}

/**
 * metrics.addr: GET /metrics, and nothing else, on a listener of its own (as Distribution's
 * http.debug.addr), open to whoever can reach that address: bind it to an internal interface.
 */
export async function listenForMetrics(host: string, port: number, scrape: AppMetrics['scrape']): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
      return;
    }
    scrape().then(
      ({ contentType, body }) =>
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics are unavailable\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { server, url: `http://${shown === '0.0.0.0' ? '127.0.0.1' : shown}:${address.port}` };
}

/**
 * The body's size: Content-Length when given; else (a chunked stream) what the socket read while
 * the request was served, which misses the part that came in with the headers.
 */
function requestBytes(request: FastifyRequest, socketBytes: number): number {
  const length = request.headers['content-length'];
  return length === undefined ? socketBytes : Number(length) || 0;
}

function pathOf(request: FastifyRequest): string {
  const url = request.raw.url ?? '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/**
 * The Distribution handler a /v2 path goes to, from its last two segments (a label, not
 * routing: src/http/v2/routes.ts decides where the request really goes).
 */
export function v2Handler(path: string): V2HandlerName {
  if (path === '/v2' || path === '/v2/') return 'base';
  if (path === '/v2/_catalog') return 'catalog';
  if (path.endsWith('/tags/list')) return 'tags';
  const last = path.lastIndexOf('/');
  const parentStart = path.lastIndexOf('/', last - 1);
  const parent = path.slice(parentStart + 1, last);
  switch (parent) {
    case 'manifests':
      return 'manifest';
    case 'referrers':
      return 'referrers';
    case 'blobs':
      return path.endsWith('/uploads') ? 'blob_upload' : 'blob';
    case 'uploads':
      if (path.endsWith('/blobs/uploads/')) return 'blob_upload';
      return path.slice(path.lastIndexOf('/', parentStart - 1) + 1, parentStart) === 'blobs' ? 'blob_upload_chunk' : 'unknown';
    default:
      return 'unknown';
  }
}

/** A repository's project: the first component of its name (/v2/<project>/…). */
function projectOf(path: string): string | null {
  const end = path.indexOf('/', 4);
  return end > 4 ? path.slice(4, end) : null;
}
