import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { makeImage } from '../helpers/registry-client.js';
import { ROOT, type TestServer } from '../helpers/server.js';
import type { RegistryClient } from '../helpers/registry-client.js';
import { startGcServer } from './support.js';

const exec = promisify(execFile);

describe('berth gc (CLI) beside a running server', () => {
  let server: TestServer;
  let client: RegistryClient;
  before(async () => ({ server, client } = await startGcServer({ graceperiod: '1h' })));
  after(async () => server?.destroy());

  /** `berth gc <args>` on the server's data directory and metadata database. */
  async function berthGc(args: string[]): Promise<string> {
    const { driver, url } = server.config.metadata;
    const env = {
      ...process.env,
      BERTH_DATA_DIR: server.dataDir,
      BERTH_METADATA_DRIVER: driver,
      ...(url ? { BERTH_METADATA_URL: url } : {}),
      BERTH_GC_GRACEPERIOD: '1h',
    };
    return (await exec(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'gc', ...args], { cwd: ROOT, env })).stdout;
  }

  it('with nothing due, says how many candidates wait out the grace period and from when they are collectable', async () => {
    const before = Date.now();
    await client.pushImage('cli/waiting', 'v1', makeImage({ layers: 1 }));
    assert.equal((await client.fetch('/v2/cli/waiting/manifests/v1', { method: 'DELETE' })).status, 202);
    // The server's event dispatcher (which holds the events lease) queues the candidates within a second.
    while ((await server.stores.gc.queueSize(Number.MAX_SAFE_INTEGER)).total < 3) await sleep(50);
    const out = await berthGc(['--dry-run']);
    assert.match(out, /reviewed 0 candidates past the grace period/);
    // One time when they were all queued within the same second, else the first and the last.
    const m =
      /^3 candidates are waiting out the 1 h grace period \(gc\.graceperiod\): (?:the first )?collectable from (\S+) \(in (?:59 min|1 h)\)(?:, all by (\S+) \(in (?:59 min|1 h)\))?; a run after that deletes what is still unused$/m.exec(
        out,
      );
    assert.ok(m, out);
    assert.ok(Date.parse(m[1]!) >= Math.floor(before / 1000) * 1000 + 3_600_000, `${m[1]} is an hour after the push`);
    const json = JSON.parse(await berthGc(['--json'])) as { waiting: { candidates: number; firstCollectableAt: string } };
    assert.equal(json.waiting.candidates, 3);
    assert.equal(json.waiting.firstCollectableAt.replace(/\.\d+Z$/, 'Z'), m[1]);
  });
});
