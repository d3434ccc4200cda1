import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { AccessPolicy } from '../auth/access.js';
import type { AuthService } from '../auth/service.js';
import type { Registry } from '../core/registry.js';
import type { GarbageCollector } from '../gc/collector.js';
import type { StorageUsageQueries } from '../gc/ports.js';
import { registerAdminApi } from './api/index.js';
import type { ApiFeatures } from './api/route.js';
import { RegistryError } from '../core/errors.js';
import { claimedIdentity, credentialsReader, identityNotingPolicy, notedIdentity } from './credentials.js';
import { apiIdentity } from './api/index.js';
import { identityName } from '../auth/identity.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { registerUploadLimits } from './limits.js';
import { registerMetrics, type AppMetrics } from './metrics.js';
import { clientErrorHandler, refuseDuplicateHost } from './client-errors.js';
import { registerTokenRoutes, type TokenCertificates } from './token.js';
import { registerV2Routes } from './v2/routes.js';
import { registerUiStatic, type UiStaticOptions } from './ui-static.js';

export interface AppOptions {
  registry: Registry;
  access: AccessPolicy;
  /** Token server and admin API (/token, /api/v1); see src/auth. */
  auth?: AuthService;
  /** Honour X-Forwarded-* (http.trustproxy) for protocol, host and client IP. */
  trustProxy?: boolean;
  logger: Logger;
  /** Milliseconds allowed for a request's headers (slowloris guard). */
  headersTimeout: number;
  /** Milliseconds a connection may sit idle (including mid-body) before it is closed. */
  idleTimeout: number;
  /** Upload transfers one client address may have in flight (limits.uploadsperclient; 0 = no limit). */
  uploadsPerClient?: number;
  /** TLS listener: certificate and key, and with client certificates (src/auth/mtls) their CAs and CRLs. */
  https?: { key: Buffer; cert: Buffer; requestCert?: boolean; rejectUnauthorized?: boolean; ca?: Buffer[]; crl?: string[] };
  /** Client-certificate authentication (http.tls.clientcas): `access` already puts it first on /v2; /token uses it too. */
  clientCertificates?: TokenCertificates;
  /** POST /api/v1/gc and GET /api/v1/storage (src/gc); served with the admin API, so only with `auth`. */
  gc?: { collector: GarbageCollector; usage: StorageUsageQueries };
  /** GET /api/v1/jobs (src/jobs): served with the admin API. */
  jobs?: ApiFeatures['jobs'];
  /** OIDC browser login and CLI secrets (src/auth/oidc); served with the admin API. */
  oidc?: ApiFeatures['oidc'];
  /** Project storage quotas (src/quotas): served with the admin API. */
  quotas?: ApiFeatures['quotas'];
  /** Retention policies and runs (src/retention): served with the admin API. */
  retention?: ApiFeatures['retention'];
  /** Immutable tag rules, tag history and restores (src/tags): served with the admin API. */
  tags?: ApiFeatures['tags'];
  /** Webhook policies and delivery logs (src/webhooks): served with the admin API. */
  webhooks?: ApiFeatures['webhooks'];
  /** Signature trust policies and artifact signature status (src/signatures): served with the admin API. */
  signatures?: ApiFeatures['signatures'];
  /** Vulnerability scans of artifacts (src/scanning): served with the admin API. */
  scanning?: ApiFeatures['scanning'];
  /** Vulnerability pull policies (src/scanning/policy.ts): served with the admin API. */
  vulnPolicy?: ApiFeatures['vulnPolicy'];
  /** SBOMs of images (src/sbom): served with the admin API. */
  sbom?: ApiFeatures['sbom'];
  /** SBOM and scan on push, backfills, rescans (src/scanning/supply-chain.ts): served with the admin API. */
  supplyChain?: ApiFeatures['supplyChain'];
  /** Remote registry endpoints (src/registries): served with the admin API. */
  registries?: ApiFeatures['registries'];
  /** Pull-through cache projects (src/registries) and the default tag TTL of a new one. */
  proxyCache?: ApiFeatures['proxyCache'];
  proxyCacheDefaultTtlMs?: number;
  /** Browser sessions of the web UI (src/auth/sessions.ts): /api/v1/session and cookie sign-in on /api/v1. */
  sessions?: ApiFeatures['sessions'];
  /** The web UI's browse endpoints (src/browse): served with the admin API. */
  browse?: ApiFeatures['browse'];
  /** Replication policies and executions (src/replication): served with the admin API. */
  replication?: ApiFeatures['replication'];
  /** The web UI's built SPA, served at / (ui.enabled; absent: not served). */
  ui?: UiStaticOptions;
  /** Request metrics and GET /metrics (src/metrics); absent with metrics.enabled false. */
  metrics?: AppMetrics;
}

