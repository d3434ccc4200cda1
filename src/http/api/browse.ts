import { z } from 'zod';
import type { BrowseService, PageOptions } from '../../browse/service.js';
import { DEFAULT_PAGE, MAX_PAGE, platformsOf } from '../../browse/service.js';
import type { Order, RepositorySort, TagSort } from '../../browse/ports.js';
import type { Permission } from '../../auth/permissions.js';
import { isDigest, parseDigest } from '../../core/digest.js';
import { RegistryError } from '../../core/errors.js';
import { projectOf, validateRepositoryName, validateTag } from '../../core/names.js';
import type { Registry } from '../../core/registry.js';
import { projectWith } from './projects.js';
import type { ApiContext, ApiRoute } from './route.js';
import { ARTIFACT_KINDS } from '../../browse/kinds.js';

const Kind = z.lazy(() => z.enum(ARTIFACT_KINDS).describe('what the artifact is, from its media types'));
const Platform = z.strictObject({ os: z.string(), architecture: z.string(), variant: z.string().optional() }).meta({ id: 'Platform' });
const Cursor = z.lazy(() => z.string().nullable().describe('pass as ?last= for the next page; null on the last page'));

const SystemInfoSchema = z.lazy(() =>
  z
    .strictObject({
      version: z.string(),
      registryHost: z.string().describe("host[:port] for pull commands (http.host's, else the request's Host)"),
      features: z.record(z.string(), z.boolean()).describe('which optional features this server has'),
      oidcProviders: z.array(z.strictObject({ name: z.string(), displayName: z.string() })).describe('OIDC providers with a browser login'),
    })
    .meta({ id: 'SystemInfo' }),
);
const SearchResult = z.lazy(() =>
  z
    .strictObject({
      repositories: z.array(z.strictObject({ name: z.string(), project: z.string() })),
      tags: z.array(z.strictObject({ repository: z.string(), tag: z.string(), digest: z.string() })),
    })
    .meta({ id: 'SearchResult' }),
);
const RepositoryRow = z.lazy(() =>
  z
    .strictObject({
      name: z.string(),
      tagCount: z.number(),
      pushedAt: z.string().nullable(),
      pulls: z.number(),
      size: z.number().describe('bytes of its unique blobs'),
    })
    .meta({ id: 'RepositoryRow' }),
);
const SeverityCounts = { critical: z.number(), high: z.number(), medium: z.number(), low: z.number(), unknown: z.number() };
const TagRow = z.lazy(() =>
  z
    .strictObject({
      tag: z.string(),
      digest: z.string(),
      mediaType: z.string(),
      artifactType: z.string().nullable(),
      kind: Kind,
      size: z.number().describe('bytes of the manifest, its config and layers (an index: with its images)'),
      platforms: z.array(Platform),
      pushedAt: z.string(),
      pulledAt: z.string().nullable(),
      signatures: z.strictObject({
        count: z.number().describe('signatures attached (cosign tag or referrer)'),
        verified: z
          .number()
          .nullable()
          .describe("how many verify with the project's trusted keys/certificates; null: the project trusts none"),
      }),
      scan: z
        .strictObject({ status: z.string(), ...SeverityCounts })
        .nullable()
        .describe('the last vulnerability scan; null: never scanned'),
      sbom: z.boolean(),
    })
    .meta({ id: 'TagRow' }),
);
const Refusal = { code: z.string().describe('the error code that refused it, e.g. DENIED for an immutable tag'), message: z.string() };
const RepositoryDeleted = z.lazy(() =>
  z
    .strictObject({
      deleted: z.array(z.string()).describe('digests of the manifests deleted'),
      untagged: z.array(z.string()).describe('tags removed from manifests that had to stay'),
      failed: z
        .array(
          z.strictObject({
            digest: z.string(),
            ...Refusal,
            tags: z.array(z.strictObject({ tag: z.string(), ...Refusal })).describe('its tags that could not go either'),
          }),
        )
        .describe('manifests that stay, and why; empty: the repository is gone'),
    })
    .meta({ id: 'RepositoryDeleted' }),
);
const Descriptor = z.lazy(() =>
  z.strictObject({
    digest: z.string().nullable(),
    mediaType: z.string().nullable(),
    size: z.number(),
    annotations: z.record(z.string(), z.string()),
  }),
);
const Referrer = z.lazy(() =>
  z
    .strictObject({
      digest: z.string(),
      mediaType: z.string(),
      artifactType: z.string().nullable(),
      kind: Kind,
      size: z.number(),
      annotations: z.record(z.string(), z.string()),
    })
    .meta({ id: 'Referrer' }),
);
const Artifact = z.lazy(() =>
  z
    .strictObject({
      repository: z.string(),
      project: z.string(),
      digest: z.string(),
      mediaType: z.string(),
      artifactType: z.string().nullable(),
      kind: Kind,
      size: z.number(),
      manifest: z.record(z.string(), z.unknown()).describe('the manifest as stored'),
      config: z.unknown().describe('the config blob when it is JSON of at most 1 MiB, else null'),
      layers: z.array(Descriptor),
      platforms: z.array(z.strictObject({ ...Platform.shape, digest: z.string() })).describe("an index's images"),
      referrers: z.array(Referrer),
      tags: z.array(z.string()),
      pushedAt: z.string(),
    })
    .meta({ id: 'Artifact' }),
);

