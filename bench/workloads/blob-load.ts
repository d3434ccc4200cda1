import { randomBytes } from 'node:crypto';
import { BenchClient, sha256 } from '../client.js';
import { runLoad } from '../load.js';
import { formatSize, type BenchOptions } from '../options.js';
import type { Workload, WorkloadContext } from '../workload.js';

const REPO = 'bench/blob-load';

async function verifyBlob(ctx: WorkloadContext, client: BenchClient, digest: string, size: number, when: string): Promise<void> {
  const got = await client.getBytes(`/v2/${REPO}/blobs/${digest}`);
  ctx.check(
    got.status === 200 && got.body.length === size && sha256(got.body) === digest,
    `${formatSize(size)} blob reads back intact ${when}`,
  );
}

export function blobLoadWorkload(options: BenchOptions): Workload {
  const size = options.loadBlobSize;
  return {
    id: 'blob-load',
    title: `${formatSize(size)} blob GET under load (${options.connections} connections, ${options.durationSeconds} s)`,
    figures: [
      { id: 'blob-get-mbps', label: `${formatSize(size)} blob GET`, unit: 'MB/s', better: 'higher', target: { ratioAtLeast: 1.5 } },
      { id: 'blob-get-p99', label: `${formatSize(size)} blob GET, p99`, unit: 'ms', better: 'lower' },
    ],
    async run(ctx) {
      const client = new BenchClient(ctx.server.url);
      const data = randomBytes(size);
      const blob = { data, size, digest: sha256(data) };
      await client.uploadBlob(REPO, blob);
      await verifyBlob(ctx, client, blob.digest, size, 'before the load');
      ctx.startMeasuring();
      const load = await runLoad(ctx, {
        label: `${formatSize(size)} blob GET`,
        path: `/v2/${REPO}/blobs/${blob.digest}`,
        discardBodies: true,
      });
      await verifyBlob(ctx, client, blob.digest, size, 'after the load');
      ctx.check(load.bytes >= load.ok * size, 'every response under load carried the whole blob');
      // Payload bytes only: every 2xx response carried the whole blob (autocannon checked the framing).
      return { 'blob-get-mbps': (load.ok * size) / 1e6 / load.seconds, 'blob-get-p99': load.p99Ms };
    },
  };
}
