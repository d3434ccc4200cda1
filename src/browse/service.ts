import { RegistryError } from '../core/errors.js';
import { projectOf } from '../core/names.js';
import { artifactKind, type ArtifactKind } from './kinds.js';
import type { After, BrowseQueries, ManifestRow, Order, RepositorySort, SignatureVerdicts, TagRow, TagSort } from './ports.js';

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 1000;

export interface PageOptions<S extends string> {
  q?: string;
  sort: S;
  order: Order;
  limit: number;
  /** The previous page's `next` (opaque). */
  last?: string;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface TagItem {
  tag: string;
  digest: string;
  mediaType: string;
  artifactType: string | null;
  kind: ArtifactKind;
  size: number;
  platforms: Platform[];
  pushedAt: string;
  pulledAt: string | null;
  signatures: { count: number; verified: number | null };
  scan: { status: string; critical: number; high: number; medium: number; low: number; unknown: number } | null;
  sbom: boolean;
}

interface Descriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

interface ParsedManifest {
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
  annotations?: Record<string, string>;
}

export function parseManifest(payload: Uint8Array): ParsedManifest {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(payload).toString('utf8'));
    return parsed !== null && typeof parsed === 'object' ? (parsed as ParsedManifest) : {};
  } catch {
    return {};
  }
}

function parseAnnotations(text: string | null): Record<string, string> | null {
  if (!text) return null;
  try {
    return JSON.parse(text) as Record<string, string>;
  } catch {
    return null;
  }
}

/** The kind of a stored manifest row (payload parsed once by the caller when given). */
export function kindOf(
  row: { mediaType: string; artifactType: string | null; annotations: string | null },
  parsed: ParsedManifest,
): ArtifactKind {
  return artifactKind({
    mediaType: row.mediaType,
    artifactType: row.artifactType,
    annotations: parseAnnotations(row.annotations) ?? parsed.annotations ?? null,
    layerMediaTypes: (parsed.layers ?? []).map((l) => l.mediaType ?? ''),
  });
}

/** Bytes of an image manifest with its config and layers. */
function imageSize(ownSize: number, parsed: ParsedManifest): number {
  return ownSize + (parsed.config?.size ?? 0) + (parsed.layers ?? []).reduce((sum, l) => sum + (l.size ?? 0), 0);
}

export function platformsOf(parsed: ParsedManifest): (Platform & { digest: string })[] {
  return (parsed.manifests ?? [])
    .filter((m) => m.platform?.os && m.platform.architecture && m.platform.os !== 'unknown')
    .map((m) => ({
      digest: m.digest ?? '',
      os: m.platform!.os!,
      architecture: m.platform!.architecture!,
      ...(m.platform!.variant ? { variant: m.platform!.variant } : {}),
    }));
}

function encodeCursor(after: After): string {
  return Buffer.from(JSON.stringify([after.key, after.name])).toString('base64url');
}

function decodeCursor(last: string | undefined): After | null {
  if (last === undefined || last === '') return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(last, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && (value[0] === null || typeof value[0] === 'number') && typeof value[1] === 'string')
      return { key: value[0], name: value[1] };
  } catch {
    // fall through
  }
  throw new RegistryError('INVALID_ARGUMENT', "last is not a cursor this listing returned (pass the previous page's next)");
}

/**
 * A keyset page from `limit + 1` rows (the extra row only tells that a next page exists) and the
 * listing's total: the page, the cursor after its last row (null on the last page), the total.
 */
export function keysetPage<R>(
  rows: R[],
  total: number,
  limit: number,
  cursorOf: (row: R) => After,
): { page: R[]; next: string | null; total: number } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { page, next: rows.length > limit && last !== undefined ? encodeCursor(cursorOf(last)) : null, total };
}

/** What DELETE /api/v1/repositories/:name did. */
export interface RepositoryDeletion {
  /** Manifests deleted, with their tags. */
  deleted: string[];
  /** Tags deleted from manifests that stayed. */
  untagged: string[];
  /** Manifests that stayed: why, and the tags still pointing at them with why each stayed. */
  failed: { digest: string; code: string; message: string; tags: { tag: string; code: string; message: string }[] }[];
}

/** Runs a delete: 'done', 'gone' (deleted meanwhile, e.g. with its index) or the refusal. */
async function attempt(remove: () => Promise<void>): Promise<'done' | 'gone' | RegistryError> {
  try {
    await remove();
    return 'done';
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    return err.code === 'MANIFEST_UNKNOWN' ? 'gone' : err;
  }
}

const SIGNATURE_SUFFIXES = ['.sig', '.att', '.sbom'] as const;

/**
 * The web UI's listings (docs/api.md#web-ui-api): repositories of a project, tags of a repository with
 * their kind and badges, search, artifact detail. Access is decided by the HTTP layer
 * (src/auth's rules) before and, for search, through `mayRead`.
 */
export class BrowseService {
  constructor(
    private readonly queries: BrowseQueries,
    /** Verifies the signed tags of a page (null: the listing answers `verified: null`). */
    private readonly signatures: SignatureVerdicts | null = null,
  ) {}

