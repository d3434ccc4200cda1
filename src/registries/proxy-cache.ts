import { RegistryClientError, blobRequests, manifestRequests, nodeBody, type OciClient } from '../client/index.js';
import { discard } from '../client/transport.js';
import { digestOf, isDigest } from '../core/digest.js';
import { RegistryError } from '../core/errors.js';
import { parseManifest } from '../core/manifest.js';
import type { MetricsRegistry } from '../core/metrics.js';
import { projectOf } from '../core/names.js';
import type { ManifestRecord } from '../core/ports.js';
import type { ReadThrough } from '../core/read-through.js';
import type { BlobHandle } from '../core/registry.js';
import { BlobFills, type FillDeps } from './blob-fill.js';
import { proxyRefusal } from './proxy-policy.js';
import { openRegistryClient } from './open-client.js';
import type { RegistryEndpoint, RegistryEndpointStore } from './ports.js';
import type { CoreContent, ProxyCacheStore, ProxyProject } from './proxy-ports.js';

/** Distribution's `proxy:` section: the whole registry as a mirror of one upstream. */
export interface MirrorConfig {
  remoteurl: string;
  username?: string;
  password?: string;
  /** Tag revalidation TTL (ms). */
  tagTtlMs: number;
}

export interface ProxyCacheOptions {
  /** How long to wait for an upstream's response headers before serving cached content or failing (ms). */
  upstreamTimeoutMs: number;
  /** How often the project bindings are re-read (other replicas' changes), ms. */
  refreshMs: number;
  /** Default tag TTL of a new cache project (ms). */
  defaultTagTtlMs: number;
  /** `proxy.keepdeletedtags`: a tag deleted upstream stays pullable unless a binding says otherwise. */
  keepDeletedTags: boolean;
  /** Core's manifests and tags: cached content is read from and stored into them. */
  core: CoreContent;
  /** The size of a blob linked into a repository, or null (core's linkedBlob): re-checked before a download starts. */
  linked?(repository: string, digest: string): Promise<{ size: number } | null>;
  /** Told about every blob download that failed (for the log). */
  onFillFailed?(repository: string, digest: string, err: Error): void;
}

/** The upstream of one covered repository. */
interface Upstream {
  /** What the upstream is called in messages: the endpoint's name (or `proxy.remoteurl`). */
  label: string;
  client: OciClient;
  /** The repository's name upstream. */
  name: string;
  tagTtlMs: number;
  /** A tag the upstream answers 404 for on revalidation stays pullable (else it is deleted from the cache). */
  keepDeletedTags: boolean;
}

type Kind = 'manifest' | 'blob';

export interface ProxyMetrics {
  hit(kind: Kind): void;
  miss(kind: Kind): void;
  upstreamBytes(n: number): void;
  upstreamError(reason: string): void;
  coalesced(kind: Kind): void;
}

export function proxyMetrics(metrics: MetricsRegistry): ProxyMetrics {
  const hits = metrics.counter<'kind'>({
    name: 'berth_proxy_cache_hits_total',
    help: 'Pull-through cache reads served from the cache (kind: manifest, blob)',
    labels: ['kind'],
  });
  const misses = metrics.counter<'kind'>({
    name: 'berth_proxy_cache_misses_total',
    help: 'Pull-through cache reads fetched from the upstream (kind: manifest, blob)',
    labels: ['kind'],
  });
  const joined = metrics.counter<'kind'>({
    name: 'berth_proxy_cache_coalesced_total',
    help: 'Pull-through cache misses that joined a fetch already running (no upstream request of their own)',
    labels: ['kind'],
  });
  const bytes = metrics.counter({ name: 'berth_proxy_cache_upstream_bytes_total', help: 'Blob bytes received from upstreams' });
  const errors = metrics.counter<'reason'>({
    name: 'berth_proxy_cache_upstream_errors_total',
    help: 'Failed upstream requests (reason: unreachable, timeout, ratelimited, denied, status, digest, body = a blob download that failed midway)',
    labels: ['reason'],
  });
  return {
    hit: (kind) => hits.inc({ kind }),
    miss: (kind) => misses.inc({ kind }),
    coalesced: (kind) => joined.inc({ kind }),
    upstreamBytes: (n) => bytes.inc(undefined, n),
    upstreamError: (reason) => errors.inc({ reason }),
  };
}

