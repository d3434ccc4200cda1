/**
 * What an SBOM lists: packages found in an image's layers, each with where it was found.
 */

export type PackageType = 'deb' | 'apk' | 'rpm' | 'npm' | 'pypi' | 'golang' | 'cargo';

export interface FoundPackage {
  type: PackageType;
  /** The (binary) package name; npm names keep their scope (`@scope/name`), Go names are module paths. */
  name: string;
  version: string;
  /** The source package (Debian `Source`, Alpine origin, rpm source rpm name), when the database names one. */
  source?: { name: string; version: string };
  arch?: string;
  /** Licence as the package declares it (an SPDX expression or free text). */
  license?: string;
  /** The file it was read from, root-relative. */
  path: string;
  /** The digest of the layer that file came from. */
  layer: string;
}

/** The distribution of the image, from `etc/os-release` (or `usr/lib/os-release`). */
export interface OsRelease {
  id: string;
  versionId: string | null;
  version: string | null;
  prettyName: string | null;
}

/** The package list of an image with its distribution, ready for the SBOM formats. */
export interface Inventory {
  os: OsRelease | null;
  /** Sorted by type, name, version, path: the SBOMs are deterministic. */
  packages: (FoundPackage & { purl: string; ecosystem: string | null })[];
  /** What could not be read (oversized files, layers not stored, unparseable databases). */
  notes: string[];
}

/** A package as the vulnerability matcher takes it (src/scanning): OSV ecosystem, the name OSV uses, the version it compares. */
export interface MatchablePackage {
  ecosystem: string;
  name: string;
  version: string;
  /** The binary package name when `name` is a source package (Debian) or origin (Alpine). */
  binary?: string;
}
