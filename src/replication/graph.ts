import { isIndexMediaType, MediaTypes } from '../core/media-types.js';

/** A content descriptor as manifests write them. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  urls?: string[];
  annotations?: Record<string, string>;
}

/** What a manifest references, in the order a copy needs it. */
export interface ManifestGraph {
  mediaType: string;
  /** Index children (manifests), copied before the index. */
  children: Descriptor[];
  /** Config and layers of an image manifest, copied before it. */
  blobs: Descriptor[];
  subject: Descriptor | null;
  /** `artifactType`, else the config's media type (what the referrers API reports). */
  artifactType: string | null;
}

const FOREIGN = new Set<string>([MediaTypes.dockerForeignLayer, ...MediaTypes.ociNondistributableLayers]);

/**
 * Reads the references of a manifest's bytes. Foreign and non-distributable layers (with
 * `urls`, fetched by clients from elsewhere) are not blobs of the registry and are left out,
 * as registries do not require them on push.
 */
export function parseManifest(bytes: Buffer, mediaTypeHint?: string): ManifestGraph {
  let body: {
    mediaType?: string;
    artifactType?: string;
    manifests?: Descriptor[];
    config?: Descriptor;
    layers?: Descriptor[];
    blobs?: Descriptor[];
    subject?: Descriptor;
  };
  try {
    body = JSON.parse(bytes.toString('utf8')) as typeof body;
  } catch {
    throw new Error('manifest is not JSON');
  }
  const mediaType = body.mediaType ?? mediaTypeHint ?? (body.manifests ? MediaTypes.ociIndex : MediaTypes.ociManifest);
  if (mediaType === MediaTypes.dockerSchema1 || mediaType === MediaTypes.dockerSchema1Signed)
    throw new Error('schema 1 manifests are not replicated');
  const index = isIndexMediaType(mediaType) || (Array.isArray(body.manifests) && !body.config);
  const children = index ? (body.manifests ?? []).filter(isDescriptor) : [];
  const blobs = index
    ? []
    : [body.config, ...(body.layers ?? []), ...(body.blobs ?? [])]
        .filter(isDescriptor)
        .filter((d) => !(FOREIGN.has(d.mediaType) || (d.urls && d.urls.length > 0)));
  return {
    mediaType,
    children,
    blobs: dedupe(blobs),
    subject: isDescriptor(body.subject) ? body.subject : null,
    artifactType: body.artifactType ?? body.config?.mediaType ?? null,
  };
}

function isDescriptor(value: unknown): value is Descriptor {
  const d = value as Descriptor | undefined;
  return typeof d === 'object' && d !== null && typeof d.digest === 'string' && typeof d.size === 'number';
}

function dedupe(list: Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return list.filter((d) => (seen.has(d.digest) ? false : (seen.add(d.digest), true)));
}

/**
 * The destination name of a source repository. `namespace` replaces the first `flatten`
 * path components (Harbor's "destination namespace" with "flattening"):
 * - no namespace: unchanged;
 * - flatten 0: `<namespace>/<name>`;
 * - flatten n > 0: the first n components are dropped first (`prod/team/app`, n 1 → `<ns>/team/app`);
 * - flatten -1: only the last component is kept (`<ns>/app`).
 */
export function rewriteRepository(name: string, rule: { namespace?: string | null; flatten?: number }): string {
  const namespace = rule.namespace?.replace(/^\/+|\/+$/g, '');
  if (!namespace) return name;
  const parts = name.split('/');
  const flatten = rule.flatten ?? 0;
  const kept = flatten < 0 ? parts.slice(-1) : parts.length > flatten ? parts.slice(flatten) : parts.slice(-1);
  return `${namespace}/${kept.join('/')}`;
}
