import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type * as packageUrlModule from 'packageurl-js';
import { lazyPackage } from '../core/lazy.js';
import { goBuildInfoSink, parseCargoLock, parsePackageJson, parsePackageLock, parsePythonMetadata } from './lang-packages.js';
import { bufferSink, readLayers, type FileHeader, type FileSink, type LayerRef } from './layers.js';
import type { FoundPackage, Inventory, MatchablePackage, OsRelease } from './model.js';
import { osEcosystem, parseApkInstalled, parseDpkgStatus, parseOsRelease, parseRpmHeader, type Parsed } from './os-packages.js';
import type { RpmDbReader } from './ports.js';

const packageUrl = lazyPackage<typeof packageUrlModule>('packageurl-js');

/** What one selected file yields. */
type FileValue = { os: OsRelease } | { packages: Parsed[] };

export interface InventoryLimits {
  /** Largest package database or manifest read into memory (default 64 MiB). */
  maxFileBytes: number;
  /** Largest executable scanned for Go build info (default 1 GiB; streamed, never held). */
  maxExecutableBytes: number;
}

export const DEFAULT_LIMITS: InventoryLimits = { maxFileBytes: 64 * 1024 * 1024, maxExecutableBytes: 1024 * 1024 * 1024 };

const OS_RELEASE = new Set(['etc/os-release', 'usr/lib/os-release']);
const RPMDB = new Set(['var/lib/rpm/rpmdb.sqlite', 'usr/lib/sysimage/rpm/rpmdb.sqlite']);
/** Small manifests (package.json, METADATA) have a tighter bound: there may be thousands. */
const SMALL_FILE = 1024 * 1024;

/**
 * Reads the layers and returns every package found in the image's final filesystem, with its
 * purl and its OSV ecosystem.
 */
