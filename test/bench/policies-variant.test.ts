import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BERTH_VARIANT_SETUP } from '../../bench/options.js';
import { startBerth } from '../../bench/servers.js';
import { RegistryClient, makeImage } from '../helpers/registry-client.js';

describe('bench --variant policies', () => {
  it(
    'runs its berth setup commands (project bench, quota, immutable rule, retention policy) before serving: the immutable rule is in force',
    { timeout: 120_000 },
    async () => {
      const server = await startBerth({ runtime: 'tsx', setup: BERTH_VARIANT_SETUP.policies });
      try {
        const client = new RegistryClient(server.url);
        await client.pushImage('bench/variant', 'release-1', makeImage({ layers: 1, layerSize: 64 }));
        // The immutable rule (tags release-*) is in force: moving the tag is refused; other tags move freely.
        const moved = makeImage({ layers: 1, layerSize: 64 });
        await assert.rejects(client.pushImage('bench/variant', 'release-1', moved), /403.*configured as immutable/s);
        await client.pushImage('bench/variant', 'latest', moved);
        await client.pushImage('bench/variant', 'latest', makeImage({ layers: 1, layerSize: 64 }));
      } finally {
        await server.stop();
      }
    },
  );
});
