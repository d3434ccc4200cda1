import type { FoundPackage, OsRelease } from './model.js';

/**
 * The OS package databases: dpkg's `status` (and distroless `status.d/*`), apk's `installed`,
 * rpm headers, and `os-release`. Pure parsers: bytes in, packages out (path and layer are added
 * by the caller).
 */

export type Parsed = Omit<FoundPackage, 'path' | 'layer'>;

/** RFC 822-style stanzas (dpkg): `Field: value`, continuation lines start with a space or tab, stanzas split by blank lines. */
function stanzas(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  let current = new Map<string, string>();
  let last: string | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (current.size > 0) out.push(current);
      current = new Map();
      last = null;
      continue;
    }
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      current.set(last, `${current.get(last)}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim();
    current.set(last, line.slice(colon + 1).trim());
  }
  if (current.size > 0) out.push(current);
  return out;
}

/** dpkg's `status` or one `status.d/<pkg>` file: installed packages with their source package and its version. */
export function parseDpkgStatus(text: string, distroless = false): Parsed[] {
  const packages: Parsed[] = [];
  for (const s of stanzas(text)) {
    const name = s.get('Package');
    const version = s.get('Version');
    if (!name || !version) continue;
    const status = s.get('Status');
    // status.d files of distroless images carry no Status field: every one is installed.
    if (status !== undefined ? !/\binstalled$/.test(status) || /\b(deinstall|purge)\b/.test(status) : !distroless) continue;
    const sourceField = s.get('Source');
    let source = { name, version };
    if (sourceField) {
      const m = /^(\S+)(?:\s+\(([^)]+)\))?/.exec(sourceField);
      if (m) source = { name: m[1]!, version: m[2]?.trim() ?? version };
    }
    packages.push({ type: 'deb', name, version, source, arch: s.get('Architecture') });
  }
  return packages;
}

/** apk's `lib/apk/db/installed`: records of `X:value` lines split by blank lines. */
export function parseApkInstalled(text: string): Parsed[] {
  const packages: Parsed[] = [];
  let fields = new Map<string, string>();
  const flush = () => {
    const name = fields.get('P');
    const version = fields.get('V');
    if (name && version) {
      packages.push({
        type: 'apk',
        name,
        version,
        source: { name: fields.get('o') ?? name, version },
        arch: fields.get('A'),
        license: fields.get('L'),
      });
    }
    fields = new Map();
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      flush();
      continue;
    }
    if (line[1] !== ':') continue;
    const key = line[0]!;
    // The first occurrence wins: per-file lines (R, Z, a…) repeat, the package fields do not.
    if (!fields.has(key)) fields.set(key, line.slice(2));
  }
  flush();
  return packages;
}

/** `os-release`: KEY=value lines, values optionally quoted (shell syntax, no expansion). */
export function parseOsRelease(text: string): OsRelease | null {
  const values = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    let value = line.slice(eq + 1);
    const q = value[0];
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) value = value.slice(1, -1);
    if (q === '"') value = value.replace(/\\(["$`\\])/g, '$1');
    values.set(line.slice(0, eq), value);
  }
  const id = values.get('ID');
  if (!id) return null;
  return {
    id,
    versionId: values.get('VERSION_ID') ?? null,
    version: values.get('VERSION') ?? null,
    prettyName: values.get('PRETTY_NAME') ?? null,
  };
}

/**
 * The OSV ecosystem of an OS package type on a distribution: `Debian:12`, `Ubuntu:22.04(:LTS)`,
 * `Alpine:v3.19`, `AlmaLinux:9`, `Rocky Linux:9`; null where OSV has no data for it.
 */
export function osEcosystem(type: 'deb' | 'apk' | 'rpm', os: OsRelease | null): string | null {
  if (!os) return null;
  const v = os.versionId;
  switch (os.id) {
    case 'debian':
      return type === 'deb' ? (v ? `Debian:${v.split('.')[0]}` : 'Debian') : null;
    case 'ubuntu':
      return type === 'deb' && v ? `Ubuntu:${v}${/LTS/.test(os.version ?? '') ? ':LTS' : ''}` : null;
    case 'alpine': {
      if (type !== 'apk' || !v) return null;
      const [major, minor] = v.split('.');
      return `Alpine:v${major}.${minor ?? '0'}`;
    }
    case 'almalinux':
      return type === 'rpm' && v ? `AlmaLinux:${v.split('.')[0]}` : null;
    case 'rocky':
      return type === 'rpm' && v ? `Rocky Linux:${v.split('.')[0]}` : null;
    default:
      return null;
  }
}

// ── rpm headers ───────────────────────────────────────────────────────────────

const RPMTAG = { name: 1000, version: 1001, release: 1002, epoch: 1003, license: 1014, arch: 1022, sourcerpm: 1044 } as const;
const RPM_INT32 = 4;
const RPM_STRING = 6;
const RPM_STRING_ARRAY = 8;
const RPM_I18NSTRING = 9;

/**
 * One rpm header as the rpmdb stores it (rpm's `headerImport` of a blob: `il` index entries
 * and `dl` data bytes, big-endian counts, then 16-byte entries tag/type/offset/count, then the
 * data store). Returns the package, or null for `gpg-pubkey` pseudo-packages and broken blobs.
 */
export function parseRpmHeader(blob: Buffer): Parsed | null {
  if (blob.length < 8) return null;
  const il = blob.readUInt32BE(0);
  const dl = blob.readUInt32BE(4);
  const dataStart = 8 + il * 16;
  if (il > 100_000 || dataStart + dl > blob.length) return null;
  const strings = new Map<number, string>();
  const ints = new Map<number, number>();
  for (let i = 0; i < il; i++) {
    const at = 8 + i * 16;
    const tag = blob.readUInt32BE(at);
    const type = blob.readUInt32BE(at + 4);
    const offset = blob.readInt32BE(at + 8);
    if (offset < 0 || offset >= dl) continue;
    const start = dataStart + offset;
    if (type === RPM_STRING || type === RPM_I18NSTRING || type === RPM_STRING_ARRAY) {
      const end = blob.indexOf(0, start);
      if (end < 0 || end > dataStart + dl) continue;
      strings.set(tag, blob.toString('utf8', start, end));
    } else if (type === RPM_INT32 && start + 4 <= dataStart + dl) {
      ints.set(tag, blob.readInt32BE(start));
    }
  }
  const name = strings.get(RPMTAG.name);
  const version = strings.get(RPMTAG.version);
  const release = strings.get(RPMTAG.release);
  if (!name || !version || name === 'gpg-pubkey') return null;
  const epoch = ints.get(RPMTAG.epoch);
  const full = `${epoch ? `${epoch}:` : ''}${version}${release ? `-${release}` : ''}`;
  const sourceRpm = strings.get(RPMTAG.sourcerpm);
  // name-version-release.src.rpm → the name: drop ".src.rpm" and the last two dash-separated parts.
  const srcParts = sourceRpm?.replace(/\.(no)?src\.rpm$/, '').split('-');
  const source = srcParts && srcParts.length >= 3 ? { name: srcParts.slice(0, -2).join('-'), version: full } : undefined;
  return { type: 'rpm', name, version: full, source, arch: strings.get(RPMTAG.arch), license: strings.get(RPMTAG.license) };
}
