/**
 * `npm run bench -- --metrics-overhead`: manifest GET by tag under load with metrics on (the
 * default) and off (the metrics-off variant), on the same build, in alternating A/B rounds so
 * that drift of a shared machine hits both alike. Issue 14 asks for on within 5 % of off.
 */
import { BenchClient, OCI_MANIFEST, smallImage } from './client.js';
import { runLoad } from './load.js';
import { BERTH_VARIANTS, type BenchOptions } from './options.js';
import { readCpuSeconds } from './rss.js';
import { prepareBerthBuild, startBerth, tempDir, type BerthLaunch } from './servers.js';
import { CheckFailed } from './workload.js';

const REPO = 'bench/metrics';

type Side = 'on' | 'off';

interface Figures {
  requestsPerSecond: number;
  /**
   * Server CPU time per request (µs): on a machine others share, throughput moves with their
   * load, while the CPU the server spends on each request barely does.
   */
  cpuMicrosPerRequest: number;
}

/** One fresh server under load. */
async function measure(launch: BerthLaunch, options: BenchOptions): Promise<Figures> {
  const server = await startBerth(launch);
  try {
    const client = new BenchClient(server.url);
    const image = smallImage('metrics-overhead');
    await client.uploadBlob(REPO, image.config);
    await client.uploadBlob(REPO, image.layer);
    await client.putManifest(REPO, 'latest', image.manifest);
    const cpuBefore = readCpuSeconds(server.pid) ?? 0;
    const figures = await runLoad(
      {
        server,
        options,
        startMeasuring: () => undefined,
        check: (ok, what, detail) => {
          if (!ok) throw new CheckFailed(`${what}${detail ? ` (${detail})` : ''}`);
        },
        note: () => undefined,
      },
      { label: 'manifest GET by tag', path: `/v2/${REPO}/manifests/latest`, headers: { accept: OCI_MANIFEST }, expectBody: image.manifest.data.toString('utf8') },
    );
    const cpu = (readCpuSeconds(server.pid) ?? 0) - cpuBefore;
    return { requestsPerSecond: figures.requestsPerSecond, cpuMicrosPerRequest: (cpu * 1e6) / figures.ok };
  } finally {
    await server.stop();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs the A/B rounds and returns a Markdown report (also logged as it goes). */
export async function runMetricsOverhead(options: BenchOptions, log = (line: string) => process.stderr.write(`${line}\n`)): Promise<string> {
  const buildDir = options.berthRuntime === 'build' ? await prepareBerthBuild(tempDir('berth-bench-')) : undefined;
  const launches: Record<Side, BerthLaunch> = {
    on: { runtime: options.berthRuntime, buildDir, nodeArgs: options.berthNodeArgs },
    off: { runtime: options.berthRuntime, buildDir, nodeArgs: options.berthNodeArgs, env: BERTH_VARIANTS['metrics-off'] },
  };
  const results: Record<Side, Figures[]> = { on: [], off: [] };
  for (let round = 0; round < options.rounds; round++) {
    const order: Side[] = round % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
    for (const side of order) {
      const figures = await measure(launches[side], options);
      results[side].push(figures);
      log(`[round ${round + 1}/${options.rounds}] metrics ${side}: ${figures.requestsPerSecond.toFixed(0)} req/s, ${figures.cpuMicrosPerRequest.toFixed(0)} µs CPU/request`);
    }
  }
  const rps = (side: Side) => median(results[side].map((f) => f.requestsPerSecond));
  const cpu = (side: Side) => median(results[side].map((f) => f.cpuMicrosPerRequest));
  const row = (side: Side, label: string) =>
    `| ${label} | ${rps(side).toFixed(0)} | ${cpu(side).toFixed(0)} | ${results[side].map((f) => `${f.requestsPerSecond.toFixed(0)} / ${f.cpuMicrosPerRequest.toFixed(0)}`).join(', ')} |`;
  return [
    `## Metrics overhead: manifest GET by tag (${options.connections} connections, ${options.durationSeconds} s, ${options.rounds} A/B rounds)`,
    '',
    '| metrics | req/s (median) | server CPU µs per request (median) | rounds (req/s / µs) |',
    '|---|---|---|---|',
    row('on', 'on (default)'),
    row('off', 'off (--variant metrics-off)'),
    '',
    `Throughput on / off: ${((rps('on') / rps('off')) * 100).toFixed(1)} %; CPU per request on / off: ${((cpu('on') / cpu('off')) * 100).toFixed(1)} % (target: on within 5 % of off).`,
    '',
  ].join('\n');
}
