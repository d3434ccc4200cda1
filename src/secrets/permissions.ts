import { statSync } from 'node:fs';
import path from 'node:path';
import type { BerthConfig } from '../config/schema.js';

/**
 * Modes of what Berth creates under its data directory: only the user Berth runs as may read
 * the metadata DB (account hashes, signing keys), blobs and upload staging files. The SQLite
 * driver, the filesystem blob store and this check share these numbers.
 */
export const DATA_DIR_MODE = 0o700;
export const DATA_FILE_MODE = 0o600;

/** A path other local users may read or enter, with the command that closes it. */
export interface LoosePath {
  path: string;
  /** Permission bits, e.g. "0644". */
  mode: string;
  kind: 'directory' | 'file';
  fix: string;
}

/**
 * The data paths that exist and give the group or others any access (mode & 0o077): the data
 * directory, the filesystem blob root, the SQLite file with its -wal and -shm, and the secrets
 * key file. Berth does not change the modes of existing files itself (a shared group may be
 * deliberate; see docs/security.md); the server logs one warning per path at start.
 */
export function checkDataPermissions(config: BerthConfig): LoosePath[] {
  const paths: string[] = [config.data.dir];
  const storageRoot = config.storage.filesystem?.rootdirectory;
  if (storageRoot) paths.push(storageRoot);
  if (config.metadata.driver === 'sqlite' && config.metadata.path && config.metadata.path !== ':memory:') {
    const db = config.metadata.path;
    paths.push(path.dirname(db), db, `${db}-wal`, `${db}-shm`);
  }
  if (config.secrets.keyfile) paths.push(path.resolve(config.secrets.keyfile));
  const loose: LoosePath[] = [];
  for (const p of new Set(paths.map((p) => path.resolve(p)))) {
    const stat = statSync(p, { throwIfNoEntry: false });
    if (!stat || (stat.mode & 0o077) === 0) continue;
    const directory = stat.isDirectory();
    loose.push({
      path: p,
      mode: `0${(stat.mode & 0o777).toString(8)}`,
      kind: directory ? 'directory' : 'file',
      fix: `chmod ${directory ? '700' : '600'} ${shellQuote(p)}`,
    });
  }
  return loose;
}

function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}