  repositoryId(name: string): Promise<number | null> {
    return this.queries.repositoryId(name);
  }

  async repositories(project: string, options: PageOptions<RepositorySort>) {
    const after = decodeCursor(options.last);
    const [rows, count] = await Promise.all([
      this.queries.repositories(project, options.q, options.sort, options.order, options.limit + 1, after),
      this.queries.countRepositories(project, options.q),
    ]);
    const { page, next, total } = keysetPage(rows, count, options.limit, (r) => ({
      key: options.sort === 'pushed' ? r.pushedAt : options.sort === 'pulls' ? r.pulls : null,
      name: r.name,
    }));
    const stats = await this.queries.repositoryStats(page.map((r) => r.id));
    return {
      items: page.map((r) => ({
        name: r.name,
        tagCount: stats.get(r.id)?.tagCount ?? 0,
        pushedAt: r.pushedAt === null ? null : new Date(r.pushedAt).toISOString(),
        pulls: r.pulls,
        size: stats.get(r.id)?.size ?? 0,
      })),
      next,
      total,
    };
  }

  async tags(repository: { id: number; name: string }, options: PageOptions<TagSort>) {
    const repositoryId = repository.id;
    const after = decodeCursor(options.last);
    const [rows, count] = await Promise.all([
      this.queries.tags(repositoryId, options.q, options.sort, options.order, options.limit + 1, after),
      this.queries.countTags(repositoryId, options.q),
    ]);
    const { page, next, total } = keysetPage(rows, count, options.limit, (t) => ({
      key: options.sort === 'pushed' ? t.pushedAt : null,
      name: t.tag,
    }));
    return { items: await this.tagItems(repository, page), next, total };
  }

  /** Kinds, sizes, platforms and badges of a page of tags: a fixed number of statements per page. */
  private async tagItems({ id: repositoryId, name: repository }: { id: number; name: string }, page: TagRow[]): Promise<TagItem[]> {
    const digests = [...new Set(page.map((t) => t.digest))];
    const parsed = new Map(page.map((t) => [t.digest, parseManifest(t.payload)]));
    const children = [...new Set([...parsed.values()].flatMap((p) => (p.manifests ?? []).map((m) => m.digest ?? '')).filter(Boolean))];
    const cosignTags = digests.flatMap((d) => SIGNATURE_SUFFIXES.map((s) => `${d.replace(':', '-')}${s}`));
    const [childRows, referrers, pulls, scans, schemeTags] = await Promise.all([
      this.queries.manifests(repositoryId, children),
      this.queries.referrersOf(repositoryId, digests),
      this.queries.pulls(repositoryId, digests),
      this.queries.scans(digests),
      this.queries.existingTags(repositoryId, cosignTags),
    ]);
    const childSize = new Map(childRows.map((c) => [c.digest, imageSize(c.size, parseManifest(c.payload))]));
    const badges = new Map<string, { signatures: string[]; sbom: boolean }>();
    for (const r of referrers) {
      const kind = kindOf(r, parseManifest(r.payload));
      const badge = badges.get(r.subject!) ?? { signatures: [], sbom: false };
      if (kind === 'signature') badge.signatures.push(r.digest);
      if (kind === 'sbom') badge.sbom = true;
      badges.set(r.subject!, badge);
    }
    const scanOf = new Map(scans.map((s) => [s.digest, s]));
    const signed = digests.flatMap((digest) => {
      const legacy = schemeTags.get(`${digest.replace(':', '-')}.sig`);
      const signatures = [...(badges.get(digest)?.signatures ?? []), ...(legacy ? [legacy] : [])];
      return signatures.length > 0 ? [{ digest, signatures }] : [];
    });
    // One call per page (verdicts cached by the verifier); null: the project has no keys to verify with.
    const verified = this.signatures ? await this.signatures.verifiedCounts(repository, signed) : null;
    const signatureCount = new Map(signed.map((s) => [s.digest, s.signatures.length]));
    return page.map((t) => {
      const p = parsed.get(t.digest)!;
      const kind = kindOf(t, p);
      const badge = badges.get(t.digest) ?? { signatures: [], sbom: false };
      const scheme = t.digest.replace(':', '-');
      const signatures = signatureCount.get(t.digest) ?? 0;
      const scan = scanOf.get(t.digest);
      const size = p.manifests
        ? t.size + p.manifests.reduce((sum, m) => sum + (childSize.get(m.digest ?? '') ?? m.size ?? 0), 0)
        : imageSize(t.size, p);
      const pulled = pulls.get(t.digest);
      return {
        tag: t.tag,
        digest: t.digest,
        mediaType: t.mediaType,
        artifactType: t.artifactType,
        kind,
        size,
        platforms: platformsOf(p).map(({ digest: _d, ...platform }) => platform),
        pushedAt: new Date(t.pushedAt).toISOString(),
        pulledAt: pulled ? new Date(pulled.lastPulledAt).toISOString() : null,
        signatures: { count: signatures, verified: verified === null ? null : (verified.get(t.digest) ?? 0) },
        scan: scan ? scanBadge(scan.status, scan.summary) : null,
        sbom: badge.sbom || schemeTags.has(`${scheme}.sbom`),
      };
    });
  }

