import { rmSync } from 'node:fs';
import path from 'node:path';
import { openSqliteMetadata } from '../../src/metadata/sqlite.js';
import { tempDir } from '../helpers/server.js';
import { kyselySubject, runMetadataContract } from './contract.js';

runMetadataContract('SQLite', async () => {
  const dir = tempDir('berth-sqlite-');
  const store = await openSqliteMetadata(path.join(dir, 'berth.db'));
  return kyselySubject(store, async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
