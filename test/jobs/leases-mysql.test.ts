import { rmSync } from 'node:fs';
import { createTestDatabase } from '../helpers/mysql.js';
import { tempDir } from '../helpers/server.js';
import { leaseConfig, leaseContract } from './lease-contract.js';

// A fresh MySQL/MariaDB database on the test server (test/helpers/mysql.ts: fails, never skips, when it is unreachable).
leaseContract('mysql', async () => {
  const dir = tempDir('berth-leases-');
  const database = await createTestDatabase('berth_leases');
  return {
    config: leaseConfig(dir, { driver: 'mysql', url: database.url }),
    async destroy() {
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
