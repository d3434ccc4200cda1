import { rmSync } from 'node:fs';
import { tempDir } from '../helpers/server.js';
import { leaseConfig, leaseContract } from './lease-contract.js';

// SQLite in a fresh data directory (<dir>/berth.db), whatever BERTH_TEST_METADATA says.
leaseContract('sqlite', async () => {
  const dir = tempDir('berth-leases-');
  return {
    config: leaseConfig(dir, { driver: 'sqlite' }),
    async destroy() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
