import { rmSync } from 'node:fs';
import { createTestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/server.js';
import { leaseConfig, leaseContract } from './lease-contract.js';

// A fresh PostgreSQL database on the test server (test/helpers/postgres.ts: fails, never skips, when it is unreachable).
leaseContract('postgres', async () => {
  const dir = tempDir('berth-leases-');
  const database = await createTestDatabase('berth_leases');
  return {
    config: leaseConfig(dir, { driver: 'postgres', url: database.url }),
    async destroy() {
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