/** What GET /api/v1/system/info tells the UI (built by the composition root from the configuration). */
export interface SystemInfo {
  version: string;
  /** http.host's host[:port], when configured; else the request's Host. */
  registryHost: string | null;
  features: Record<string, boolean>;
}

/** The web UI's browse endpoints (src/browse) and what they need from the rest of the server. */
export interface BrowseFeature {
  service: BrowseService;
  registry: Registry;
  system: SystemInfo;
  /** Runs a scheduled job now on this replica (under its lease, recorded in the run history). */
  runJob(name: string): Promise<void>;
  jobNames(): string[];
  /** The OIDC providers with a browser login (for the sign-in page). */
  oidcProviders(): { name: string; displayName: string }[];
}

const TagsDelete = z.lazy(() => z.object({ tags: z.array(z.string().min(1).max(128)).min(1).max(1000) }).strict());
const CONFIG_LIMIT = 1024 * 1024;
const SEARCH_LIMIT = 100;

const pageQuery = z.object({
  q: z.string().optional().describe('substring of the name, case-insensitive'),
  n: z.string().optional().describe(`page size (default ${DEFAULT_PAGE}, at most ${MAX_PAGE})`),
  last: z.string().optional().describe("the previous page's next"),
  order: z.enum(['asc', 'desc']).optional(),
});

function browse(ctx: ApiContext): BrowseFeature {
  return ctx.features.browse!;
}

function pageOptions<S extends string>(ctx: ApiContext, sorts: readonly S[], defaultOrder: (sort: S) => Order): PageOptions<S> {
  const { q, n, last, sort, order } = ctx.query;
  if (q !== undefined && q.length > 255) throw new RegistryError('INVALID_ARGUMENT', 'q is longer than 255 characters');
  let limit = DEFAULT_PAGE;
  if (n !== undefined && n !== '') {
    if (!/^\d{1,6}$/.test(n) || Number(n) < 1)
      throw new RegistryError('INVALID_ARGUMENT', `n must be a whole number from 1 to ${MAX_PAGE}, got "${n.slice(0, 32)}"`);
    limit = Math.min(Number(n), MAX_PAGE);
  }
  const chosen = (sort ?? sorts[0]) as S;
  if (!sorts.includes(chosen))
    throw new RegistryError('INVALID_ARGUMENT', `sort must be one of ${sorts.join(', ')}, got "${String(sort).slice(0, 32)}"`);
  if (order !== undefined && order !== 'asc' && order !== 'desc')
    throw new RegistryError('INVALID_ARGUMENT', `order must be asc or desc, got "${order.slice(0, 32)}"`);
  return { q: q === '' ? undefined : q, sort: chosen, order: (order as Order | undefined) ?? defaultOrder(chosen), limit, last };
}

/**
 * :name (URL-encoded: team%2Fapp) and its id, if the caller holds `permissions` on it. Without
 * pull the repository answers NOT_FOUND, as a project one cannot read does, so names do not leak.
 */
async function repositoryWith(ctx: ApiContext, permissions: Permission[]): Promise<{ name: string; id: number }> {
  const name = validateRepositoryName(ctx.params.name!);
  const held = await ctx.auth.rules.permissions(ctx.identity, name);
  const id = held.has('pull') ? await browse(ctx).service.repositoryId(name) : null;
  if (id === null) throw new RegistryError('NOT_FOUND', `repository ${name} not found`, { repository: name });
  for (const permission of permissions) {
    if (!held.has(permission)) throw new RegistryError('DENIED', `this needs the ${permission} permission on repository ${name}`);
  }
  return { name, id };
}

