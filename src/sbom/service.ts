import { digestOf, isDigest } from '../core/digest.js';
import { RegistryError } from '../core/errors.js';
import { MediaTypes, isIndexMediaType } from '../core/media-types.js';
import { projectOf } from '../core/names.js';
import type { MetadataStore } from '../core/ports.js';
import type { ArtifactStore } from './artifacts.js';
import { CYCLONEDX_MEDIA_TYPE, mediaTypeOf, render, SPDX_MEDIA_TYPE, TOOL_NAME, type SbomFormat } from './formats.js';
import { inventory, matchable, DEFAULT_LIMITS, type InventoryLimits } from './inventory.js';
import type { LayerRef } from './layers.js';
import type { MatchablePackage } from './model.js';
import type { RpmDbReader } from './ports.js';
import { cosignSbomLayerFormat, purlsOfDocument, recogniseReferrer, type SbomOrigin } from './recognise.js';

/**
 * SBOMs of image manifests: found when a client pushed one (an OCI 1.1 referrer of an SBOM
 * type, a BuildKit attestation manifest in the image's index), generated from the layers
 * otherwise, and attached as an OCI 1.1 referrer through core's write path.
 */

export interface SbomOptions {
  /** Host clients reach the registry at (the image's purl), e.g. registry.example.com. */
  registryHost: string;
  limits?: InventoryLimits;
}

export interface SbomRef {
  format: SbomFormat | 'other';
  /** Media type of the SBOM document. */
  mediaType: string;
  /** The referrer (or attestation) manifest holding it. */
  manifest: string;
  /** The document's blob. */
  blob: string;
  origin: SbomOrigin;
}

export interface GenerateResult {
  repository: string;
  digest: string;
  /** True when an SBOM already there (pushed by a client, or generated before) is used. */
  reused: boolean;
  sboms: SbomRef[];
  packages: number | null;
  notes: string[];
  /** For an index: the result of each platform image. */
  children?: GenerateResult[];
}

export interface GenerateOptions {
  formats?: SbomFormat[];
  regenerate?: boolean;
  /** Who the SBOM's push is recorded as (default berth-sbom); null: the system's own write, which no project's role check refuses (generation on push). */
  actor?: string | null;
  /** The index the image was reached through (its BuildKit attestations are looked at). */
  index?: string;
}

const EMPTY_CONFIG = Buffer.from('{}');
const BUILDKIT_REF_TYPE = 'vnd.docker.reference.type';
const BUILDKIT_REF_DIGEST = 'vnd.docker.reference.digest';

export class SbomService {
  /** Generations in progress in this process, by repository@digest: a second request waits for the first. */
  private readonly running = new Map<string, Promise<GenerateResult>>();

  constructor(
    private readonly artifacts: ArtifactStore,
    private readonly rpm: RpmDbReader,
    private readonly options: SbomOptions,
  ) {}

  /**
   * The SBOMs of an image (or of each image of an index): the ones present, else generated in
   * `formats` and attached. `regenerate` generates even when one exists.
   */
  async generate(repository: string, digest: string, opts: GenerateOptions = {}): Promise<GenerateResult> {
    const key = `${repository}@${digest}`;
    const pending = this.running.get(key);
    if (pending) return pending;
    const work = this.generateNow(repository, digest, opts).finally(() => this.running.delete(key));
    this.running.set(key, work);
    return work;
  }

