/**
 * `node --import tsx bench/tags-overhead.ts [pushes]`: what immutable rules and tag history
 * cost on core's push path. The same Registry on one SQLite database, once with the
 * `immutable-tags` policy (ten rules on the project, none matching the pushed tag, so every
 * push checks them all and writes a history row) and once without any policy, in alternating
 * rounds; each push moves tag `latest` to a new manifest. Also manifest GETs by tag (the
 * policy registers no `manifest.serve` hook, so they should not differ).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfigPaths } from '../src/config/load.js';
import { configSchema } from '../src/config/schema.js';
import { digestOf } from '../src/core/digest.js';
import { PolicyHooks } from '../src/core/policies.js';
import { Registry } from '../src/core/registry.js';
import { openStores, type Stores } from '../src/stores.js';
import { ImmutableRules, immutableTagsPolicy, tagHistoryPolicy } from '../src/tags/index.js';

const PUSHES = Number(process.argv[2] ?? 500);
const ROUNDS = 7;
const MEDIA = 'application/vnd.oci.image.manifest.v1+json';

function manifest(config: string, layer: string, n: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: 5 }],
      annotations: { n: String(n) },
    }),
  );
}

/** Blob rows linked into `repo` (the push path checks rows; no bytes are read). */
async function seed(stores: Stores, repo: string): Promise<{ config: string; layer: string }> {
  const blobs = { config: Buffer.from('{}'), layer: Buffer.from('layer') };
  for (const data of Object.values(blobs)) {
    const digest = digestOf(data, 'sha256');
    await stores.metadata.transaction(async (tx) => {
      await tx.repositories.recordBlob(digest, data.length);
      const { id } = await tx.repositories.ensure(repo);
      await tx.repositories.lockBlob(digest);
      await tx.repositories.link(id, digest);
    });
  }
  return { config: digestOf(blobs.config, 'sha256'), layer: digestOf(blobs.layer, 'sha256') };
}

/**
 * CPU time (user + system, µs) per call of `op`, run PUSHES times: on a machine others share,
 * wall time moves with their load (and a push waits for fsync), the CPU spent per call barely does.
 */
async function cpuPerOp(op: () => Promise<unknown>): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < PUSHES; i++) await op();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / PUSHES;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-tags-bench-'));
  const stores = await openStores(resolveConfigPaths(configSchema.parse({ data: { dir }, log: { level: 'silent' } })));
  try {
    const options = { deleteEnabled: true, maxManifestSize: 4 << 20, maxBlobSize: 0, maxConcurrentUploads: 100, maxPageSize: 1000 };
    const withPolicy = new PolicyHooks()
      .register(immutableTagsPolicy(stores.tags, new ImmutableRules()))
      .register(tagHistoryPolicy(stores.tags));
    const sides = {
      policy: new Registry(stores.blobs, stores.metadata, options, withPolicy),
      none: new Registry(stores.blobs, stores.metadata, options, new PolicyHooks()),
    };
    await stores.auth.createProject({ name: 'bench', public: true, createdBy: null });
    await stores.metadata.transaction(async (tx) => {
      for (let i = 0; i < 10; i++) {
        await stores.tags.within(tx).addRule(
          'bench',
          {
            repository: { pattern: '**', decoration: 'matches' },
            tag: { pattern: `release-${i}-*`, decoration: 'matches' },
            disabled: false,
          },
          'bench',
          new Date(),
        );
      }
    });
    const repos = { policy: 'bench/with-rules', none: 'bench/without' };
    const digests = { policy: await seed(stores, repos.policy), none: await seed(stores, repos.none) };
    const times: Record<'policy' | 'none', { push: number[]; get: number[] }> = {
      policy: { push: [], get: [] },
      none: { push: [], get: [] },
    };
    let n = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of ['policy', 'none'] as const) {
        times[side].push.push(
          await cpuPerOp(() =>
            sides[side].putManifest(repos[side], 'latest', manifest(digests[side].config, digests[side].layer, n++), MEDIA),
          ),
        );
        times[side].get.push(await cpuPerOp(() => sides[side].getManifest(repos[side], 'latest', { accept: MEDIA, pull: true })));
      }
    }
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
    for (const op of ['push', 'get'] as const) {
      const [p, none] = [median(times.policy[op]), median(times.none[op])];
      console.log(
        `${op}: ${p.toFixed(0)} µs CPU with immutable-tags + history, ${none.toFixed(0)} µs without (${(((p - none) / none) * 100).toFixed(1)} %)`,
      );
    }
  } finally {
    await stores.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