/** Builds the Fastify application: /v2 (OCI distribution API), /healthz, /readyz. */
export function buildApp(options: AppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger,
    // One line per request is logged by our own onResponse hook (with the fields we want).
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    },
    exposeHeadRoutes: false,
    // Repository names and digests make long paths; the /v2 router validates them itself.
    routerOptions: { maxParamLength: 8192 },
    requestTimeout: 0,
    connectionTimeout: options.idleTimeout,
    keepAliveTimeout: 75_000,
    http2: false,
    trustProxy: options.trustProxy ?? false,
    clientErrorHandler,
    // Node enforces headersTimeout only when it sweeps connections (default every 30 s), so a
    // slowloris client would get 30 s instead of http.headerstimeout: sweep at least every second.
    http: { connectionsCheckingInterval: sweepInterval(options.headersTimeout) },
    ...(options.https
      ? { https: { ...options.https, minVersion: 'TLSv1.2' as const, connectionsCheckingInterval: sweepInterval(options.headersTimeout) } }
      : {}),
  }) as unknown as FastifyInstance;
  app.server.headersTimeout = options.headersTimeout;
  recordRoutes(app);
  closeLingeringKeepAlives(app);

  // Bodies are streamed by the handlers themselves (blobs) or read with a size limit
  // (manifests), never parsed up front by the framework.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  // The client address (request.ip: X-Forwarded-For's client with http.trustproxy, else the
  // peer) and, once auth accepted the credentials, who the request acted as.
  const actingAs = (request: FastifyRequest) => notedIdentity(request) ?? (identityName(apiIdentity(request)) || undefined);
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        ip: request.ip,
        user: actingAs(request),
      },
      'request',
    );
  });
  // A client that hangs up mid-request (a killed push) gets no response, so onResponse never
  // fires; log it anyway so operators can see interrupted uploads.
  app.addHook('onRequestAbort', async (request) => {
    request.log.info({ method: request.method, url: request.url, status: 'aborted', ip: request.ip, user: actingAs(request) }, 'request');
  });
  const auth = options.auth;
  if (auth && auth.mode !== 'none') {
    // A refused authorization (403 DENIED, on /v2 or /api/v1) is an audit entry. Auth answers
    // 403 only to a caller whose credentials it accepted, so the name they claim is theirs.
    app.addHook('onError', async (request, _reply, error) => {
      if (!(error instanceof RegistryError) || error.code !== 'DENIED') return;
      const actor = actingAs(request) ?? claimedIdentity(request.headers.authorization) ?? 'anonymous';
      const path = (request.raw.url ?? '').split('?')[0]!.slice(0, 512);
      try {
        await auth.store.audit({
          actor,
          action: 'access.denied',
          target: `${request.method} ${path}`,
          ip: request.ip,
          outcome: 'denied',
          project: deniedProject(path),
          detail: { message: error.message.slice(0, 512) },
        });
      } catch (err) {
        request.log.error({ err }, 'could not write the audit entry of a refused request');
      }
    });
  }
  if (options.metrics) registerMetrics(app, options.metrics, options.auth);
  app.addHook('onRequest', refuseDuplicateHost);
  app.setErrorHandler(errorHandler);
  if (options.ui) {
    // Browser navigations outside /v2, /api… get the SPA's index.html; everything else the JSON 404.
    const spa = registerUiStatic(app, options.ui);
    app.setNotFoundHandler(async (request, reply) => ((await spa(request, reply)) ? reply : notFoundHandler(request, reply)));
  } else {
    app.setNotFoundHandler(notFoundHandler);
  }
  registerUploadLimits(app, options.uploadsPerClient ?? 0);

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    try {
      await options.registry.check();
      return { status: 'ready' };
    } catch (err) {
      return reply.code(503).send({ status: 'unavailable', error: (err as Error).message });
    }
  });

  const access = auth && auth.mode !== 'none' ? identityNotingPolicy(options.access) : options.access;
  registerV2Routes(app, {
    registry: options.registry,
    access,
    credentials: credentialsReader(options.auth?.baseUrl, options.clientCertificates?.peer),
  });
  if (options.auth) {
    if (options.auth.tokens) registerTokenRoutes(app, options.auth, options.clientCertificates);
    registerAdminApi(app, options.auth, {
      oidc: options.oidc,
      gc: options.gc,
      jobs: options.jobs,
      quotas: options.quotas,
      retention: options.retention,
      tags: options.tags,
      webhooks: options.webhooks,
      signatures: options.signatures,
      scanning: options.scanning,
      sbom: options.sbom,
      supplyChain: options.supplyChain,
      vulnPolicy: options.vulnPolicy,
      registries: options.registries,
      proxyCache: options.proxyCache,
      proxyCacheDefaultTtlMs: options.proxyCacheDefaultTtlMs,
      replication: options.replication,
      sessions: options.sessions,
      browse: options.browse,
    });
  }
  return app;
}

/** The project a refused request aimed at (/v2/<project>/…, /api/v1/projects/<project>…): its admins may read the entry. */
function deniedProject(path: string): string | null {
  const match = /^\/v2\/([^/_][^/]*)\//.exec(path) ?? /^\/api\/v1\/projects\/([^/]+)/.exec(path);
  return match ? match[1]! : null;
}

const registered = new WeakMap<FastifyInstance, { method: string; url: string }[]>();

/** Every route registered on `app` (method × URL), as collected at build time. For tests and diagnostics. */
export function registeredRoutes(app: FastifyInstance): readonly { method: string; url: string }[] {
  return registered.get(app) ?? [];
}

function recordRoutes(app: FastifyInstance): void {
  const routes: { method: string; url: string }[] = [];
  registered.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
}

/** How often Node checks connections for headersTimeout: often enough to honour small timeouts. */
function sweepInterval(headersTimeout: number): number {
  return Math.max(250, Math.min(1_000, Math.floor(headersTimeout / 4)));
}

/**
 * On close, Node ends the keep-alive connections that are idle at that instant. One still
 * finishing a response becomes idle a moment later and would then hold close() (and a
 * SIGTERM shutdown) for the whole keepAliveTimeout (75 s). Sweep until none is left.
 */
function closeLingeringKeepAlives(app: FastifyInstance): void {
  app.addHook('preClose', (done) => {
    const sweep = setInterval(() => {
      app.server.closeIdleConnections();
      app.server.getConnections((err, count) => {
        if (err || count === 0) clearInterval(sweep);
      });
    }, 50);
    sweep.unref();
    done();
  });
}
