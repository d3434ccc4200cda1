import { BenchClient, OCI_MANIFEST, smallImage } from '../client.js';
import { runLoad } from '../load.js';
import type { BenchOptions } from '../options.js';
import type { Workload } from '../workload.js';

const REPO = 'bench/manifest';

export function manifestLoadWorkload(options: BenchOptions): Workload {
  const load = `${options.connections} connections, ${options.durationSeconds} s`;
  return {
    id: 'manifest-load',
    title: `Manifest GET by tag and HEAD by digest under load (${load})`,
    figures: [
      { id: 'manifest-get-rps', label: 'Manifest GET by tag', unit: 'req/s', better: 'higher', target: { ratioAtLeast: 5 } },
      { id: 'manifest-get-p50', label: 'Manifest GET by tag, p50', unit: 'ms', better: 'lower' },
      { id: 'manifest-get-p99', label: 'Manifest GET by tag, p99', unit: 'ms', better: 'lower', target: { ratioAtMost: 0.2 } },
      { id: 'manifest-head-rps', label: 'Manifest HEAD by digest', unit: 'req/s', better: 'higher' },
      { id: 'manifest-head-p50', label: 'Manifest HEAD by digest, p50', unit: 'ms', better: 'lower' },
      { id: 'manifest-head-p99', label: 'Manifest HEAD by digest, p99', unit: 'ms', better: 'lower' },
    ],
    async run(ctx) {
      const client = new BenchClient(ctx.server.url);
      const image = smallImage('manifest-load');
      await client.uploadBlob(REPO, image.config);
      await client.uploadBlob(REPO, image.layer);
      await client.putManifest(REPO, 'latest', image.manifest);
      const accept = { accept: OCI_MANIFEST };
      ctx.startMeasuring();
      const get = await runLoad(ctx, {
        label: 'manifest GET by tag',
        path: `/v2/${REPO}/manifests/latest`,
        headers: accept,
        expectBody: image.manifest.data.toString('utf8'),
      });
      const head = await runLoad(ctx, {
        label: 'manifest HEAD by digest',
        path: `/v2/${REPO}/manifests/${image.manifest.digest}`,
        method: 'HEAD',
        headers: accept,
      });
      const after = await client.fetch(`/v2/${REPO}/manifests/${image.manifest.digest}`, { method: 'HEAD', headers: accept });
      ctx.check(
        after.headers.get('docker-content-digest') === image.manifest.digest &&
          Number(after.headers.get('content-length')) === image.manifest.size,
        'manifest HEAD by digest reports its digest and size',
      );
      return {
        'manifest-get-rps': get.requestsPerSecond,
        'manifest-get-p50': get.p50Ms,
        'manifest-get-p99': get.p99Ms,
        'manifest-head-rps': head.requestsPerSecond,
        'manifest-head-p50': head.p50Ms,
        'manifest-head-p99': head.p99Ms,
      };
    },
  };
}
