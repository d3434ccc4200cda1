import SQLite from 'better-sqlite3';
import type { RpmDbReader } from '../sbom/ports.js';

/**
 * Reads an image's rpm database (`rpmdb.sqlite`, extracted by the SBOM generator to a temporary
 * file): read-only, never created or migrated, the header blobs of `Packages` in `hnum` order.
 */
export const sqliteRpmDbReader: RpmDbReader = {
  headers(file) {
    const db = new SQLite(file, { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT blob FROM Packages ORDER BY hnum').all() as { blob: Buffer }[];
      return rows.map((r) => r.blob);
    } finally {
      db.close();
    }
  },
};