  private async generateNow(repository: string, digest: string, opts: GenerateOptions): Promise<GenerateResult> {
    const manifest = await this.requireManifest(repository, digest);
    const json = JSON.parse(manifest.payload.toString('utf8')) as ImageJson & IndexJson;
    if (isIndexMediaType(manifest.mediaType)) {
      const children: GenerateResult[] = [];
      for (const child of imagesOf(json)) children.push(await this.generate(repository, child.digest, { ...opts, index: digest }));
      return { repository, digest, reused: children.every((c) => c.reused), sboms: [], packages: null, notes: [], children };
    }
    if (!opts.regenerate) {
      const existing = await this.find(repository, digest, opts.index);
      if (existing.length > 0) return { repository, digest, reused: true, sboms: existing, packages: null, notes: [] };
    }
    if (!json.layers || !json.config) throw new RegistryError('INVALID_ARGUMENT', `${repository}@${digest} is not an image manifest`);
    if (json.subject)
      throw new RegistryError(
        'INVALID_ARGUMENT',
        `${repository}@${digest} is an artifact attached to ${json.subject.digest}, not an image: its SBOM is its subject's`,
      );
    const layers: LayerRef[] = json.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size }));
    const inv = await inventory(
      layers,
      (layer) => this.artifacts.openBlob(repository, layer.digest),
      this.rpm,
      this.options.limits ?? DEFAULT_LIMITS,
    );
    const subject = { repository, digest, registryHost: this.options.registryHost };
    const created = new Date();
    const sboms: SbomRef[] = [];
    for (const format of opts.formats ?? (['spdx', 'cyclonedx'] as SbomFormat[])) {
      const document = render(format, inv, subject, created);
      sboms.push(
        await this.attach(
          repository,
          { digest, mediaType: manifest.mediaType, size: manifest.size },
          format,
          document,
          created,
          opts.actor,
        ),
      );
    }
    return { repository, digest, reused: false, sboms, packages: inv.packages.length, notes: inv.notes };
  }

  /**
   * Every tagged image of the registry (or of one project): each repository in name order, each
   * tag's manifest once; an SBOM already there is reused. `onResult` hears each image (or its
   * failure) as it goes. Untagged manifests are left out.
   */
  async generateAll(
    listing: Pick<MetadataStore, 'repositories' | 'manifests'>,
    opts: {
      project?: string;
      formats?: SbomFormat[];
      actor?: string | null;
      onResult?: (r: GenerateResult | { repository: string; digest: string; error: string }) => void;
    } = {},
  ): Promise<{ images: number; generated: number; reused: number; failed: number }> {
    const totals = { images: 0, generated: 0, reused: 0, failed: 0 };
    let after: string | undefined;
    for (;;) {
      const page = await listing.repositories.list({ limit: 100, after });
      for (const repository of page.items) {
        if (opts.project && projectOf(repository) !== opts.project) continue;
        const done = new Set<string>();
        let tagAfter: string | undefined;
        for (;;) {
          const tags = await listing.manifests.tags(repository, { limit: 500, after: tagAfter });
          for (const tag of tags.items) {
            const manifest = await listing.manifests.byTag(repository, tag);
            if (!manifest || done.has(manifest.digest)) continue;
            done.add(manifest.digest);
            totals.images++;
            try {
              const result = await this.generate(repository, manifest.digest, { formats: opts.formats, actor: opts.actor });
              if (result.reused) totals.reused++;
              else totals.generated++;
              opts.onResult?.(result);
            } catch (err) {
              totals.failed++;
              opts.onResult?.({ repository, digest: manifest.digest, error: (err as Error).message });
            }
          }
          if (!tags.more || tags.items.length === 0) break;
          tagAfter = tags.items[tags.items.length - 1];
        }
      }
      if (!page.more || page.items.length === 0) break;
      after = page.items[page.items.length - 1];
    }
    return totals;
  }

  /** Stores the document as a blob and an OCI image manifest (artifactType = its media type, subject = the image). */
  private async attach(
    repository: string,
    subject: { digest: string; mediaType: string; size: number },
    format: SbomFormat,
    document: Buffer,
    created: Date,
    actor?: string | null,
  ): Promise<SbomRef> {
    const op = actor === null ? {} : { actor: actor ?? TOOL_NAME };
    const mediaType = mediaTypeOf(format);
    const blob = await this.artifacts.pushBlob(repository, document, op);
    await this.artifacts.pushBlob(repository, EMPTY_CONFIG, op);
    const payload = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        artifactType: mediaType,
        config: { mediaType: MediaTypes.ociEmpty, digest: digestOf(EMPTY_CONFIG), size: EMPTY_CONFIG.length },
        layers: [
          { mediaType, digest: blob, size: document.length, annotations: { 'org.opencontainers.image.title': `sbom.${format}.json` } },
        ],
        subject,
        annotations: {
          'org.opencontainers.image.created': created.toISOString(),
          'org.opencontainers.artifact.created': created.toISOString(),
          'org.opencontainers.artifact.description': `${format === 'spdx' ? 'SPDX 2.3' : 'CycloneDX 1.6'} SBOM generated by Berth from the image's layers`,
          'created-by': TOOL_NAME,
        },
      }),
    );
    const manifest = await this.artifacts.pushManifest(repository, payload, MediaTypes.ociManifest, op);
    return { format, mediaType, manifest, blob, origin: 'generated' };
  }

  /** The SBOMs an image already has: referrers of an SBOM type (Berth's or a client's), then BuildKit attestations in an index naming it. */
  async find(repository: string, digest: string, index?: string): Promise<SbomRef[]> {
    const found: SbomRef[] = [];
    for (const ref of await this.artifacts.referrers(repository, digest)) {
      const recognised = recogniseReferrer(ref);
      if (!recognised) continue;
      const manifest = await this.artifacts.manifest(repository, ref.digest);
      if (!manifest) continue;
      const layer = (JSON.parse(manifest.payload.toString('utf8')) as ImageJson).layers?.[0];
      if (!layer) continue;
      found.push({
        format: recognised.format,
        mediaType: layer.mediaType,
        manifest: ref.digest,
        blob: layer.digest,
        origin: recognised.origin,
      });
    }
    // cosign's legacy tag scheme: sha256-<hex>.sbom, one layer holding the document.
    const legacy = await this.artifacts.tagged(repository, `${digest.replace(':', '-')}.sbom`);
    for (const layer of legacy ? ((JSON.parse(legacy.payload.toString('utf8')) as ImageJson).layers ?? []) : []) {
      const format = cosignSbomLayerFormat(layer.mediaType);
      if (format) found.push({ format, mediaType: layer.mediaType, manifest: legacy!.digest, blob: layer.digest, origin: 'cosign-tag' });
    }
    if (index) found.push(...(await this.attestations(repository, index, digest)));
    return found.sort((a, b) => Number(b.origin === 'generated') - Number(a.origin === 'generated') || (a.manifest < b.manifest ? -1 : 1));
  }

  /** BuildKit's SBOM attestations for `image` inside the index: in-toto layers with an SPDX or CycloneDX predicate type. */
  private async attestations(repository: string, index: string, image: string): Promise<SbomRef[]> {
    const manifest = await this.artifacts.manifest(repository, index);
    if (!manifest || !isIndexMediaType(manifest.mediaType)) return [];
    const out: SbomRef[] = [];
    for (const entry of (JSON.parse(manifest.payload.toString('utf8')) as IndexJson).manifests ?? []) {
      if (entry.annotations?.[BUILDKIT_REF_TYPE] !== 'attestation-manifest' || entry.annotations[BUILDKIT_REF_DIGEST] !== image) continue;
      const att = await this.artifacts.manifest(repository, entry.digest);
      if (!att) continue;
      for (const layer of (JSON.parse(att.payload.toString('utf8')) as ImageJson).layers ?? []) {
        const predicate = layer.annotations?.['in-toto.io/predicate-type'] ?? '';
        const format = /spdx/i.test(predicate) ? 'spdx' : /cyclonedx/i.test(predicate) ? 'cyclonedx' : null;
        if (format)
          out.push({ format, mediaType: layer.mediaType, manifest: entry.digest, blob: layer.digest, origin: 'buildkit-attestation' });
      }
    }
    return out;
  }

  /**
   * An image's SBOM document in `format` (any format when not given), or NOT_FOUND. An in-toto
   * statement (BuildKit) is unwrapped to its predicate, the SBOM itself.
   */
  async document(
    repository: string,
    digest: string,
    format?: SbomFormat,
    index?: string,
  ): Promise<{ ref: SbomRef; mediaType: string; body: Buffer }> {
    await this.requireManifest(repository, digest);
    const sboms = (await this.find(repository, digest, index)).filter((s) => !format || s.format === format);
    for (const ref of sboms) {
      const bytes = await this.readBlob(repository, ref.blob);
      if (!bytes) continue;
      if (ref.origin === 'buildkit-attestation') {
        const predicate = (JSON.parse(bytes.toString('utf8')) as { predicate?: unknown }).predicate;
        return {
          ref,
          mediaType: ref.format === 'cyclonedx' ? CYCLONEDX_MEDIA_TYPE : SPDX_MEDIA_TYPE,
          body: Buffer.from(JSON.stringify(predicate ?? null)),
        };
      }
      return { ref, mediaType: ref.mediaType, body: bytes };
    }
    throw new RegistryError(
      'NOT_FOUND',
      `${repository}@${digest} has no ${format ? `${format} ` : ''}SBOM: POST to this URL generates one`,
    );
  }

  /**
   * The packages of an image as the vulnerability matcher takes them (see MatchablePackage),
   * read from its SBOM (generated first when it has none): purls with their distro qualifier.
   */
  async packages(repository: string, digest: string): Promise<MatchablePackage[]> {
    let doc: { body: Buffer };
    try {
      doc = await this.document(repository, digest);
    } catch (err) {
      if (!(err instanceof RegistryError) || err.kind !== 'NOT_FOUND') throw err;
      // The system's own write, as on push: a scan asked for by someone who may scan but not push still gets its SBOM.
      await this.generate(repository, digest, { actor: null });
      doc = await this.document(repository, digest);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(doc.body.toString('utf8'));
    } catch {
      throw new RegistryError(
        'INVALID_ARGUMENT',
        `the SBOM of ${repository}@${digest} is not JSON (an XML CycloneDX document?): its packages cannot be listed`,
      );
    }
    return matchable(purlsOfDocument(parsed));
  }

  private async readBlob(repository: string, digest: string, limit = 256 * 1024 * 1024): Promise<Buffer | null> {
    const stream = await this.artifacts.openBlob(repository, digest);
    if (!stream) return null;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        stream.destroy();
        return null;
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  private async requireManifest(repository: string, digest: string) {
    if (!isDigest(digest)) throw new RegistryError('INVALID_ARGUMENT', `${digest.slice(0, 80)} is not a digest`);
    const manifest = await this.artifacts.manifest(repository, digest);
    if (!manifest) throw new RegistryError('NOT_FOUND', `manifest ${digest} not found in ${repository}`);
    return manifest;
  }
}

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string };
}
interface ImageJson {
  config?: Desc;
  layers?: Desc[];
  subject?: Desc;
}
interface IndexJson {
  manifests?: Desc[];
}

/** The platform images of an index (attestation manifests and nested indexes left out). */
function imagesOf(index: IndexJson): Desc[] {
  return (index.manifests ?? []).filter(
    (m) => m.annotations?.[BUILDKIT_REF_TYPE] !== 'attestation-manifest' && !isIndexMediaType(m.mediaType) && m.platform?.os !== 'unknown',
  );
}
