import { BerthMetrics } from '../../src/metrics/index.js';
import { v2Handler } from '../../src/http/metrics.js';
const m = new BerthMetrics({ refreshMs: 30000, projectLabels: 500, storageCapacityBytes: 0 });
const path = '/v2/bench/manifest/manifests/latest';
const N = 1_000_000;
for (let round = 0; round < 3; round++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const h = v2Handler(path);
    m.http.started(h, 'GET');
    m.http.finished('/v2/{name}/manifests/{reference}', h, 'GET', 200, 0.0004, 0, 512, path.slice(4, path.indexOf('/', 4)));
  }
  console.log(`${(Number(process.hrtime.bigint() - t0) / N).toFixed(0)} ns per request (classify + started + finished)`);
}
