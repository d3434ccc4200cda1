/**
 * Manifests, tags, catalog and referrers. Manifests are small (registries cap them at a
 * few MB), so unlike blobs they are read into memory; a GET by digest is verified.
 */
import { createHash } from 'node:crypto';
import { MANIFEST_MEDIA_TYPES, MediaTypes } from '../core/media-types.js';
import { repositoryScope } from './auth.js';
import { RegistryClientError } from './errors.js';
import { discard, nextLink, type ClientRequest, type Transport } from './transport.js';

/** Every manifest type we understand, so the registry never down-converts (schema1) for us. */
export const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

export interface Manifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

export interface ManifestInfo {
  digest: string;
  mediaType: string;
  size: number;
}

/** The OCI image index the referrers API answers with. */
export interface ReferrersIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: { mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> }[];
}

const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;

export const manifestRequests = {
  get: (repo: string, reference: string, method: 'GET' | 'HEAD' = 'GET'): ClientRequest => ({
    method,
    url: `/v2/${repo}/manifests/${reference}`,
    headers: { accept: MANIFEST_ACCEPT },
    scopes: [repositoryScope(repo, 'pull')],
  }),
  put: (repo: string, reference: string, bytes: Buffer, mediaType: string): ClientRequest => ({
    method: 'PUT',
    url: `/v2/${repo}/manifests/${reference}`,
    headers: { 'content-type': mediaType },
    body: bytes,
    scopes: [repositoryScope(repo, 'pull', 'push')],
  }),
  delete: (repo: string, reference: string): ClientRequest => ({
    method: 'DELETE',
    url: `/v2/${repo}/manifests/${reference}`,
    scopes: [repositoryScope(repo, 'delete')],
  }),
};

export async function getManifest(t: Transport, repo: string, reference: string): Promise<Manifest | null> {
  const req = manifestRequests.get(repo, reference);
  const res = await t.send(req);
  if (res.status === 404) {
    await discard(res);
    return null;
  }
  if (res.status !== 200) throw await RegistryClientError.fromResponse('GET', t.resolve(req.url), res);
  const bytes = Buffer.from(await res.arrayBuffer());
  if (bytes.length > MAX_MANIFEST_BYTES)
    throw RegistryClientError.local('GET', t.resolve(req.url), `manifest exceeds ${MAX_MANIFEST_BYTES} bytes`, 'MANIFEST_INVALID');
  const computed = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  // Pulling by digest is only safe if we check it: the registry (or a proxy) could lie.
  if (reference.startsWith('sha256:') && computed !== reference) {
    throw RegistryClientError.local('GET', t.resolve(req.url), `manifest digest ${computed} does not match ${reference}`, 'DIGEST_INVALID');
  }
  const digest = reference.includes(':') ? reference : (res.headers.get('docker-content-digest') ?? computed);
  return { digest, mediaType: mediaTypeOf(res, bytes), bytes };
}

export async function headManifest(t: Transport, repo: string, reference: string): Promise<ManifestInfo | null> {
  const req = manifestRequests.get(repo, reference, 'HEAD');
  const res = await t.send(req);
  if (res.status === 404) return null;
  if (res.status !== 200) throw await RegistryClientError.fromResponse('HEAD', t.resolve(req.url), res);
  return {
    digest: res.headers.get('docker-content-digest') ?? (reference.includes(':') ? reference : ''),
    mediaType: (res.headers.get('content-type') ?? '').split(';')[0]!.trim(),
    size: Number(res.headers.get('content-length') ?? -1),
  };
}

