import type { PackageURL } from 'packageurl-js';
import type * as packageUrlModule from 'packageurl-js';
import { lazyPackage } from '../core/lazy.js';
import type { ReferrerRecord } from '../core/ports.js';
import { CYCLONEDX_MEDIA_TYPE, SPDX_MEDIA_TYPE, TOOL_NAME, type SbomFormat } from './formats.js';
import { ecosystemOf } from './inventory.js';
import type { Inventory, OsRelease, PackageType } from './model.js';

const packageUrl = lazyPackage<typeof packageUrlModule>('packageurl-js');

/** Where an SBOM came from. */
export type SbomOrigin = 'generated' | 'referrer' | 'cosign-referrer' | 'cosign-tag' | 'buildkit-attestation';

/**
 * Referrers that are SBOMs, as clients push them: Trivy/oras (`application/spdx+json`,
 * `application/vnd.cyclonedx+json`), cosign `attach sbom` in OCI 1.1 mode
 * (`application/vnd.dev.cosign.artifact.sbom.v1+json`, the format told by its layer), SPDX tag-value
 * types; Berth's own carry `created-by: berth-sbom`.
 */
export function recogniseReferrer(ref: ReferrerRecord): { format: SbomFormat | 'other'; origin: SbomOrigin } | null {
  const type = ref.artifactType ?? '';
  const ours = ref.annotations?.['created-by'] === TOOL_NAME;
  if (type === SPDX_MEDIA_TYPE || type === 'text/spdx+json' || type === 'text/spdx')
    return { format: 'spdx', origin: ours ? 'generated' : 'referrer' };
  if (type === CYCLONEDX_MEDIA_TYPE || type === 'application/vnd.cyclonedx')
    return { format: 'cyclonedx', origin: ours ? 'generated' : 'referrer' };
  if (type === 'application/vnd.dev.cosign.artifact.sbom.v1+json') return { format: 'other', origin: 'cosign-referrer' };
  return null;
}

const PURL_TYPES: Record<string, PackageType> = {
  deb: 'deb',
  apk: 'apk',
  rpm: 'rpm',
  npm: 'npm',
  pypi: 'pypi',
  golang: 'golang',
  cargo: 'cargo',
};

/** Every purl an SPDX (`externalRefs`) or CycloneDX (`components[].purl`, nested) document names. */
function purls(doc: unknown): string[] {
  const out: string[] = [];
  const d = doc as { packages?: { externalRefs?: { referenceType?: string; referenceLocator?: string }[] }[]; components?: unknown[] };
  for (const p of d.packages ?? [])
    for (const r of p.externalRefs ?? []) if (r.referenceType === 'purl' && r.referenceLocator) out.push(r.referenceLocator);
  const walk = (components: unknown[] | undefined) => {
    for (const c of components ?? []) {
      const comp = c as { purl?: string; components?: unknown[] };
      if (comp.purl) out.push(comp.purl);
      walk(comp.components);
    }
  };
  walk(d.components);
  return out;
}

/**
 * The packages of an SBOM document (Berth's or any client's), read from its purls: type, name,
 * version, the source package from `upstream`, the distribution from `distro` (`debian-12`).
 */
export function purlsOfDocument(doc: unknown): Inventory['packages'] {
  const out: Inventory['packages'] = [];
  for (const text of purls(doc)) {
    let purl: PackageURL;
    try {
      purl = packageUrl().PackageURL.fromString(text);
    } catch {
      continue;
    }
    const type = PURL_TYPES[purl.type];
    if (!type || !purl.version) continue;
    const q = (purl.qualifiers ?? {}) as Record<string, string>;
    const name = purl.namespace && (type === 'npm' || type === 'golang') ? `${purl.namespace}/${purl.name}` : purl.name;
    const version = type === 'rpm' && q.epoch ? `${q.epoch}:${purl.version}` : purl.version;
    let os: OsRelease | null = null;
    if (q.distro) {
      const m = /^([a-z]+)-(.+)$/.exec(q.distro);
      os = { id: m ? m[1]! : q.distro, versionId: m ? m[2]! : null, version: null, prettyName: null };
    } else if (type === 'deb' || type === 'apk') {
      os = { id: purl.namespace ?? '', versionId: null, version: null, prettyName: null };
    }
    let source: { name: string; version: string } | undefined;
    if (q.upstream) {
      const at = q.upstream.indexOf('@');
      source = at > 0 ? { name: q.upstream.slice(0, at), version: q.upstream.slice(at + 1) } : { name: q.upstream, version };
    } else if (type === 'deb' || type === 'apk') {
      source = { name, version };
    }
    out.push({ type, name, version, source, arch: q.arch, path: '', layer: '', purl: text, ecosystem: ecosystemOf({ type }, os) });
  }
  return out;
}

/** The format of a layer of cosign's legacy `sha256-<hex>.sbom` tag (`cosign attach sbom`), by its media type. */
export function cosignSbomLayerFormat(mediaType: string): SbomFormat | 'other' | null {
  if (mediaType === 'text/spdx+json' || mediaType === 'text/spdx' || mediaType === SPDX_MEDIA_TYPE) return 'spdx';
  if (mediaType === CYCLONEDX_MEDIA_TYPE) return 'cyclonedx';
  if (mediaType === 'application/vnd.syft+json' || mediaType === 'application/vnd.cyclonedx+xml') return 'other';
  return null;
}
