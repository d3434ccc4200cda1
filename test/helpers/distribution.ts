import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startDistribution as startBenchDistribution, tempDir, type BenchServer } from '../../bench/servers.js';

/**
 * CNCF Distribution (`/usr/bin/docker-registry`) as a second registry to test clients
 * against. The process handling (free port, config.yml, wait for /v2/, stop) is the
 * benchmark's (bench/servers.ts), so there is one Distribution starter; this adds the
 * htpasswd file for a registry with Basic auth.
 */
export interface DistributionServer extends BenchServer {
  /** The user the registry accepts, when started with `{ user }`. */
  credentials?: { username: string; password: string };
}

export async function startDistribution(options: { user?: { username: string; password: string } } = {}): Promise<DistributionServer> {
  if (!options.user) return startBenchDistribution();
  const dir = tempDir('distribution-htpasswd-');
  const file = path.join(dir, 'htpasswd');
  // bcrypt (-B): the only hash Distribution's htpasswd accepts.
  writeFileSync(file, execFileSync('htpasswd', ['-Bbn', options.user.username, options.user.password], { encoding: 'utf8' }));
  const server = await startBenchDistribution({ htpasswd: file });
  return {
    ...server,
    credentials: options.user,
    async stop(stopOptions) {
      await server.stop(stopOptions);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
