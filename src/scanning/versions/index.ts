import type pep440Module from '@renovatebot/pep440';
import type semverModule from 'semver';
import { lazyPackage } from '../../core/lazy.js';
import { compareApkVersions, isValidApkVersion } from './apk.js';
import { compareDebianVersions, parseDebianVersion } from './dpkg.js';

/**
 * How one ecosystem orders its versions. `compare` is only called on versions `valid`
 * accepted; it returns a negative number, 0 or a positive number.
 */
export interface VersionScheme {
  name: string;
  valid(version: string): boolean;
  compare(a: string, b: string): number;
}

/** Debian (and Ubuntu): dpkg's order. */
export const DPKG: VersionScheme = {
  name: 'dpkg',
  valid: (v) => parseDebianVersion(v) !== null,
  compare: compareDebianVersions,
};

/** Alpine (and Wolfi, Chainguard): apk-tools' order. */
export const APK: VersionScheme = {
  name: 'apk',
  valid: isValidApkVersion,
  compare: compareApkVersions,
};

/**
 * Semantic Versioning 2.0 (npm, crates.io, and every OSV `SEMVER` range), with the `semver`
 * package: pre-releases below their release, build metadata ignored. A leading `v` (Go's
 * module versions, `v1.2.3`) is accepted; Go pseudo-versions (`v0.0.0-20210101000000-abcdef123456`)
 * are semver pre-releases and sort as Go sorts them; `+incompatible` is build metadata.
 */
const semver = lazyPackage<typeof semverModule>('semver');
const pep440 = lazyPackage<typeof pep440Module>('@renovatebot/pep440');

export const SEMVER: VersionScheme = {
  name: 'semver',
  valid: (v) => semver().valid(stripV(v)) !== null,
  compare: (a, b) => semver().compare(stripV(a), stripV(b)),
};

/** PEP 440 (PyPI), with Renovate's `@renovatebot/pep440`: epochs, pre/post/dev releases, local versions. */
export const PEP440: VersionScheme = {
  name: 'pep440',
  valid: (v) => pep440().valid(v) !== null,
  compare: (a, b) => pep440().compare(a, b),
};

function stripV(version: string): string {
  return version.startsWith('v') ? version.slice(1) : version;
}

/**
 * The OSV ecosystem name without its release suffix (`Debian:12` → `Debian`,
 * `Alpine:v3.19` → `Alpine`, `Ubuntu:22.04:LTS` → `Ubuntu`).
 */
export function baseEcosystem(ecosystem: string): string {
  const colon = ecosystem.indexOf(':');
  return colon < 0 ? ecosystem : ecosystem.slice(0, colon);
}

const BY_ECOSYSTEM: Record<string, VersionScheme> = {
  Debian: DPKG,
  Ubuntu: DPKG,
  Alpine: APK,
  Wolfi: APK,
  Chainguard: APK,
  npm: SEMVER,
  Go: SEMVER,
  'crates.io': SEMVER,
  PyPI: PEP440,
};

/** The order of an OSV `ECOSYSTEM` range in `ecosystem` (null: an ecosystem Berth cannot order; only explicit `versions` match there). */
export function schemeForEcosystem(ecosystem: string): VersionScheme | null {
  return BY_ECOSYSTEM[baseEcosystem(ecosystem)] ?? null;
}

/** Ecosystems whose ranges Berth evaluates (docs/supply-chain.md). */
export const ORDERED_ECOSYSTEMS = Object.keys(BY_ECOSYSTEM);
