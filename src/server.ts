import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Server as HttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { openAuth } from './auth/index.js';
import { openClientCertificateAuth } from './auth/mtls/index.js';
import { BrowserSessions } from './auth/sessions.js';
import { BrowseService } from './browse/service.js';
import type { SystemInfo } from './http/api/browse.js';
import { compose, passwordSources, scannerCredentials, type Composition } from './compose.js';
import { durationMs, type BerthConfig } from './config/schema.js';
import type { Registry } from './core/registry.js';
import type { GcComponents } from './gc/index.js';
import type { ClusterMember } from './cluster.js';
import { buildApp } from './http/app.js';
import { listenForMetrics, type AppMetrics } from './http/metrics.js';
import { BerthMetrics } from './metrics/index.js';
import { Scheduler } from './jobs/scheduler.js';
import { reportSecretsAtRest } from './secrets/index.js';
import { openStores, type Stores } from './stores.js';

export interface RunningServer {
  app: FastifyInstance;
  registry: Registry;
  /** Every port, as the composition root opened them. */
  stores: Stores;
  /** Garbage collector and storage accounting (docs/gc.md). */
  gc: GcComponents;
  /** Core, policies, event dispatch and jobs as wired (src/compose.ts). */
  composition: Composition;
  /** The one scheduler of background jobs. */
  scheduler: Scheduler;
  /** Base URL the server listens on, e.g. http://127.0.0.1:5000 */
  url: string;
  /** Where GET /metrics is served (undefined with metrics.enabled false). */
  metricsUrl: string | undefined;
  /** Re-reads http.tls certificate and key (on SIGHUP), so a renewed certificate needs no restart. */
  reloadTls(): void;
  close(): Promise<void>;
}

export function createLogger(config: BerthConfig): Logger {
  return pino({ level: config.log.level, base: { service: 'berth' } });
}

/**
 * Wires configuration → stores → core → HTTP, starts background jobs, and listens. As a worker
 * of a `berth serve` cluster (`member`, src/cluster.ts) it runs the background jobs only in
 * worker 0, answers /metrics with every worker's sum, and names itself in a `Berth-Worker` header.
 */
