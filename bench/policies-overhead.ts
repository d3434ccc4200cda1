/**
 * `npm run bench -- --policies-overhead`: what issue 13's project policies cost. The same
 * build, without (default) and with the `policies` variant (a quota, an immutable rule and a
 * retention policy on project `bench`: options.ts BERTH_VARIANT_SETUP), in alternating A/B
 * rounds so that drift of a shared machine hits both alike. Per side: manifest GET by tag
 * under load (target: within 10 %) and push throughput — small images (config, layer,
 * manifest with a new tag) pushed by `connections / 8` concurrent clients (target: within 5 %);
 * with the server's CPU time per request or per image, steadier than throughput when others
 * share the machine.
 */
import { BenchClient, smallImage } from './client.js';
import { measureManifestGets } from './load.js';
import { BERTH_VARIANT_SETUP, type BenchOptions } from './options.js';
import { median, readCpuSeconds } from './rss.js';
import { prepareBerthBuild, startBerth, tempDir, type BenchServer, type BerthLaunch } from './servers.js';

type Side = 'default' | 'policies';

interface Figures {
  getPerSecond: number;
  getCpuMicros: number;
  pushesPerSecond: number;
  pushCpuMicros: number;
}

function cpuSeconds(server: BenchServer): number {
  return readCpuSeconds(server.pid) ?? 0;
}

/** Pushes small images (2 blobs + a tagged manifest each) for `seconds` with `clients` at once. */
async function measurePushes(
  server: BenchServer,
  clients: number,
  seconds: number,
  round: number,
): Promise<{ perSecond: number; cpuMicros: number }> {
  const client = new BenchClient(server.url);
  const before = cpuSeconds(server);
  const started = Date.now();
  const deadline = started + seconds * 1000;
  let pushed = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, worker) => {
      for (let n = 0; Date.now() < deadline; n++) {
        const repo = `bench/push-${worker}`;
        const image = smallImage(`push-${round}-${worker}-${n}`);
        await client.uploadBlob(repo, image.config);
        await client.uploadBlob(repo, image.layer);
        await client.putManifest(repo, `v${n}`, image.manifest);
        pushed++;
      }
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  return { perSecond: pushed / elapsed, cpuMicros: ((cpuSeconds(server) - before) * 1e6) / pushed };
}

async function measure(launch: BerthLaunch, options: BenchOptions, round: number): Promise<Figures> {
  const server = await startBerth(launch);
  try {
    const gets = await measureManifestGets(server, options, 'bench/policies-get');
    const pushes = await measurePushes(server, Math.max(1, Math.round(options.connections / 8)), options.durationSeconds, round);
    return {
      getPerSecond: gets.perSecond,
      getCpuMicros: gets.cpuMicros,
      pushesPerSecond: pushes.perSecond,
      pushCpuMicros: pushes.cpuMicros,
    };
  } finally {
    await server.stop();
  }
}

/** Runs the A/B rounds and returns a Markdown report (also logged as it goes). */
export async function runPoliciesOverhead(
  options: BenchOptions,
  log = (line: string) => process.stderr.write(`${line}\n`),
): Promise<string> {
  const buildDir = options.berthRuntime === 'build' ? await prepareBerthBuild(tempDir('berth-bench-')) : undefined;
  const base: BerthLaunch = { runtime: options.berthRuntime, buildDir, nodeArgs: options.berthNodeArgs };
  const launches: Record<Side, BerthLaunch> = { default: base, policies: { ...base, setup: BERTH_VARIANT_SETUP.policies } };
  const results: Record<Side, Figures[]> = { default: [], policies: [] };
  for (let round = 0; round < options.rounds; round++) {
    const order: Side[] = round % 2 === 0 ? ['default', 'policies'] : ['policies', 'default'];
    for (const side of order) {
      const f = await measure(launches[side], options, round);
      results[side].push(f);
      log(
        `[round ${round + 1}/${options.rounds}] ${side}: GET ${f.getPerSecond.toFixed(0)} req/s (${f.getCpuMicros.toFixed(0)} µs CPU), push ${f.pushesPerSecond.toFixed(1)} images/s (${f.pushCpuMicros.toFixed(0)} µs CPU)`,
      );
    }
  }
  const m = (side: Side, key: keyof Figures) => median(results[side].map((f) => f[key]));
  const pct = (key: keyof Figures) => `${((m('policies', key) / m('default', key)) * 100).toFixed(1)} %`;
  const row = (side: Side) =>
    `| ${side === 'default' ? 'no policies (default)' : 'quota + immutable rule + retention (--variant policies)'} | ${m(side, 'getPerSecond').toFixed(0)} | ${m(side, 'getCpuMicros').toFixed(0)} | ${m(side, 'pushesPerSecond').toFixed(1)} | ${m(side, 'pushCpuMicros').toFixed(0)} |`;
  return [
    `## Project policies overhead (${options.connections} connections for GETs, ${Math.max(1, Math.round(options.connections / 8))} pushing clients, ${options.durationSeconds} s each, ${options.rounds} A/B rounds)`,
    '',
    '| Berth | manifest GET req/s | CPU µs per GET | pushes (images/s) | CPU µs per image |',
    '|---|---|---|---|---|',
    row('default'),
    row('policies'),
    '',
    `With policies / without: manifest GET ${pct('getPerSecond')} (target ≥ 90 %), CPU per GET ${pct('getCpuMicros')}; pushes ${pct('pushesPerSecond')} (target ≥ 95 %), CPU per image ${pct('pushCpuMicros')}.`,
    '',
  ].join('\n');
}
