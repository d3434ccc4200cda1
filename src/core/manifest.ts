import { z } from 'zod';
import { parseDigest } from './digest.js';
import { RegistryError } from './errors.js';
import { MediaTypes, MANIFEST_MEDIA_TYPES, isIndexMediaType } from './media-types.js';

/**
 * Manifest parsing and validation. Pure functions: bytes in, a ParsedManifest
 * (or a MANIFEST_INVALID error naming the problem) out. Existence of the
 * referenced content is checked later, inside the metadata transaction.
 */

const digestString = z.string().superRefine((value, ctx) => {
  try {
    parseDigest(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const annotations = z.record(z.string(), z.string()).optional();

const descriptor = z.object({
  mediaType: z.string().min(1).max(255),
  digest: digestString,
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  urls: z.array(z.string()).optional(),
  annotations,
  artifactType: z.string().max(255).optional(),
  platform: z.record(z.string(), z.unknown()).optional(),
});

export type Descriptor = z.infer<typeof descriptor>;

const imageManifest = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().max(255).optional(),
  config: descriptor,
  layers: z.array(descriptor).max(10_000),
  subject: descriptor.optional(),
  annotations,
});

const imageIndex = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().max(255).optional(),
  manifests: z.array(descriptor).max(10_000),
  subject: descriptor.optional(),
  annotations,
});

export type ReferenceKind = 'config' | 'layer' | 'manifest';

export interface ManifestReference {
  digest: string;
  kind: ReferenceKind;
}

export interface ParsedManifest {
  mediaType: string;
  /** `artifactType`, or for an image manifest without one, its config media type (spec rule for referrers). */
  artifactType: string | null;
  subject: Descriptor | null;
  annotations: Record<string, string> | null;
  /** Content that must exist in the repository before this manifest may be stored. */
  references: ManifestReference[];
}

/**
 * Parses `payload` as the manifest type named by its `mediaType` field, or by
 * `contentType` when the payload omits it. The two must agree when both are present.
 */
export function parseManifest(payload: Buffer, contentType: string | undefined): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    throw new RegistryError('MANIFEST_INVALID', `manifest is not valid JSON: ${(err as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new RegistryError('MANIFEST_INVALID', 'manifest must be a JSON object');
  }
  const declared = (json as { mediaType?: unknown }).mediaType;
  const headerType = contentType?.split(';')[0]?.trim().toLowerCase() || undefined;
  if (declared !== undefined && typeof declared !== 'string') {
    throw new RegistryError('MANIFEST_INVALID', 'manifest mediaType must be a string');
  }
  if ((json as { schemaVersion?: unknown }).schemaVersion === 1) {
    throw new RegistryError('MANIFEST_INVALID', 'Docker schema 1 manifests are not supported: push schema 2 or OCI');
  }
  const mediaType = declared ?? headerType ?? inferMediaType(json);
  if (declared !== undefined && headerType !== undefined && headerType !== declared && isManifestType(headerType)) {
    throw new RegistryError('MANIFEST_INVALID', `Content-Type "${headerType}" does not match the manifest's mediaType "${declared}"`);
  }
  if (!isManifestType(mediaType)) {
    throw new RegistryError('MANIFEST_INVALID', `unsupported manifest media type "${String(mediaType).slice(0, 255)}"`, {
      supported: MANIFEST_MEDIA_TYPES,
    });
  }
  if (declared === undefined && isDockerType(mediaType)) {
    // Docker's formats require the field (CNCF Distribution refuses them without it); only OCI made it optional.
    throw new RegistryError('MANIFEST_INVALID', `a ${mediaType} manifest must carry its mediaType field`);
  }
  return isIndexMediaType(mediaType) ? parseIndex(json, mediaType) : parseImage(json, mediaType);
}

function isDockerType(mediaType: string): boolean {
  return mediaType === MediaTypes.dockerManifest || mediaType === MediaTypes.dockerManifestList;
}

function isManifestType(mediaType: string | undefined): mediaType is string {
  return mediaType !== undefined && MANIFEST_MEDIA_TYPES.includes(mediaType);
}

/** OCI allows the mediaType field to be absent; fall back on the document's shape. */
function inferMediaType(json: object): string | undefined {
  if ('manifests' in json) return MediaTypes.ociIndex;
  if ('config' in json) return MediaTypes.ociManifest;
  return undefined;
}

function parseImage(json: unknown, mediaType: string): ParsedManifest {
  const m = validate(imageManifest, json);
  const references: ManifestReference[] = [{ digest: m.config.digest, kind: 'config' }];
  for (const layer of m.layers) {
    // Foreign / non-distributable layers live elsewhere (their `urls`), so they need not exist here.
    if (isForeignLayer(layer)) continue;
    references.push({ digest: layer.digest, kind: 'layer' });
  }
  if (mediaType === MediaTypes.dockerManifest && (m.subject || m.artifactType)) {
    throw new RegistryError('MANIFEST_INVALID', 'Docker schema 2 manifests cannot carry subject or artifactType');
  }
  return {
    mediaType,
    artifactType: m.artifactType ?? m.config.mediaType,
    subject: m.subject ?? null,
    annotations: m.annotations ?? null,
    references: dedupe(references),
  };
}

function parseIndex(json: unknown, mediaType: string): ParsedManifest {
  const m = validate(imageIndex, json);
  // Children with a manifest media type must exist here; other descriptors are opaque extensions.
  const references = m.manifests
    .filter((child) => MANIFEST_MEDIA_TYPES.includes(child.mediaType))
    .map((child) => ({ digest: child.digest, kind: 'manifest' as const }));
  return {
    mediaType,
    artifactType: m.artifactType ?? null,
    subject: m.subject ?? null,
    annotations: m.annotations ?? null,
    references: dedupe(references),
  };
}

function isForeignLayer(layer: Descriptor): boolean {
  return (
    layer.mediaType === MediaTypes.dockerForeignLayer ||
    (MediaTypes.ociNondistributableLayers as readonly string[]).includes(layer.mediaType)
  );
}

function validate<T>(schema: z.ZodType<T>, json: unknown): T {
  const result = schema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'manifest';
    throw new RegistryError('MANIFEST_INVALID', `${where}: ${issue?.message ?? 'invalid'}`, {
      issues: result.error.issues.slice(0, 10).map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  return result.data;
}

function dedupe(refs: ManifestReference[]): ManifestReference[] {
  const seen = new Set<string>();
  return refs.filter((r) => (seen.has(r.digest) ? false : (seen.add(r.digest), true)));
}