export async function startServer(
  config: BerthConfig,
  logger: Logger = createLogger(config),
  member: ClusterMember | null = null,
): Promise<RunningServer> {
  const metrics = createMetrics(config, logger);
  if (metrics && member) metrics.prom.joinClusterAggregation();
  const stores = await openStores(config, logger, metrics?.storeInstruments());
  reportSecretsAtRest(config, stores.sealer, logger);
  // Anything that fails while wiring (a missing htpasswd file, an unreadable LDAP CA file, a
  // bad cache binding) releases the stores opened above before the error reaches the caller.
  const { composition, auth } = await (async () => {
    try {
      const composition = compose(config, stores, logger, metrics?.registry);
      // Cache project bindings are read before the first request (core asks `covers` synchronously).
      await composition.proxyCache.cache.start();
      const auth = await openAuth(config, stores.auth, stores.metadata, logger, passwordSources(config, logger, composition.oidc));
      return { composition, auth };
    } catch (err) {
      await stores.close().catch(() => undefined);
      throw err;
    }
  })();
  const { registry, gc } = composition;
  // OIDC's browser login and CLI secrets use auth's keys, token issuer and identity sources; discovery starts now, in the background.
  composition.oidc.attach(auth);
  composition.oidc.warmUp((provider, err) =>
    logger.warn({ provider, err: (err as Error).message }, 'OIDC provider discovery failed; retried at its next use'),
  );
  const scheduler = new Scheduler(logger, stores.leases, stores.jobs, metrics?.jobs);
  for (const job of composition.jobs) scheduler.add(job);
  if (metrics) {
    auth.authenticator.observeLogin = metrics.logins;
    metrics.watch({
      queries: stores.metricsQueries,
      quotas: () => stores.quotas.list(),
      outbox: stores.outbox,
      consumers: composition.events.consumerNames,
      jobRuns: stores.jobs,
      jobNames: () => scheduler.list().map((j) => j.name),
      ready: () => registry.check(),
    });
  }
  const appMetrics: AppMetrics | undefined = metrics
    ? {
        http: metrics.http,
        scrape: member ? () => member.scrape() : () => metrics.scrape(),
        serve: config.metrics.addr === undefined,
        auth: config.metrics.auth,
      }
    : undefined;
  const tls = config.http.tls;
  // Client certificates (http.tls.clientcas, src/auth/mtls): asked for on the TLS listener, in front of auth's policy.
  const clientCerts = tls ? openClientCertificateAuth(tls, auth, logger) : null;
  const secureContext = (): SecureContextOptions => ({
    cert: readFileSync(tls!.certificate),
    key: readFileSync(tls!.key),
    minVersion: 'TLSv1.2',
    ...clientCerts?.listener.contextOptions(),
  });
  const app = buildApp({
    gc: { collector: gc.collector, usage: stores.usage },
    jobs: { list: () => scheduler.list(), history: stores.jobs },
    oidc: composition.oidc,
    quotas: composition.quotas,
    retention: composition.retention,
    tags: composition.tags,
    webhooks: composition.webhooks.service,
    signatures: composition.signatures,
    scanning: composition.scanning,
    vulnPolicy: composition.vulnPolicy,
    sbom: composition.sbom,
    supplyChain: composition.supplyChain,
    registries: composition.registries,
    proxyCache: composition.proxyCache.service,
    proxyCacheDefaultTtlMs: durationMs(config.proxy.tagttl),
    replication: composition.replication,
    sessions: new BrowserSessions(stores.sessions, auth.authenticator, {
      ttlMs: durationMs(config.ui.sessionttl),
      idleMs: durationMs(config.ui.sessionidle),
    }),
    browse: {
      service: new BrowseService(stores.browse, composition.signatures),
      registry,
      system: systemInfo(config),
      runJob: (name) => scheduler.runNow(name),
      jobNames: () => scheduler.list().map((j) => j.name),
      oidcProviders: () =>
        composition.oidc
          .list('')
          .filter((p) => p.login !== null)
          .map((p) => ({ name: p.name, displayName: p.name })),
    },
    registry,
    access: clientCerts?.policy ?? auth.policy,
    auth,
    clientCertificates: clientCerts
      ? { peer: (socket) => clientCerts.listener.peer(socket), authenticator: clientCerts.authenticator }
      : undefined,
    trustProxy: config.http.trustproxy,
    logger,
    headersTimeout: durationMs(config.http.headerstimeout),
    idleTimeout: durationMs(config.http.idletimeout),
    uploadsPerClient: config.limits.uploadsperclient,
    https: tls ? { cert: readFileSync(tls.certificate), key: readFileSync(tls.key), ...clientCerts?.listener.serverOptions() } : undefined,
    metrics: appMetrics,
    ui: config.ui.enabled ? { root: path.resolve(config.ui.root ?? defaultUiRoot()) } : undefined,
  });

  // A changed CRL file applies without a restart; connections verified before are closed.
  clientCerts?.listener.attach(app.server as HttpsServer, () => (app.server as HttpsServer).setSecureContext(secureContext()));
  if (member) {
    const worker = String(member.index);
    app.addHook('onRequest', (_request, reply, done) => {
      reply.header('berth-worker', worker);
      done();
    });
  }
  // In a cluster, worker 0 runs the background jobs; every worker flushes its own pull counts.
  scheduler.start(member && !member.jobs ? (job) => job.local === true : undefined);

  const { host, port } = splitAddr(config.http.addr);
  await app.listen({ host, port });
  const address = app.server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${tls ? 'https' : 'http'}://${shownHost === '0.0.0.0' ? '127.0.0.1' : shownHost}:${address.port}`;
  const storage = config.storage.s3
    ? `s3://${config.storage.s3.bucket}/${config.storage.s3.rootdirectory ?? ''}`
    : config.storage.filesystem?.rootdirectory;
  if (member) {
    logger.info({ url, worker: member.index, pid: process.pid }, 'worker is listening');
    member.listening(url);
  } else {
    logger.info({ url, storage, metadata: config.metadata.driver }, 'berth is listening');
  }
  // A Harbor scanner adapter pulls from Berth with pull-only tokens for the repository it scans.
  composition.scanning.remote?.attach(scannerCredentials(config, auth), config.scanning.scanner.registryurl ?? config.http.host ?? url);
  const metricsListener =
    appMetrics && config.metrics.addr ? await listenForMetrics(...hostPort(config.metrics.addr), appMetrics.scrape) : undefined;
  if (metricsListener) logger.info({ url: `${metricsListener.url}/metrics` }, 'metrics are served on their own listener');

  return {
    app,
    registry,
    stores,
    gc,
    composition,
    scheduler,
    url,
    metricsUrl: metricsListener ? `${metricsListener.url}/metrics` : appMetrics ? `${url}/metrics` : undefined,
    reloadTls() {
      if (!tls) return;
      try {
        (app.server as HttpsServer).setSecureContext(secureContext());
        logger.info({ certificate: tls.certificate }, 'reloaded TLS certificate');
        // The client CAs and CRLs were read again too: connections verified before are closed.
        clientCerts?.listener.crlChanged(() => undefined);
      } catch (err) {
        // A half-written or unreadable renewal must not take the registry down: keep serving the old one.
        logger.error({ err, certificate: tls.certificate }, 'TLS reload failed; still serving the previous certificate');
      }
    },
    async close() {
      auth.close();
      clientCerts?.listener.close();
      // Prometheus keeps its scrape connection alive: end it, or close() would wait for it.
      metricsListener?.server.close();
      metricsListener?.server.closeAllConnections();
      await app.close();
      // Blob downloads of the pull-through cache finish storing before the stores close.
      await composition.proxyCache.cache.stop();
      await scheduler.stop();
      // Pull counts gathered since the last flush; a failure only loses statistics.
      await composition.pulls.flush().catch((err: unknown) => logger.warn({ err }, 'could not write the last pull counts'));
      await stores.close();
    },
  };
}

