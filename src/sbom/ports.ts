/**
 * The SBOM feature's port to a driver it may not import: reading the rpm database, which is a
 * SQLite file (`rpmdb.sqlite`). The adapter (src/metadata/rpmdb.ts) opens the file read-only
 * with better-sqlite3 and returns the header blobs of its `Packages` table.
 */
export interface RpmDbReader {
  /** The header blobs of `Packages(hnum, blob)` in the SQLite rpmdb at `file`; throws when it is not one. */
  headers(file: string): Buffer[];
}