/** The registry's public host[:port] for pull commands. */
function registryHost(ctx: ApiContext): string {
  const configured = browse(ctx).system.registryHost;
  return configured ?? new URL(ctx.credentials.baseUrl).host;
}

export const browseRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/system/info',
    summary: 'Version, the registry host for pull commands, which features this server has, and its OIDC providers (web UI)',
    response: SystemInfoSchema,
    handler: async (ctx) => {
      const feature = browse(ctx);
      return {
        version: feature.system.version,
        registryHost: registryHost(ctx),
        features: feature.system.features,
        oidcProviders: feature.oidcProviders(),
      };
    },
  },
  {
    method: 'GET',
    path: '/search',
    summary:
      'Repositories and tags whose names contain q (case-insensitive), only those the caller may pull; ?n= (default 20, at most 100) of each',
    query: z.object({ q: z.string().describe('substring to find'), n: z.string().optional() }),
    response: SearchResult,
    handler: async (ctx) => {
      const q = ctx.query.q ?? '';
      if (q.length < 1 || q.length > 255) throw new RegistryError('INVALID_ARGUMENT', 'q must be 1 to 255 characters');
      const n = ctx.query.n;
      if (n !== undefined && (!/^\d{1,4}$/.test(n) || Number(n) < 1))
        throw new RegistryError('INVALID_ARGUMENT', `n must be a whole number from 1 to ${SEARCH_LIMIT}`);
      const limit = Math.min(n === undefined ? 20 : Number(n), SEARCH_LIMIT);
      return browse(ctx).service.search(q, limit, ctx.auth.rules.readChecker(ctx.identity));
    },
  },
  {
    method: 'GET',
    path: '/projects/:project/repositories',
    summary:
      "A project's repositories with tag count, last push, pulls and size; ?q=, ?sort=name|pushed|pulls, ?order=asc|desc, ?n=, ?last= (keyset), with the total",
    query: pageQuery.extend({ sort: z.enum(['name', 'pushed', 'pulls']).optional() }),
    response: z.strictObject({ items: z.array(RepositoryRow), next: Cursor, total: z.number() }).meta({ id: 'RepositoryPage' }),
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'read-project');
      const options = pageOptions<RepositorySort>(ctx, ['name', 'pushed', 'pulls'], (sort) => (sort === 'name' ? 'asc' : 'desc'));
      return browse(ctx).service.repositories(project.name, options);
    },
  },
  {
    method: 'DELETE',
    path: '/repositories/:name',
    summary:
      'Delete a repository (name URL-encoded): every manifest that may go with its tags, through the same policies and events as DELETE /v2/<name>/manifests/<digest>; of a manifest that must stay, the tags that may go; answers {deleted, untagged, failed} (delete permission)',
    response: RepositoryDeleted,
    handler: async (ctx) => {
      const { name, id } = await repositoryWith(ctx, ['delete']);
      const feature = browse(ctx);
      return feature.service.deleteRepository(id, (reference) =>
        feature.registry.deleteManifest(name, reference, { actor: ctx.actor.name }),
      );
    },
  },
  {
    method: 'GET',
    path: '/repositories/:name/tags',
    summary:
      'Tags of a repository (name URL-encoded) with kind, size, platforms, pushes, pulls and signature/scan/SBOM badges; ?q=, ?sort=name|pushed, ?order=, ?n=, ?last= (keyset), with the total',
    query: pageQuery.extend({ sort: z.enum(['name', 'pushed']).optional() }),
    response: z.strictObject({ items: z.array(TagRow), next: Cursor, total: z.number() }).meta({ id: 'TagPage' }),
    handler: async (ctx) => {
      const repository = await repositoryWith(ctx, ['list-tags']);
      const options = pageOptions<TagSort>(ctx, ['name', 'pushed'], (sort) => (sort === 'name' ? 'asc' : 'desc'));
      return browse(ctx).service.tags(repository, options);
    },
  },
  {
    method: 'POST',
    path: '/repositories/:name/tags/delete',
    summary:
      'Delete tags (not their manifests), each as DELETE /v2/<name>/manifests/<tag> does (immutable tag rules, events, audit); answers which were deleted and which failed and why (delete permission)',
    body: TagsDelete,
    response: z
      .strictObject({
        deleted: z.array(z.string()),
        failed: z.array(z.strictObject({ tag: z.string(), code: z.string(), message: z.string() })),
      })
      .meta({ id: 'TagsDeleted' }),
    handler: async (ctx) => {
      const { name } = await repositoryWith(ctx, ['delete']);
      const { tags } = ctx.body as z.infer<typeof TagsDelete>;
      const deleted: string[] = [];
      const failed: { tag: string; code: string; message: string }[] = [];
      for (const tag of [...new Set(tags)]) {
        try {
          validateTag(tag);
          await browse(ctx).registry.deleteManifest(name, tag, { actor: ctx.actor.name });
          deleted.push(tag);
        } catch (err) {
          if (!(err instanceof RegistryError)) throw err;
          failed.push({ tag, code: err.code, message: err.message });
        }
      }
      return { deleted, failed };
    },
  },
  {
    method: 'GET',
    path: '/repositories/:name/artifacts/:reference',
    summary:
      'One artifact (tag or digest) of a repository: manifest, config (JSON ≤ 1 MiB), layers, platforms, referrers with their kinds, tags',
    response: Artifact,
    handler: async (ctx) => {
      const { name, id } = await repositoryWith(ctx, ['pull']);
      const feature = browse(ctx);
      const reference = ctx.params.reference!;
      let digest: string;
      if (isDigest(reference)) digest = parseDigest(reference).value;
      else {
        validateTag(reference);
        // Read from the metadata, not served: no pull is counted and no pull policy applies to looking.
        const tagged = await feature.service.tagDigest(id, reference);
        if (!tagged) throw new RegistryError('NOT_FOUND', `repository ${name} has no tag ${reference}`, { reference });
        digest = tagged;
      }
      const found = await feature.service.artifact(id, digest);
      if (!found) throw new RegistryError('NOT_FOUND', `repository ${name} has no manifest ${digest}`, { reference });
      const { row, parsed, kind, tags, size } = found;
      const referrers = await feature.service.referrersOf(id, digest);
      const kinds = feature.service.referrerKinds(referrers);
      return {
        repository: name,
        project: projectOf(name),
        digest,
        mediaType: row.mediaType,
        artifactType: row.artifactType,
        kind,
        size,
        manifest: parsed,
        config: await readConfig(feature.registry, name, parsed.config),
        layers: (parsed.layers ?? []).map((l) => ({
          digest: l.digest ?? null,
          mediaType: l.mediaType ?? null,
          size: l.size ?? 0,
          annotations: l.annotations ?? {},
        })),
        platforms: platformsOf(parsed),
        referrers: referrers.map((r, i) => ({
          digest: r.digest,
          mediaType: r.mediaType,
          artifactType: r.artifactType,
          kind: kinds[i],
          size: r.size,
          annotations: r.annotations ? (JSON.parse(r.annotations) as unknown) : {},
        })),
        tags,
        pushedAt: new Date(row.createdAt).toISOString(),
      };
    },
  },
  {
    method: 'POST',
    path: '/jobs/:name/run',
    summary: 'Run a scheduled job now on this replica (under its lease; recorded in GET /api/v1/jobs)',
    status: 202,
    response: z.strictObject({
      run: z.strictObject({ job: z.string(), requestedAt: z.string(), history: z.string().describe('where its run will be listed') }),
    }),
    handler: async (ctx) => {
      const feature = browse(ctx);
      const name = ctx.params.name!;
      if (!feature.jobNames().includes(name))
        throw new RegistryError('NOT_FOUND', `no job named ${name.slice(0, 64)}`, { job: name.slice(0, 64) });
      const requestedAt = new Date().toISOString();
      // Not awaited: a GC or a replication may take minutes; its outcome lands in the run history.
      void feature.runJob(name).catch((err: unknown) => ctx.request.log.error({ err, job: name }, 'job run requested by the API failed'));
      return { run: { job: name, requestedAt, history: `/api/v1/jobs?job=${encodeURIComponent(name)}` } };
    },
  },
];

/** The config blob parsed as JSON when it is at most 1 MiB and JSON, else null. */
async function readConfig(
  registry: Registry,
  repository: string,
  config: { digest?: string; size?: number; mediaType?: string } | undefined,
): Promise<unknown> {
  if (!config?.digest || (config.size ?? Infinity) > CONFIG_LIMIT || (config.size ?? 0) <= 2) return null;
  try {
    const blob = await registry.findBlob(repository, config.digest);
    if (blob.size > CONFIG_LIMIT) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of await blob.open()) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return null;
  }
}