  /**
   * Repositories and tags whose names contain `q` that `mayRead` allows, at most `limit` of
   * each; reads matching rows in batches until enough readable ones are found (at most 20 batches).
   */
  async search(q: string, limit: number, mayRead: (repository: string) => Promise<boolean>) {
    const batch = Math.max(100, limit * 2);
    const repositories: { name: string; project: string }[] = [];
    let afterRepo: string | null = null;
    for (let round = 0; round < 20 && repositories.length < limit; round++) {
      const names = await this.queries.searchRepositories(q, batch, afterRepo);
      for (const name of names)
        if (repositories.length < limit && (await mayRead(name))) repositories.push({ name, project: projectOf(name) });
      if (names.length < batch) break;
      afterRepo = names.at(-1)!;
    }
    const tags: { repository: string; tag: string; digest: string }[] = [];
    let afterTag: { repository: string; tag: string } | null = null;
    for (let round = 0; round < 20 && tags.length < limit; round++) {
      const rows = await this.queries.searchTags(q, batch, afterTag);
      for (const row of rows) if (tags.length < limit && (await mayRead(row.repository))) tags.push(row);
      if (rows.length < batch) break;
      afterTag = rows.at(-1)!;
    }
    return { repositories, tags };
  }

  /**
   * Deletes every manifest of a repository that may go, each through `remove` (core's delete: its
   * own transaction, policies, events), referrers first, in passes until one deletes nothing (a
   * manifest refused while another still refers to it goes once that one is gone). Of a manifest
   * that must stay (e.g. an immutable tag points at it) the tags that may go are deleted. Answers
   * what went and what stayed, and why.
   */
  async deleteRepository(repositoryId: number, remove: (reference: string) => Promise<void>): Promise<RepositoryDeletion> {
    const deleted: string[] = [];
    const untagged: string[] = [];
    let pending = await this.queries.manifestDigests(repositoryId);
    const refusals = new Map<string, RegistryError>();
    while (pending.length > 0) {
      const refused: string[] = [];
      for (const digest of pending) {
        const outcome = await attempt(() => remove(digest));
        if (outcome === 'done') deleted.push(digest);
        else if (outcome !== 'gone') {
          refusals.set(digest, outcome);
          refused.push(digest);
        }
      }
      if (refused.length === pending.length) break;
      pending = refused;
    }
    const failed: RepositoryDeletion['failed'] = [];
    for (const digest of pending) {
      const tags: RepositoryDeletion['failed'][number]['tags'] = [];
      for (const tag of await this.queries.tagsOf(repositoryId, digest)) {
        const outcome = await attempt(() => remove(tag));
        if (outcome === 'done') untagged.push(tag);
        else if (outcome !== 'gone') tags.push({ tag, code: outcome.code, message: outcome.message });
      }
      const why = refusals.get(digest)!;
      failed.push({ digest, code: why.code, message: why.message, tags });
    }
    return { deleted, untagged, failed };
  }

  /** A manifest of the repository by digest, with its tags, kind and parsed payload; null when unknown. */
  async artifact(repositoryId: number, digest: string) {
    const [row] = await this.queries.manifests(repositoryId, [digest]);
    if (!row) return null;
    const parsed = parseManifest(row.payload);
    const [tags, children] = await Promise.all([
      this.queries.tagsOf(repositoryId, digest),
      this.queries.manifests(repositoryId, (parsed.manifests ?? []).map((m) => m.digest ?? '').filter(Boolean)),
    ]);
    const childSize = new Map(children.map((c) => [c.digest, imageSize(c.size, parseManifest(c.payload))]));
    const size = parsed.manifests
      ? row.size + parsed.manifests.reduce((sum, m) => sum + (childSize.get(m.digest ?? '') ?? m.size ?? 0), 0)
      : imageSize(row.size, parsed);
    return { row, parsed, kind: kindOf(row, parsed), tags, size };
  }

  /** Kinds of referrer rows (the artifact page's referrers list). */
  referrerKinds(rows: ManifestRow[]): ArtifactKind[] {
    return rows.map((r) => kindOf(r, parseManifest(r.payload)));
  }

  tagDigest(repositoryId: number, tag: string): Promise<string | null> {
    return this.queries.tagDigest(repositoryId, tag);
  }

  referrersOf(repositoryId: number, digest: string): Promise<ManifestRow[]> {
    return this.queries.referrersOf(repositoryId, [digest]);
  }
}

function scanBadge(status: string, summaryText: string) {
  let summary: Record<string, number> = {};
  try {
    summary = JSON.parse(summaryText) as Record<string, number>;
  } catch {
    // a failed scan may carry no summary
  }
  const n = (key: string) => Number(summary[key] ?? 0);
  return { status, critical: n('Critical'), high: n('High'), medium: n('Medium'), low: n('Low'), unknown: n('Unknown') + n('Negligible') };
}
