import { StorageFullError } from '../core/errors.js';

/**
 * Recognises "the disk or database is full" in the errors the metadata back ends raise:
 * SQLite's SQLITE_FULL, PostgreSQL's SQLSTATE 53100 (disk_full), MySQL's ER_RECORD_FILE_FULL
 * and ER_DISK_FULL, and the filesystem's ENOSPC / EDQUOT (SQLite writes through the filesystem). Adapters call
 * `asStorageFull` where their connections catch driver errors (sqlite.ts, postgres.ts, mysql.ts), so the core and HTTP see a domain
 * StorageFullError and never driver codes.
 */
const FULL_CODES = new Set(['SQLITE_FULL', '53100', 'ER_RECORD_FILE_FULL', 'ER_DISK_FULL', 'ENOSPC', 'EDQUOT']);

export function isStorageFull(err: unknown): boolean {
  if (err instanceof StorageFullError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && FULL_CODES.has(code);
}

/** `err` as a StorageFullError when it means "full", else `err` unchanged (for `throw asStorageFull(err)`). */
export function asStorageFull(err: unknown): unknown {
  if (err instanceof StorageFullError || !isStorageFull(err)) return err;
  return new StorageFullError(`storage is full (${String((err as { code?: unknown }).code)})`, { cause: err });
}
