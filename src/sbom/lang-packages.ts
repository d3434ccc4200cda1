import type { FileSink } from './layers.js';
import type { Parsed } from './os-packages.js';

/**
 * Language package manifests: npm lockfiles and installed `package.json`s, Python
 * `*.dist-info/METADATA`, `Cargo.lock`, and the build info Go embeds in its binaries.
 */

function licenseOf(value: unknown): string | undefined {
  if (typeof value === 'string' && value.trim()) return value.trim();
  if (value && typeof value === 'object' && typeof (value as { type?: unknown }).type === 'string') return (value as { type: string }).type;
  return undefined;
}

/** `package-lock.json` v2/v3 (and `node_modules/.package-lock.json`): its `packages` map, the root project left out. */
export function parsePackageLock(text: string): Parsed[] {
  const lock = JSON.parse(text) as {
    lockfileVersion?: number;
    packages?: Record<string, { name?: string; version?: string; license?: unknown; link?: boolean }>;
    dependencies?: Record<string, { version?: string }>;
  };
  const out: Parsed[] = [];
  if (lock.packages) {
    for (const [key, entry] of Object.entries(lock.packages)) {
      if (key === '' || entry.link || !entry.version) continue;
      const at = key.lastIndexOf('node_modules/');
      const name = entry.name ?? (at >= 0 ? key.slice(at + 'node_modules/'.length) : null);
      if (!name) continue;
      out.push({ type: 'npm', name, version: entry.version, license: licenseOf(entry.license) });
    }
    return out;
  }
  // lockfileVersion 1: nested `dependencies`.
  const walk = (deps: Record<string, { version?: string; dependencies?: Record<string, unknown> }> | undefined) => {
    for (const [name, entry] of Object.entries(deps ?? {})) {
      if (entry.version && !/^(file|link|git\+?|https?):/.test(entry.version)) out.push({ type: 'npm', name, version: entry.version });
      walk(entry.dependencies as never);
    }
  };
  walk(lock.dependencies as never);
  return out;
}

/** An installed package's `node_modules/<name>/package.json`. */
export function parsePackageJson(text: string): Parsed[] {
  const pkg = JSON.parse(text) as { name?: unknown; version?: unknown; license?: unknown; licenses?: unknown };
  if (typeof pkg.name !== 'string' || typeof pkg.version !== 'string' || !pkg.name || !pkg.version) return [];
  const license =
    licenseOf(pkg.license) ??
    (Array.isArray(pkg.licenses) ? pkg.licenses.map(licenseOf).filter(Boolean).join(' OR ') || undefined : undefined);
  return [{ type: 'npm', name: pkg.name, version: pkg.version, license }];
}

/** Python core metadata (`METADATA`, `PKG-INFO`): the header block up to the first blank line. */
export function parsePythonMetadata(text: string): Parsed[] {
  const headers = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') break;
    if (line.startsWith(' ') || line.startsWith('\t')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(key)) headers.set(key, line.slice(colon + 1).trim());
  }
  const name = headers.get('name');
  const version = headers.get('version');
  if (!name || !version) return [];
  const license =
    headers.get('license-expression') ||
    (headers.get('license') && headers.get('license') !== 'UNKNOWN' ? headers.get('license') : undefined);
  return [{ type: 'pypi', name, version, license: license || undefined }];
}

/**
 * `Cargo.lock` (TOML): its `[[package]]` tables' `name` and `version`. Cargo writes the file
 * itself in a fixed shape — one `key = "string"` per line — so the tables are read line by line;
 * packages without a `source` are the workspace's own crates and are left out.
 */
export function parseCargoLock(text: string): Parsed[] {
  const out: Parsed[] = [];
  let current: Map<string, string> | null = null;
  const flush = () => {
    if (current?.get('name') && current.get('version') && current.has('source'))
      out.push({ type: 'cargo', name: current.get('name')!, version: current.get('version')! });
    current = null;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) {
      flush();
      if (line === '[[package]]') current = new Map();
      continue;
    }
    const m = /^([A-Za-z0-9_-]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$/.exec(line);
    if (m && current) (current as Map<string, string>).set(m[1]!, m[2]!);
  }
  flush();
  return out;
}

// ── Go build info ────────────────────────────────────────────────────────────

const GO_MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
/** Bytes kept after the magic: the 32-byte header and the two varint-prefixed strings. */
const GO_INFO_LIMIT = 1024 * 1024;

function uvarint(buf: Buffer, at: number): [number, number] | null {
  let value = 0;
  let shift = 0;
  for (let i = at; i < buf.length && shift < 35; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [value, i + 1];
    shift += 7;
  }
  return null;
}

/** Go's module info text (`path`, `mod`, `dep`, `=>` lines) plus its Go version, as packages. */
export function parseGoModInfo(goVersion: string, modinfo: string): Parsed[] {
  const out: Parsed[] = [];
  let lastDep: Parsed | null = null;
  for (const line of modinfo.split('\n')) {
    const [kind, path, version] = line.split('\t');
    if ((kind === 'mod' || kind === 'dep') && path && version) {
      lastDep = { type: 'golang', name: path, version };
      if (version !== '(devel)') out.push(lastDep);
    } else if (kind === '=>' && path && version && lastDep) {
      // A replacement: the module actually built in.
      lastDep.name = path;
      lastDep.version = version;
    }
  }
  const go = /^go(\d+\.\d+(?:\.\d+)?)/.exec(goVersion);
  if (go) out.push({ type: 'golang', name: 'stdlib', version: go[1]! });
  return out;
}

/**
 * A sink that streams an executable looking for Go's build info (Go 1.18+ inline format: the
 * 16-byte header `\xff Go buildinf:`, pointer size, flags with bit 2 set, padding to 32 bytes,
 * then the varint-prefixed Go version and module info). Non-ELF files stop at once; of an ELF
 * file only a 15-byte carry-over window and, once found, at most 1 MiB after the magic are held.
 */
export function goBuildInfoSink(): FileSink<Parsed[]> {
  let checkedElf = false;
  let carry = Buffer.alloc(0);
  let found: Buffer[] | null = null;
  let foundSize = 0;
  return {
    push(chunk) {
      if (!checkedElf) {
        checkedElf = true;
        if (chunk.length < 4 || chunk.readUInt32BE(0) !== 0x7f454c46) return false;
      }
      if (found) {
        found.push(chunk);
        foundSize += chunk.length;
        return foundSize < GO_INFO_LIMIT;
      }
      const window = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      const at = window.indexOf(GO_MAGIC);
      if (at >= 0) {
        found = [window.subarray(at)];
        foundSize = window.length - at;
        return foundSize < GO_INFO_LIMIT;
      }
      carry = Buffer.from(window.subarray(Math.max(0, window.length - (GO_MAGIC.length - 1))));
      return true;
    },
    finish() {
      if (!found) return null;
      const info = Buffer.concat(found).subarray(0, GO_INFO_LIMIT);
      if (info.length < 32 || (info[15]! & 0x2) === 0) return null; // pre-1.18 pointer format: not read
      const v = uvarint(info, 32);
      if (!v) return null;
      const goVersion = info.toString('utf8', v[1], v[1] + v[0]);
      const m = uvarint(info, v[1] + v[0]);
      if (!m) return null;
      let modinfo = info.subarray(m[1], m[1] + m[0]);
      // The module info is framed by 16-byte sentinels.
      if (modinfo.length >= 33 && modinfo[modinfo.length - 17] === 0x0a) modinfo = modinfo.subarray(16, modinfo.length - 16);
      return parseGoModInfo(goVersion, modinfo.toString('utf8'));
    },
  };
}
