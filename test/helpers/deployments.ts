import type { PoolOptions } from '../../src/metadata/pool.js';

/** A database a test made, and how to remove it. */
export interface DeploymentDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * One database per deployment under test, keyed by its data directory: a server restarted
 * on the same data directory finds its metadata again (as with SQLite, whose file lives
 * there). Databases not dropped by their test are dropped when the test process ends.
 * Shared by the PostgreSQL and MySQL helpers.
 */
export function deploymentDatabases<D extends DeploymentDatabase>(create: () => Promise<D>) {
  const deployments = new Map<string, Promise<D>>();
  let cleanupRegistered = false;

  async function drop(key: string): Promise<void> {
    const database = deployments.get(key);
    deployments.delete(key);
    await (await database?.catch(() => undefined))?.drop();
  }

  function registerCleanup(): void {
    if (cleanupRegistered) return;
    cleanupRegistered = true;
    // beforeExit fires once the event loop is empty; the drops schedule more work, so guard
    // against running twice by emptying the map first.
    process.on('beforeExit', () => {
      const keys = [...deployments.keys()];
      if (keys.length === 0) return;
      void Promise.allSettled(keys.map((key) => drop(key)));
    });
  }

  return {
    forDeployment(key: string): Promise<D> {
      let database = deployments.get(key);
      if (!database) {
        database = create();
        deployments.set(key, database);
        registerCleanup();
      }
      return database;
    },
    drop,
  };
}

/** Pool settings for a store a test opens directly (the server reads them from config). */
export function testPoolOptions(url: string): PoolOptions {
  return { url, poolMax: 10, connectTimeoutMs: 5_000, idleTimeoutMs: 10_000, statementTimeoutMs: 30_000 };
}
