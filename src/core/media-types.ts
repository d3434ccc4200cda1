export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociNondistributableLayers: [
    'application/vnd.oci.image.layer.nondistributable.v1.tar',
    'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
    'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  ],
} as const;

export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaTypes.ociManifest,
  MediaTypes.ociIndex,
  MediaTypes.dockerManifest,
  MediaTypes.dockerManifestList,
];

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaTypes.ociIndex || mediaType === MediaTypes.dockerManifestList;
}

/** A media range as RFC 9110 writes it: token "/" token (parameters are cut off before the test). */
const MEDIA_RANGE = /^[!#$%&'*+.^_`|~0-9a-z-]+\/[!#$%&'*+.^_`|~0-9a-z-]+$/;

/**
 * Whether an `Accept` header admits the given media type. An absent header, a wildcard, or a
 * header naming no parseable media range at all (`Accept: garbage`, `Accept: ;;`) admits all:
 * a header the server cannot read says nothing against the manifest, so it is served (as CNCF
 * Distribution, which skips what it cannot parse, serves it) rather than answered 404.
 */
export function acceptAdmits(accept: string | undefined, mediaType: string): boolean {
  if (accept === undefined) return true;
  let named = false;
  for (const part of accept.split(',')) {
    const type = part.split(';')[0]?.trim().toLowerCase();
    if (!type) continue;
    if (type === '*/*' || type === mediaType || type === 'application/*') return true;
    if (!named && MEDIA_RANGE.test(type)) named = true;
  }
  return !named;
}
