import { after, before } from 'node:test';
import { RegistryClient } from './registry-client.js';
import { startTestServer, type TestServer } from './server.js';

export interface ServerFixture {
  /** The running test server (only inside the tests and hooks of the calling `describe`). */
  readonly server: TestServer;
  /** An unauthenticated RegistryClient for `server`. */
  readonly client: RegistryClient;
  /** `server.url`. */
  readonly url: string;
}

export interface UseServerOptions {
  /** Extra BERTH_* variables, applied as for `berth serve` (second argument of startTestServer). */
  env?: NodeJS.ProcessEnv;
  /** Runs once the server is up, still inside the `before` hook (seed users, projects, images…). */
  setup?: (server: TestServer) => Promise<void>;
}

/**
 * One in-process test server per `describe`: registers a node:test `before` hook in the
 * calling suite that starts it (startTestServer with `overrides`, which may be a function
 * when they depend on something another hook prepares) and an `after` hook that destroys
 * it. Hooks run in registration order, so `before` hooks registered after this call see
 * the server, and `after` hooks registered after it run once it is gone.
 *
 *     describe('blobs', () => {
 *       const reg = useServer({ limits: { blobsize: 1000 } });
 *       it('…', async () => { await reg.client.pushBlob('a/b', blob); });
 *     });
 */
export function useServer(
  overrides?: Record<string, unknown> | (() => Record<string, unknown>),
  options: UseServerOptions = {},
): ServerFixture {
  let running: { server: TestServer; client: RegistryClient } | undefined;
  const current = () => {
    if (!running)
      throw new Error('useServer: no server is running here (use it inside the tests and hooks of the describe that called useServer)');
    return running;
  };
  before(async () => {
    const server = await startTestServer(typeof overrides === 'function' ? overrides() : overrides, options.env);
    running = { server, client: new RegistryClient(server.url) };
    await options.setup?.(server);
  });
  after(async () => {
    const server = running?.server;
    running = undefined;
    await server?.destroy();
  });
  return {
    get server() {
      return current().server;
    },
    get client() {
      return current().client;
    },
    get url() {
      return current().server.url;
    },
  };
}