/** The name a repository of a cache project has upstream: namespace prefix, Docker Hub's `library/`. */
export function upstreamName(
  binding: Pick<ProxyProject, 'project' | 'namespace'>,
  kind: RegistryEndpoint['kind'],
  repository: string,
): string {
  const rest = repository.slice(binding.project.length + 1);
  if (binding.namespace) return `${binding.namespace}/${rest}`;
  if (kind === 'docker-hub' && !rest.includes('/')) return `library/${rest}`;
  return rest;
}

/**
 * The pull-through cache: core's ReadThrough for repositories of cache projects (or every
 * repository with `proxy.remoteurl`). What it fetches is stored in core as system writes
 * (manifests and tags through core's manifest write path, blobs linked through the blob.commit
 * hook), so listings, quotas, retention and GC see cached content like pushed content; its own
 * table (ProxyCacheStore) keeps when the upstream last confirmed each tag. See docs/proxy-cache.md.
 */
export class ProxyCache implements ReadThrough {
  private bindings = new Map<string, ProxyProject>();
  private readonly clients = new Map<number, { updatedAt: number; endpoint: RegistryEndpoint; client: OciClient }>();
  private readonly mirrorClient: OciClient | null;
  private readonly inflight = new Map<string, Promise<unknown>>();
  private readonly fills: BlobFills;
  private readonly blobs: FillDeps['blobs'];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: ProxyCacheStore,
    private readonly endpoints: RegistryEndpointStore,
    fill: Omit<FillDeps, 'onBytes'>,
    private readonly options: ProxyCacheOptions,
    private readonly metrics: ProxyMetrics,
    private readonly mirror: MirrorConfig | null = null,
  ) {
    this.blobs = fill.blobs;
    this.fills = new BlobFills({
      ...fill,
      link: (repository, digest, size, lastAppendAt) =>
        this.serialised(repository, () => withRetries(() => fill.link(repository, digest, size, lastAppendAt))),
      idleTimeoutMs: options.upstreamTimeoutMs,
      onBytes: (n) => metrics.upstreamBytes(n),
      onFailed: (repository, digest, err) => {
        metrics.upstreamError('body');
        options.onFillFailed?.(repository, digest, err);
      },
    });
    this.mirrorClient = mirror
      ? openRegistryClient(
          {
            url: mirror.remoteurl,
            username: mirror.username ?? null,
            credential: mirror.password ?? null,
            insecure: false,
            caBundle: null,
          },
          { retry: { attempts: 2 } },
        )
      : null;
  }

  /** Loads the bindings and re-reads them every refreshMs (bindings changed on another replica). */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), this.options.refreshMs);
    this.timer.unref();
  }

  /** Stops the refresh timer and lets blob downloads in progress finish storing (at most 10 s). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.fills.drain(10_000);
  }

  async refresh(): Promise<void> {
    const projects = await this.store.projects();
    this.bindings = new Map(projects.map((p) => [p.project, p]));
  }

  /** The project's binding, or null (a project that is not a cache). */
  binding(project: string): ProxyProject | null {
    return this.bindings.get(project) ?? null;
  }

  /** True for every repository when Berth is a mirror (`proxy.remoteurl`). */
  get mirrorMode(): boolean {
    return this.mirror !== null;
  }

  refusal(repository: string): Error {
    return (
      proxyRefusal(this, this.mirror?.remoteurl ?? null, repository) ??
      new RegistryError('DENIED', `repository ${repository} is read-through`)
    );
  }

  covers(repository: string): boolean {
    return this.mirror !== null || this.bindings.has(projectOf(repository));
  }

  private async upstream(repository: string): Promise<Upstream> {
    if (this.mirror)
      return {
        label: this.mirror.remoteurl,
        client: this.mirrorClient!,
        name: repository,
        tagTtlMs: this.mirror.tagTtlMs,
        keepDeletedTags: this.options.keepDeletedTags,
      };
    const binding = this.bindings.get(projectOf(repository));
    if (!binding) throw new RegistryError('NAME_UNKNOWN', `repository ${repository} is not in a cache project`);
    let entry = this.clients.get(binding.endpointId);
    if (!entry || entry.updatedAt + this.options.refreshMs < Date.now()) {
      const endpoint = await this.endpoints.byId(binding.endpointId);
      if (!endpoint)
        throw new RegistryError('UPSTREAM_FAILED', `the upstream endpoint of cache project ${binding.project} no longer exists`);
      if (!entry || entry.endpoint.updatedAt !== endpoint.updatedAt) {
        entry = { updatedAt: Date.now(), endpoint, client: openRegistryClient(endpoint, { retry: { attempts: 2 } }) };
      } else entry.updatedAt = Date.now();
      this.clients.set(binding.endpointId, entry);
    }
    return {
      label: `${entry.endpoint.name} (${entry.endpoint.url})`,
      client: entry.client,
      name: upstreamName(binding, entry.endpoint.kind, repository),
      tagTtlMs: binding.tagTtlMs,
      keepDeletedTags: binding.keepDeletedTags ?? this.options.keepDeletedTags,
    };
  }

  private readonly linking = new Map<string, Promise<unknown>>();

  /**
   * Runs the links of one repository one after the other in this process: concurrent fills of
   * a new repository would otherwise race to create its row (MySQL answers with deadlocks).
   */
  private serialised<T>(repository: string, work: () => Promise<T>): Promise<T> {
    const previous = this.linking.get(repository) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => undefined);
    this.linking.set(repository, tail);
    void tail.then(() => {
      if (this.linking.get(repository) === tail) this.linking.delete(repository);
    });
    return next;
  }

  /** Runs `work` once for concurrent callers with the same key. */
  private coalesce<T>(key: string, kind: Kind, work: () => Promise<T>): Promise<T> {
    const running = this.inflight.get(key) as Promise<T> | undefined;
    if (running) {
      this.metrics.coalesced(kind);
      return running;
    }
    const started = work().finally(() => this.inflight.delete(key));
    this.inflight.set(key, started);
    return started;
  }

  private signal(): AbortSignal {
    return AbortSignal.timeout(this.options.upstreamTimeoutMs);
  }

  // ── Manifests ──────────────────────────────────────────────────────────

  async manifest(repository: string, reference: string, _accept: string | undefined): Promise<ManifestRecord | null> {
    const core = this.options.core;
    if (isDigest(reference)) {
      const stored = await core.byDigest(repository, reference);
      if (stored) {
        this.metrics.hit('manifest');
        return stored;
      }
      this.metrics.miss('manifest');
      const up = await this.upstream(repository);
      return this.coalesce(`m:${repository}@${reference}`, 'manifest', async () => {
        // Stored by a fetch that ended between the lookup above and now.
        const now = await core.byDigest(repository, reference);
        if (now) return now;
        try {
          return await this.fetchManifest(up, repository, reference);
        } catch (err) {
          throw this.upstreamFailure(up, err, `manifest ${reference} of ${up.name}`);
        }
      });
    }
    // Core holds the tag; the cache's own row says when the upstream last confirmed that digest.
    const cached = await core.byTag(repository, reference);
    const tag = cached ? await this.store.tag(repository, reference) : null;
    const validatedAt = tag && tag.digest === cached!.digest ? tag.validatedAt : 0;
    const up = await this.upstream(repository);
    if (cached && Date.now() - validatedAt < up.tagTtlMs) {
      this.metrics.hit('manifest');
      return cached;
    }
    return this.coalesce(`t:${repository}:${reference}`, 'manifest', async () => {
      // A fetch that ended between the lookup above and now has stored (or revalidated) the tag.
      const now = await this.store.tag(repository, reference);
      if (now && now.validatedAt > validatedAt && Date.now() - now.validatedAt < up.tagTtlMs) {
        const fresh = await core.byTag(repository, reference);
        if (fresh && fresh.digest === now.digest) {
          this.metrics.hit('manifest');
          return fresh;
        }
      }
      if (cached) {
        // Revalidate with a HEAD (free of Docker Hub's pull rate limit); on any upstream trouble serve what we have.
        let info: string | null;
        try {
          info = await this.headManifest(up, reference);
        } catch (err) {
          this.upstreamFailure(up, err, `tag ${reference} of ${up.name}`);
          this.metrics.hit('manifest');
          return cached;
        }
        if (info === cached.digest) {
          await this.store.putTag(repository, reference, cached.digest, Date.now());
          this.metrics.hit('manifest');
          return cached;
        }
        // A definite 404: gone upstream (deleted tag). The cached copy stays pullable, or (keepDeletedTags off) the tag is deleted from the cache.
        if (info === null && (up.keepDeletedTags || !(await this.deleteGoneTag(repository, reference, cached.digest)))) {
          this.metrics.hit('manifest');
          return cached;
        }
        if (info === null) throw deletedUpstream(up, repository, reference);
      }
      this.metrics.miss('manifest');
      let fetched: ManifestRecord | null;
      try {
        fetched = await this.fetchManifest(up, repository, reference);
      } catch (err) {
        const failure = this.upstreamFailure(up, err, `tag ${reference} of ${up.name}`);
        if (cached) return cached;
        throw failure;
      }
      // Cached before (the cache's row of the tag is left), unknown upstream now: say so.
      if (!fetched && now) throw deletedUpstream(up, repository, reference);
      if (!fetched) return null;
      await this.store.putTag(repository, reference, fetched.digest, Date.now());
      return fetched;
    });
  }

  /** Deletes a tag gone upstream from core; false when a policy keeps it (an immutable tag), which then stays pullable. */
  private async deleteGoneTag(repository: string, tag: string, digest: string): Promise<boolean> {
    try {
      await this.serialised(repository, () => withRetries(() => this.options.core.deleteTag(repository, tag, digest)));
      return true;
    } catch (err) {
      if (err instanceof RegistryError) return false;
      throw err;
    }
  }

  private async headManifest(up: Upstream, reference: string): Promise<string | null> {
    const req = manifestRequests.get(up.name, reference, 'HEAD');
    const res = await up.client.send({ ...req, signal: this.signal() });
    await discard(res);
    if (res.status === 404) return null;
    if (res.status !== 200) throw await RegistryClientError.fromResponse('HEAD', up.client.transport.resolve(req.url), res);
    const digest = res.headers.get('docker-content-digest');
    if (!digest)
      throw RegistryClientError.local('HEAD', up.client.transport.resolve(req.url), 'no Docker-Content-Digest header', 'MANIFEST_INVALID');
    return digest;
  }

  /**
   * GETs a manifest upstream, checks it and stores it in core under `reference` (a system write:
   * policies such as a full quota may refuse it); null when the upstream has none.
   */
  private async fetchManifest(up: Upstream, repository: string, reference: string): Promise<ManifestRecord | null> {
    const req = manifestRequests.get(up.name, reference);
    const res = await up.client.send({ ...req, signal: this.signal() });
    const url = up.client.transport.resolve(req.url);
    if (res.status === 404) {
      await discard(res);
      return null;
    }
    if (res.status !== 200) throw await RegistryClientError.fromResponse('GET', url, res);
    const payload = Buffer.from(await res.arrayBuffer());
    const digest = digestOf(payload);
    if (isDigest(reference) && digest !== reference)
      throw RegistryClientError.local('GET', url, `manifest has digest ${digest}, not ${reference}`, 'DIGEST_INVALID');
    const contentType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    let mediaType: string;
    try {
      mediaType = parseManifest(payload, contentType || undefined).mediaType;
    } catch (err) {
      throw RegistryClientError.local('GET', url, `the upstream's manifest is invalid: ${(err as Error).message}`, 'MANIFEST_INVALID');
    }
    await this.serialised(repository, () => withRetries(() => this.options.core.store(repository, reference, payload, mediaType)));
    return record(repository, digest, mediaType, payload);
  }

  // ── Blobs ──────────────────────────────────────────────────────────────

  async blob(repository: string, digest: string): Promise<BlobHandle | null> {
    const up = await this.upstream(repository);
    let joined: boolean;
    let fill;
    try {
      ({ fill, joined } = await this.fills.get(repository, digest, async () => {
        // A fill that ended between core's lookup and this one has linked the blob: no second download.
        if (this.options.linked && (await this.options.linked(repository, digest))) return 'stored';
        const req = blobRequests.get(up.name, digest);
        // The timeout covers the answer's headers only: the body may take long (a 1 GiB layer);
        // a stalled body is the fill's idle timeout.
        const controller = new AbortController();
        const timer = setTimeout(
          () => controller.abort(new DOMException('upstream timeout', 'TimeoutError')),
          this.options.upstreamTimeoutMs,
        );
        let res: Response;
        try {
          res = await up.client.send({ ...req, signal: controller.signal });
        } finally {
          clearTimeout(timer);
        }
        if (res.status === 404) {
          await discard(res);
          return null;
        }
        if (res.status !== 200 || !res.body) throw await RegistryClientError.fromResponse('GET', up.client.transport.resolve(req.url), res);
        const size = Number(res.headers.get('content-length') ?? NaN);
        if (!Number.isSafeInteger(size)) {
          await discard(res);
          throw RegistryClientError.local(
            'GET',
            up.client.transport.resolve(req.url),
            'the upstream sent no Content-Length',
            'SIZE_INVALID',
          );
        }
        // Refused before the download (a full quota), as a push is refused before its bytes move.
        try {
          await this.options.core.admitBlob(repository, digest, size);
        } catch (err) {
          await discard(res);
          throw err;
        }
        // The socket's own stream (the endpoint's fetch hands it out): no WHATWG stream per chunk.
        return { size, body: nodeBody(res)! };
      }));
    } catch (err) {
      throw this.upstreamFailure(up, err, `blob ${digest} of ${up.name}`);
    }
    if (!fill) return null;
    if (fill === 'stored') {
      const stored = await this.options.linked!(repository, digest);
      if (!stored) return null;
      const size = stored.size;
      return {
        size,
        open: (range) => this.blobs.openRange(digest, range ?? (size > 0 ? { start: 0, end: size - 1 } : undefined)),
        redirectUrl: async () => null,
      };
    }
    if (joined) this.metrics.coalesced('blob');
    else this.metrics.miss('blob');
    const running = fill;
    return { size: running.size, open: (range) => running.reader(range), redirectUrl: async () => null };
  }

  // ── Errors ─────────────────────────────────────────────────────────────

  /** Counts an upstream failure and makes the spec error a client sees for it. */
  private upstreamFailure(up: Upstream, err: unknown, what: string): RegistryError {
    const e = err as { name?: string; status?: number; message?: string };
    let reason = 'status';
    let error: RegistryError;
    const upstream = `upstream ${up.label}`;
    if (e.name === 'TimeoutError' || e.name === 'AbortError') {
      reason = 'timeout';
      error = new RegistryError('UPSTREAM_TIMEOUT', `${upstream} did not answer within ${this.options.upstreamTimeoutMs} ms for ${what}`);
    } else if (err instanceof RegistryClientError) {
      if (err.status === 0) {
        reason = err.code === 'DIGEST_INVALID' ? 'digest' : 'unreachable';
        error = new RegistryError('UPSTREAM_FAILED', `${upstream} failed for ${what}: ${err.message}`);
      } else if (err.status === 429) {
        reason = 'ratelimited';
        error = new RegistryError('UNAVAILABLE', `${upstream} is rate-limiting (HTTP 429) ${what}; try again later`);
      } else if (err.status === 401 || err.status === 403) {
        reason = 'denied';
        error = new RegistryError('UPSTREAM_FAILED', `${upstream} refused ${what} (HTTP ${err.status}): check the endpoint's credentials`);
      } else {
        error = new RegistryError('UPSTREAM_FAILED', `${upstream} answered HTTP ${err.status} for ${what}`);
      }
    } else if (err instanceof RegistryError) {
      return err;
    } else {
      reason = 'unreachable';
      error = new RegistryError('UPSTREAM_FAILED', `${upstream} failed for ${what}: ${e.message ?? String(err)}`);
    }
    this.metrics.upstreamError(reason);
    return error;
  }
}

/** The pull of a tag the upstream deleted (404 MANIFEST_UNKNOWN naming the upstream). */
function deletedUpstream(up: Upstream, repository: string, tag: string): RegistryError {
  return new RegistryError('MANIFEST_UNKNOWN', `tag ${tag} of ${repository} was deleted upstream in ${up.label} (${up.name}:${tag})`, {
    name: repository,
    reference: tag,
  });
}

/**
 * Retries a metadata write that failed with a server-side error (a lock wait that ran out, a
 * brief database outage): 3 attempts. Deadlocks are already run again inside, by writeTransaction.
 */
async function withRetries<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (attempt >= 3 || !(err instanceof RegistryError) || err.status < 500) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}

/** The record of a manifest just stored in core (what core's own lookup would answer). */
function record(repository: string, digest: string, mediaType: string, payload: Buffer): ManifestRecord {
  const parsed = parseManifest(payload, mediaType);
  return {
    repository,
    digest,
    mediaType,
    artifactType: parsed.artifactType,
    subjectDigest: parsed.subject?.digest ?? null,
    annotations: parsed.annotations,
    size: payload.length,
    payload,
    createdAt: new Date(),
  };
}