/** The process's metrics (null with metrics.enabled false); gauge queries that fail are logged, scrapes still answer. */
function createMetrics(config: BerthConfig, logger: Logger): BerthMetrics | null {
  if (!config.metrics.enabled) return null;
  const settings = {
    refreshMs: durationMs(config.metrics.refresh),
    projectLabels: config.metrics.projectlabels,
    storageCapacityBytes: config.metrics.storagecapacity,
  };
  return new BerthMetrics(settings, (metric, err) =>
    logger.warn({ err, metric }, 'a metrics gauge could not be computed; it keeps its last value'),
  );
}

/** What GET /api/v1/system/info reports: the version and which features this configuration has. */
function systemInfo(config: BerthConfig): SystemInfo {
  const pkg = [new URL('../package.json', import.meta.url), new URL('../../package.json', import.meta.url)].find((u) => existsSync(u));
  const version = pkg ? (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version : 'unknown';
  return {
    version,
    registryHost: config.http.host ? new URL(config.http.host).host : null,
    features: {
      auth: config.auth.mode !== 'none',
      quotas: true,
      retention: true,
      immutableTags: true,
      tagHistory: true,
      webhooks: true,
      signatures: true,
      scanning: true,
      sbom: true,
      replication: true,
      proxyCache: true,
      gc: config.storage.delete.enabled,
      oidc: config.auth.oidc.providers.length > 0,
      metrics: config.metrics.enabled,
      readOnly: config.storage.maintenance.readonly.enabled,
    },
  };
}

/** dist/ui of the installation (next to package.json, from src/ under tsx or from the built output). */
function defaultUiRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const base =
    [path.resolve(here, '..'), path.resolve(here, '../..')].find((dir) => existsSync(path.join(dir, 'package.json'))) ?? process.cwd();
  return path.join(base, 'dist/ui');
}

function hostPort(addr: string): [string, number] {
  const { host, port } = splitAddr(addr);
  return [host, port];
}

export function splitAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0';
  return { host, port: Number(addr.slice(i + 1)) };
}