export async function inventory(
  layers: LayerRef[],
  open: (layer: LayerRef) => Promise<Readable | null>,
  rpm: RpmDbReader,
  limits: InventoryLimits = DEFAULT_LIMITS,
): Promise<Inventory> {
  const notes: string[] = [];
  const select = (h: FileHeader): FileSink<FileValue> | null => selectFile(h, rpm, limits, notes);
  const read = await readLayers(layers, open, select);
  notes.push(...read.notes);
  const files = [...read.files.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const osFile = files.find((f) => f.path === 'etc/os-release' && 'os' in f.value) ?? files.find((f) => 'os' in f.value);
  const os = osFile && 'os' in osFile.value ? osFile.value.os : null;
  const seen = new Set<string>();
  const packages: Inventory['packages'] = [];
  for (const file of files) {
    if (!('packages' in file.value)) continue;
    for (const p of file.value.packages) {
      const found: FoundPackage = { ...p, path: file.path, layer: file.layer };
      const purl = purlOf(found, os);
      // The same package found twice (a lockfile and node_modules, two copies of a binary): listed once, first path wins.
      if (seen.has(purl)) continue;
      seen.add(purl);
      packages.push({ ...found, purl, ecosystem: ecosystemOf(found, os) });
    }
  }
  packages.sort((a, b) => cmp(a.type, b.type) || cmp(a.name, b.name) || cmp(a.version, b.version) || cmp(a.path, b.path));
  return { os, packages, notes };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function selectFile(h: FileHeader, rpm: RpmDbReader, limits: InventoryLimits, notes: string[]): FileSink<FileValue> | null {
  const { path } = h;
  const base = path.slice(path.lastIndexOf('/') + 1);
  const text = (parse: (t: string) => FileValue | null, limit = limits.maxFileBytes) =>
    bufferSink<FileValue>(h, limit, (b) => parse(b.toString('utf8')), notes);
  const pkgs = (parse: (t: string) => Parsed[], limit?: number) => text((t) => ({ packages: parse(t) }), limit);
  if (OS_RELEASE.has(path))
    return text((t) => {
      const os = parseOsRelease(t);
      return os ? { os } : null;
    });
  if (path === 'var/lib/dpkg/status') return pkgs((t) => parseDpkgStatus(t));
  if (path.startsWith('var/lib/dpkg/status.d/') && !path.endsWith('.md5sums') && !path.slice('var/lib/dpkg/status.d/'.length).includes('/'))
    return pkgs((t) => parseDpkgStatus(t, true));
  if (path === 'lib/apk/db/installed') return pkgs(parseApkInstalled);
  if (RPMDB.has(path)) return rpmSink(h, rpm, limits, notes);
  if (base === 'package-lock.json') return pkgs(parsePackageLock);
  if (base === 'package.json' && /(^|\/)node_modules\/(@[^/]+\/)?[^/@][^/]*\/package\.json$/.test(path))
    return pkgs(parsePackageJson, SMALL_FILE);
  if ((base === 'METADATA' && /\.dist-info\/METADATA$/.test(path)) || (base === 'PKG-INFO' && /\.egg-info\/PKG-INFO$/.test(path)))
    return pkgs(parsePythonMetadata, SMALL_FILE);
  if (base === 'Cargo.lock') return pkgs(parseCargoLock);
  // Executables (any x bit) big enough to be a Go program: scanned for Go build info.
  if ((h.mode & 0o111) !== 0 && h.size >= 64 * 1024 && h.size <= limits.maxExecutableBytes) {
    const sink = goBuildInfoSink();
    return {
      push: (chunk) => sink.push(chunk),
      finish: async () => {
        const packages = await sink.finish();
        return packages && packages.length > 0 ? { packages } : null;
      },
    };
  }
  return null;
}

/** The rpmdb is a SQLite file: buffered (bounded), written to a temporary file, and read through the RpmDbReader port. */
function rpmSink(h: FileHeader, rpm: RpmDbReader, limits: InventoryLimits, notes: string[]): FileSink<FileValue> | null {
  const inner = bufferSink<Buffer>(h, limits.maxFileBytes, (b) => b, notes);
  if (!inner) return null;
  return {
    push: (chunk) => inner.push(chunk),
    async finish() {
      const bytes = await inner.finish();
      if (!bytes) return null;
      const dir = await mkdtemp(join(tmpdir(), 'berth-rpmdb-'));
      try {
        const file = join(dir, 'rpmdb.sqlite');
        await writeFile(file, bytes);
        const packages = rpm
          .headers(file)
          .map(parseRpmHeader)
          .filter((p): p is Parsed => p !== null);
        return { packages };
      } catch (err) {
        notes.push(`${h.path}: not a readable rpm database (${(err as Error).message})`);
        return null;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** The OSV ecosystem of a package (null: none OSV knows, e.g. an OS package of an unknown distribution). */
export function ecosystemOf(p: Pick<FoundPackage, 'type'>, os: OsRelease | null): string | null {
  switch (p.type) {
    case 'deb':
    case 'apk':
    case 'rpm':
      return osEcosystem(p.type, os);
    case 'npm':
      return 'npm';
    case 'pypi':
      return 'PyPI';
    case 'golang':
      return 'Go';
    case 'cargo':
      return 'crates.io';
  }
}

const DISTRO_NAMESPACE: Record<string, string> = {
  rhel: 'redhat',
  ol: 'oracle',
  amzn: 'amazon',
  sles: 'suse',
  'opensuse-leap': 'opensuse',
};

/** The package's purl (`pkg:deb/debian/…?arch=&distro=debian-12&upstream=<source>`, as Syft and Trivy write them). */
export function purlOf(p: FoundPackage, os: OsRelease | null): string {
  const distro = os ? `${os.id}${os.versionId ? `-${os.versionId}` : ''}` : undefined;
  const qualifiers: Record<string, string> = {};
  if (p.arch) qualifiers.arch = p.arch;
  switch (p.type) {
    case 'deb':
    case 'apk':
    case 'rpm': {
      if (distro) qualifiers.distro = distro;
      let version = p.version;
      if (p.type === 'rpm') {
        const m = /^(\d+):(.*)$/.exec(p.version);
        if (m) {
          qualifiers.epoch = m[1]!;
          version = m[2]!;
        }
      }
      if (p.source && (p.source.name !== p.name || p.source.version !== p.version)) {
        qualifiers.upstream = p.source.version !== p.version && p.type === 'deb' ? `${p.source.name}@${p.source.version}` : p.source.name;
      }
      const namespace = os ? (DISTRO_NAMESPACE[os.id] ?? os.id) : p.type === 'deb' ? 'debian' : p.type === 'apk' ? 'alpine' : null;
      return new (packageUrl().PackageURL)(p.type, namespace, p.name, version, qualifiers).toString();
    }
    case 'npm': {
      const slash = p.name.startsWith('@') ? p.name.indexOf('/') : -1;
      return new (packageUrl().PackageURL)(
        'npm',
        slash > 0 ? p.name.slice(0, slash) : null,
        slash > 0 ? p.name.slice(slash + 1) : p.name,
        p.version,
      ).toString();
    }
    case 'golang': {
      const slash = p.name.lastIndexOf('/');
      return new (packageUrl().PackageURL)(
        'golang',
        slash > 0 ? p.name.slice(0, slash) : null,
        slash > 0 ? p.name.slice(slash + 1) : p.name,
        p.version,
      ).toString();
    }
    case 'pypi':
      return new (packageUrl().PackageURL)('pypi', null, p.name, p.version).toString();
    case 'cargo':
      return new (packageUrl().PackageURL)('cargo', null, p.name, p.version).toString();
  }
}

/**
 * The package list as the vulnerability matcher takes it: OSV's ecosystem, the SOURCE package
 * and its version for Debian (OSV's Debian data is per source package), the origin for Alpine,
 * the binary name otherwise. Packages without an ecosystem OSV knows are left out.
 */
export function matchable(packages: Inventory['packages']): MatchablePackage[] {
  const out = new Map<string, MatchablePackage>();
  for (const p of packages) {
    if (!p.ecosystem) continue;
    const bySource = (p.type === 'deb' || p.type === 'apk') && p.source;
    const m: MatchablePackage = bySource
      ? { ecosystem: p.ecosystem, name: p.source!.name, version: p.source!.version, binary: p.name }
      : { ecosystem: p.ecosystem, name: p.name, version: p.version };
    const key = `${m.ecosystem}\u0000${m.name}\u0000${m.version}`;
    if (!out.has(key)) out.set(key, m);
  }
  return [...out.values()];
}