/** PUTs a manifest under a tag or its digest; returns the digest the registry computed. */
export async function putManifest(t: Transport, repo: string, reference: string, bytes: Buffer, mediaType?: string): Promise<string> {
  const type = mediaType ?? mediaTypeOf(undefined, bytes);
  const res = await t.expect(manifestRequests.put(repo, reference, bytes, type), [201]);
  await discard(res);
  return res.headers.get('docker-content-digest') ?? `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Deletes a manifest by digest (or a tag, where the registry allows it). */
export async function deleteManifest(t: Transport, repo: string, reference: string): Promise<void> {
  await discard(await t.expect(manifestRequests.delete(repo, reference), [202]));
}

/**
 * Follows `Link: <…>; rel="next"` from `first` and yields each page's items. Each page
 * is its own request, so a long list never sits in memory at once unless the caller
 * collects it.
 */
async function* pages<T>(t: Transport, first: string, scopes: string[], pick: (body: unknown) => T[]): AsyncGenerator<T[]> {
  let next: string | null = first;
  while (next) {
    const req: ClientRequest = { method: 'GET', url: next, headers: { accept: 'application/json' }, scopes };
    const res = await t.expect(req, [200]);
    const url = t.resolve(next);
    next = nextLink(res.headers.get('link'));
    // Resolve against the page's URL: registries send relative links.
    if (next) next = new URL(next, url).toString();
    yield pick(await res.json());
  }
}

function pageQuery(options: { pageSize?: number; last?: string }): string {
  const params = new URLSearchParams();
  if (options.pageSize !== undefined) params.set('n', String(options.pageSize));
  if (options.last !== undefined) params.set('last', options.last);
  const query = params.toString();
  return query ? `?${query}` : '';
}

export function tagPages(t: Transport, repo: string, options: { pageSize?: number; last?: string } = {}): AsyncGenerator<string[]> {
  return pages(
    t,
    `/v2/${repo}/tags/list${pageQuery(options)}`,
    [repositoryScope(repo, 'pull')],
    (b) => (b as { tags?: string[] | null }).tags ?? [],
  );
}

export function catalogPages(t: Transport, options: { pageSize?: number; last?: string } = {}): AsyncGenerator<string[]> {
  return pages(
    t,
    `/v2/_catalog${pageQuery(options)}`,
    ['registry:catalog:*'],
    (b) => (b as { repositories?: string[] | null }).repositories ?? [],
  );
}

export async function collect(pagesOf: AsyncIterable<string[]>): Promise<string[]> {
  const all: string[] = [];
  for await (const page of pagesOf) all.push(...page);
  return all;
}

/**
 * The manifests whose `subject` is `digest`. Uses the referrers API; a registry without it
 * answers 404, and then the referrers tag schema applies: an index tagged `sha256-<hex>`
 * that pushers maintain. `artifactType` filters on the server when it says it did
 * (OCI-Filters-Applied), otherwise here.
 */
export async function referrers(
  t: Transport,
  repo: string,
  digest: string,
  options: { artifactType?: string } = {},
): Promise<ReferrersIndex> {
  const query = options.artifactType ? `?artifactType=${encodeURIComponent(options.artifactType)}` : '';
  const req: ClientRequest = {
    method: 'GET',
    url: `/v2/${repo}/referrers/${digest}${query}`,
    headers: { accept: MediaTypes.ociIndex },
    scopes: [repositoryScope(repo, 'pull')],
  };
  const res = await t.send(req);
  let index: ReferrersIndex;
  let filtered = false;
  if (res.status === 200) {
    index = (await res.json()) as ReferrersIndex;
    filtered = (res.headers.get('oci-filters-applied') ?? '')
      .split(',')
      .map((s) => s.trim())
      .includes('artifactType');
  } else if (res.status === 404) {
    await discard(res);
    const fallback = await getManifest(t, repo, referrersTag(digest));
    index = fallback ? (JSON.parse(fallback.bytes.toString('utf8')) as ReferrersIndex) : emptyIndex();
  } else {
    throw await RegistryClientError.fromResponse('GET', t.resolve(req.url), res);
  }
  const manifests = index.manifests ?? [];
  return {
    ...index,
    manifests: options.artifactType && !filtered ? manifests.filter((m) => m.artifactType === options.artifactType) : manifests,
  };
}

/** The referrers tag schema's tag for a subject digest: `sha256:abc…` → `sha256-abc…`. */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-');
}

function emptyIndex(): ReferrersIndex {
  return { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
}

/** The Content-Type header, else the manifest's own `mediaType` field. */
function mediaTypeOf(res: Response | undefined, bytes: Buffer): string {
  const header = res?.headers.get('content-type')?.split(';')[0]?.trim();
  if (header && header !== 'application/json' && header !== 'application/octet-stream') return header;
  try {
    const field = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    if (typeof field === 'string') return field;
  } catch {
    // Not JSON: fall through to the header.
  }
  return header ?? MediaTypes.ociManifest;
}
