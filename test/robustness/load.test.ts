import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryClient, makeImage, sha256 } from '../helpers/registry-client.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { rssOf } from './support.js';

/**
 * Sustained parallel pushes and pulls against a real `berth serve` (loopback only):
 * no request may fail, and memory must stay flat (no per-request leak).
 */
const CLIENTS = 32;
const DURATION_MS = 15_000;
const WARMUP_MS = 4_000;
const RSS_GROWTH_LIMIT = 50 * 1024 * 1024;

describe('load: 32 clients pushing and pulling for 15 s', () => {
  const dataDir = tempDir('berth-load-');
  let server: BerthProcess | undefined;
  after(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers every request correctly with a flat RSS', async (t) => {
    server = await startBerthProcess({ BERTH_DATA_DIR: dataDir });
    const client = new RegistryClient(server.url);
    const pid = server.child.pid!;
    const deadline = Date.now() + DURATION_MS;
    const failures: string[] = [];
    let requests = 0;

    const samples: { at: number; rss: number }[] = [];
    const started = Date.now();
    const sampler = setInterval(() => samples.push({ at: Date.now() - started, rss: rssOf(pid) }), 1_000);

    const worker = async (k: number) => {
      for (let n = 0; Date.now() < deadline; n++) {
        const image = makeImage({ layers: 1, layerSize: 16 * 1024 + ((k * 7919 + n * 104729) % (48 * 1024)) });
        const repo = `load/c${k % 8}`;
        const tag = `w${k}-${n}`;
        try {
          requests += 3;
          await client.pushImage(repo, tag, image);
          const manifest = await client.fetch(`/v2/${repo}/manifests/${tag}`, { headers: { accept: image.mediaType } });
          requests++;
          if (manifest.status !== 200 || sha256(Buffer.from(await manifest.arrayBuffer())) !== image.manifest.digest) {
            failures.push(`manifest ${repo}:${tag} → ${manifest.status}`);
          }
          const layer = await client.fetch(`/v2/${repo}/blobs/${image.layers[0]!.digest}`);
          requests++;
          if (layer.status !== 200 || sha256(Buffer.from(await layer.arrayBuffer())) !== image.layers[0]!.digest) {
            failures.push(`layer of ${repo}:${tag} → ${layer.status}`);
          }
        } catch (err) {
          failures.push(`${repo}:${tag}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, k) => worker(k)));
    clearInterval(sampler);
    await sleep(1_000);
    samples.push({ at: Date.now() - started, rss: rssOf(pid) });

    const warm = samples.filter((s) => s.at >= WARMUP_MS);
    assert.ok(warm.length >= 5, `too few RSS samples after warm-up: ${JSON.stringify(samples)}`);
    const baseline = warm[0]!.rss;
    const final = Math.max(...warm.slice(-3).map((s) => s.rss));
    const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;
    t.diagnostic(`${requests} requests (${Math.round(requests / (DURATION_MS / 1000))}/s), ${failures.length} failed`);
    t.diagnostic(`RSS after warm-up ${mb(baseline)}, at the end ${mb(final)}, peak ${mb(Math.max(...samples.map((s) => s.rss)))}`);

    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} failed requests`);
    assert.ok(requests > CLIENTS * 5, `only ${requests} requests in ${DURATION_MS} ms`);
    assert.ok(final - baseline <= RSS_GROWTH_LIMIT, `RSS grew from ${mb(baseline)} to ${mb(final)}`);
    assert.equal(server.child.exitCode, null);
  });
});
