/**
 * `node --import tsx bench/quota-overhead.ts [pushes]`: what storage quotas cost on core's
 * push path, in process (no HTTP, no other load's noise on the wire): the same Registry on one
 * SQLite database, once with the `quota` policy (project with a 1 TiB limit: every blob commit
 * and manifest PUT is checked and counted under the usage row's lock) and once without, in
 * alternating rounds. A push is a new small blob (upload, check and commit) plus a manifest
 * over it under a new tag. Reports CPU µs per push and wall time per push. Manifest GET is not
 * measured: the policy registers no `manifest.serve` hook, so a GET runs no quota code at all.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { resolveConfigPaths } from '../src/config/load.js';
import { configSchema } from '../src/config/schema.js';
import { digestOf } from '../src/core/digest.js';
import { PolicyHooks } from '../src/core/policies.js';
import { Registry } from '../src/core/registry.js';
import { gcRacePolicy } from '../src/gc/race-policy.js';
import { quotaPolicy } from '../src/quotas/index.js';
import { openStores } from '../src/stores.js';
import { median } from './rss.js';

const PUSHES = Number(process.argv[2] ?? 300);
const ROUNDS = 5;
const MEDIA = 'application/vnd.oci.image.manifest.v1+json';

type Side = 'quota' | 'none';

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-quota-bench-'));
  const stores = await openStores(resolveConfigPaths(configSchema.parse({ data: { dir }, log: { level: 'silent' } })));
  try {
    const options = { deleteEnabled: true, maxManifestSize: 4 << 20, maxBlobSize: 0, maxConcurrentUploads: 100, maxPageSize: 1000 };
    // Both sides carry what production registers on blob.commit anyway (GC's race rule).
    const hooks = (quota: boolean) => {
      const policies = new PolicyHooks().register(gcRacePolicy(stores.gc));
      if (quota) policies.register(quotaPolicy(stores.quotas, stores.metadata, { warningPercent: 85 }, pino({ level: 'silent' })));
      return policies;
    };
    const registries: Record<Side, Registry> = {
      quota: new Registry(stores.blobs, stores.metadata, options, hooks(true)),
      none: new Registry(stores.blobs, stores.metadata, options, hooks(false)),
    };
    const repositories: Record<Side, string> = { quota: 'limited/app', none: 'free/app' };
    await stores.quotas.setLimit('limited', 2 ** 40);
    const config = Buffer.from('{}');
    for (const side of ['quota', 'none'] as const)
      await registries[side].uploads.monolithic(repositories[side], digestOf(config, 'sha256'), Readable.from([config]));

    let n = 0;
    const push = async (side: Side) => {
      const layer = randomBytes(512);
      const digest = digestOf(layer, 'sha256');
      await registries[side].uploads.monolithic(repositories[side], digest, Readable.from([layer]));
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config, 'sha256'), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: layer.length }],
        }),
      );
      await registries[side].putManifest(repositories[side], `v${n++}`, manifest, MEDIA);
    };
    const times: Record<Side, { cpu: number[]; wall: number[] }> = { quota: { cpu: [], wall: [] }, none: { cpu: [], wall: [] } };
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of (round % 2 === 0 ? ['quota', 'none'] : ['none', 'quota']) as Side[]) {
        const cpu = process.cpuUsage();
        const started = process.hrtime.bigint();
        for (let i = 0; i < PUSHES; i++) await push(side);
        const used = process.cpuUsage(cpu);
        times[side].cpu.push((used.user + used.system) / PUSHES);
        times[side].wall.push(Number(process.hrtime.bigint() - started) / 1000 / PUSHES);
      }
    }
    const [cpuQ, cpuN, wallQ, wallN] = [median(times.quota.cpu), median(times.none.cpu), median(times.quota.wall), median(times.none.wall)];
    const pct = (a: number, b: number) => `${(((a - b) / b) * 100).toFixed(1)} %`;
    console.log(
      `push (blob + manifest), ${PUSHES} per round, ${ROUNDS} rounds: CPU ${cpuQ.toFixed(0)} µs with quota, ${cpuN.toFixed(0)} µs without (${pct(cpuQ, cpuN)}); wall ${wallQ.toFixed(0)} µs vs ${wallN.toFixed(0)} µs (${pct(wallQ, wallN)})`,
    );
    console.log(`usage counted: ${JSON.stringify(await stores.quotas.usage('limited'))}`);
  } finally {
    await stores.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
