import { createHash, randomUUID } from 'node:crypto';
import type * as CDXModule from '@cyclonedx/cyclonedx-library';
import { lazyPackage } from '../core/lazy.js';
import type { Inventory } from './model.js';

/**
 * The two SBOM formats Berth writes: SPDX 2.3 JSON (built by hand from the spec's structure:
 * no maintained SPDX 2.3 writer exists on npm) and CycloneDX 1.6 JSON (CycloneDX's own library).
 * Both are deterministic apart from the creation time and the document's unique id.
 */

const cyclonedx = lazyPackage<typeof CDXModule>('@cyclonedx/cyclonedx-library');

export const SBOM_FORMATS = ['spdx', 'cyclonedx'] as const;
export type SbomFormat = (typeof SBOM_FORMATS)[number];

export const SPDX_MEDIA_TYPE = 'application/spdx+json';
export const CYCLONEDX_MEDIA_TYPE = 'application/vnd.cyclonedx+json';

export function mediaTypeOf(format: SbomFormat): string {
  return format === 'spdx' ? SPDX_MEDIA_TYPE : CYCLONEDX_MEDIA_TYPE;
}

/** The image an SBOM describes. */
export interface SbomSubject {
  repository: string;
  digest: string;
  /** Where the registry is reached, for the image's purl (`repository_url`), e.g. registry.example.com. */
  registryHost: string;
}

export const TOOL_NAME = 'berth-sbom';
export const TOOL_VERSION = '0.1.0';

function imagePurl(subject: SbomSubject): string {
  const name = subject.repository.slice(subject.repository.lastIndexOf('/') + 1);
  return `pkg:oci/${encodeURIComponent(name)}@${encodeURIComponent(subject.digest)}?repository_url=${encodeURIComponent(`${subject.registryHost}/${subject.repository}`)}`;
}

/** An SPDX id from any text: letters, digits, `.` and `-` only, made unique by a short hash. */
function spdxId(prefix: string, key: string): string {
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 12);
  return `SPDXRef-${prefix}-${key.replace(/[^A-Za-z0-9.-]+/g, '-').slice(0, 60)}-${hash}`;
}

/** A licence as SPDX 2.3 takes it: a listed id as is, anything else as a LicenseRef with its text kept. */
function spdxLicense(text: string | undefined, extracted: Map<string, string>): string {
  if (!text) return 'NOASSERTION';
  if (cyclonedx().SPDX.isSupportedSpdxId(text as unknown)) return text;
  const id = `LicenseRef-${text.replace(/[^A-Za-z0-9.-]+/g, '-').slice(0, 60)}-${createHash('sha256').update(text).digest('hex').slice(0, 8)}`;
  extracted.set(id, text);
  return id;
}

export function toSpdx(inv: Inventory, subject: SbomSubject, created: Date = new Date()): Record<string, unknown> {
  const imageId = 'SPDXRef-Image';
  const extracted = new Map<string, string>();
  const packages: Record<string, unknown>[] = [
    {
      SPDXID: imageId,
      name: subject.repository,
      versionInfo: subject.digest,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      primaryPackagePurpose: 'CONTAINER',
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: imagePurl(subject) }],
      ...(inv.os ? { comment: `operating system: ${inv.os.prettyName ?? `${inv.os.id} ${inv.os.versionId ?? ''}`.trim()}` } : {}),
    },
  ];
  const relationships: Record<string, unknown>[] = [
    { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId },
  ];
  for (const p of inv.packages) {
    const id = spdxId(`Package-${p.type}`, p.purl);
    packages.push({
      SPDXID: id,
      name: p.name,
      versionInfo: p.version,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: spdxLicense(p.license, extracted),
      copyrightText: 'NOASSERTION',
      ...(p.source && p.source.name !== p.name ? { sourceInfo: `built from source package ${p.source.name} ${p.source.version}` } : {}),
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
      annotations: [
        {
          annotationType: 'OTHER',
          annotator: `Tool: ${TOOL_NAME}-${TOOL_VERSION}`,
          annotationDate: isoSeconds(created),
          comment: `found in /${p.path} of layer ${p.layer}`,
        },
      ],
    });
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: id });
  }
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${subject.repository}@${subject.digest}`,
    documentNamespace: `https://${subject.registryHost}/spdx/${subject.repository}/${subject.digest}/${randomUUID()}`,
    creationInfo: { created: isoSeconds(created), creators: [`Tool: ${TOOL_NAME}-${TOOL_VERSION}`, 'Organization: Berth'] },
    documentDescribes: [imageId],
    packages,
    relationships,
    ...(extracted.size > 0
      ? {
          hasExtractedLicensingInfos: [...extracted]
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([licenseId, extractedText]) => ({ licenseId, extractedText, name: extractedText })),
        }
      : {}),
  };
}

/** SPDX wants `YYYY-MM-DDThh:mm:ssZ`. */
function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function toCycloneDx(inv: Inventory, subject: SbomSubject, created: Date = new Date()): Record<string, unknown> {
  const CDX = cyclonedx();
  const { Models, Enums } = CDX;
  const bom = new Models.Bom({ serialNumber: `urn:uuid:${randomUUID()}` });
  bom.metadata.timestamp = created;
  bom.metadata.tools.components.add(
    new Models.Component(Enums.ComponentType.Application, TOOL_NAME, { version: TOOL_VERSION, group: 'berth' }),
  );
  const image = new Models.Component(Enums.ComponentType.Container, subject.repository, {
    version: subject.digest,
    bomRef: imagePurl(subject),
    purl: imagePurl(subject),
  });
  bom.metadata.component = image;
  if (inv.os) {
    bom.components.add(
      new Models.Component(Enums.ComponentType.OperatingSystem, inv.os.id, {
        version: inv.os.versionId ?? undefined,
        description: inv.os.prettyName ?? undefined,
        bomRef: `os:${inv.os.id}`,
      }),
    );
  }
  for (const p of inv.packages) {
    const properties = new Models.PropertyRepository([
      new Models.Property('berth:package:type', p.type),
      new Models.Property('berth:location:path', `/${p.path}`),
      new Models.Property('berth:location:layer', p.layer),
    ]);
    if (p.source) {
      properties.add(new Models.Property('berth:package:source-name', p.source.name));
      properties.add(new Models.Property('berth:package:source-version', p.source.version));
    }
    if (p.arch) properties.add(new Models.Property('berth:package:arch', p.arch));
    const licenses = new Models.LicenseRepository();
    if (p.license)
      licenses.add(CDX.SPDX.isSupportedSpdxId(p.license) ? new Models.SpdxLicense(p.license) : new Models.NamedLicense(p.license));
    bom.components.add(
      new Models.Component(Enums.ComponentType.Library, p.name, { version: p.version, purl: p.purl, bomRef: p.purl, licenses, properties }),
    );
  }
  const serializer = new CDX.Serialize.JsonSerializer(new CDX.Serialize.JSON.Normalize.Factory(CDX.Spec.Spec1dot6));
  return JSON.parse(serializer.serialize(bom, { sortLists: true })) as Record<string, unknown>;
}

export function render(format: SbomFormat, inv: Inventory, subject: SbomSubject, created?: Date): Buffer {
  const doc = format === 'spdx' ? toSpdx(inv, subject, created) : toCycloneDx(inv, subject, created);
  return Buffer.from(JSON.stringify(doc));
}
