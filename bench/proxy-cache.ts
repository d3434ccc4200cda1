/**
 * `npm run bench -- --proxy-cache`: the pull-through cache against its upstream (issue 15).
 * CNCF Distribution is the upstream; one Berth has a cache project `cache` bound to it and a
 * normal project `normal`. Every round pushes a fresh random layer of `--big-blob-size`
 * (default 1 GiB) to the upstream and to `normal`, untimed, then times four single-stream GETs
 * of it, each hashing every byte as a client does:
 *
 * - direct: from Distribution itself;
 * - uncached: through the cache project, a real miss (the layer and its repository are new);
 * - cached: through the cache project again, once the first pull has stored the layer;
 * - normal: from Berth's normal project (pushed there);
 * - anchor: through a second Distribution configured as a pull-through cache of the first
 *   (`proxy.remoteurl`), a real miss too: what users coming from Distribution have today.
 *
 * With `--upstream-rate` (e.g. 4gbit) the upstream's replies go through a link of that rate
 * (tc on loopback, bench/link-shaping.ts), as when the upstream is across a network; without
 * it the upstream is as fast as two shared cores allow, and the first pull measures how much
 * CPU the cache adds to a pull more than any link.
 *
 * A discarded warm-up round with a small layer comes first. Berth's CPU time per GET is
 * reported too: it depends less on the machine's load than the times do.
 *
 * Targets: uncached within 20 % of direct (time uncached / direct ≤ 1.2) and cached within
 * 10 % of normal (throughput cached / normal ≥ 0.9). Direct and normal alternate with the
 * uncached/cached pair between rounds, so the drift of a shared machine hits every side alike;
 * ratios are given per round and as the median of the rounds.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatSize, type BenchOptions } from './options.js';
import { machineCpuSeconds, median, readCpuSeconds, readThreadCpuSeconds } from './rss.js';
import { prepareBerthBuild, ROOT, startBerth, startDistribution, tempDir, type BenchServer, type BerthLaunch } from './servers.js';
import { shapeRepliesFrom } from './link-shaping.js';
import { CheckFailed } from './workload.js';
import { PatternBlob, streamPush } from './workloads/blob-stream.js';

type Side = 'direct' | 'uncached' | 'cached' | 'normal' | 'anchor';
type BerthSide = 'uncached' | 'cached' | 'normal';

/** The layer size when the run does not name one: the issue's 1 GiB, or --quick's big blob. */
export const PROXY_CACHE_DEFAULT_SIZE = 1024 ** 3;

/** CPU seconds of each party during one GET, and the machine's idle CPU seconds (all cores) meanwhile. */
interface Parties {
  client: number;
  upstream: number;
  berthMain: number;
  berthOther: number;
  /** Berth's threads other than the main one, by thread id (the libuv pool's, V8's). */
  berthThreads: Record<string, number>;
  machineIdle: number;
  /** Seconds the client's and Berth's main threads waited for a core while runnable (/proc/…/schedstat run_delay). */
  clientRunWait: number;
  berthMainRunWait: number;
}

/** The parties measured from outside, in this process: all but the client, which reports its own. */
type ServerParties = Omit<Parties, 'client' | 'clientRunWait'>;

interface Round {
  seconds: Record<Side, number>;
  parties: Record<Side, Parties>;
  /** CPU seconds (user + system) the Berth process spent during each of its GETs. */
  berthCpu: Record<BerthSide, number>;
  /** CPU seconds Distribution's proxy spent during its first pull (it goes on storing the blob after). */
  anchorCpu: number;
  loadAverage: number;
}

/** A discarded first round of this size warms Berth up (JIT, heap): the first pull of a fresh process costs twice the CPU. */
const WARM_UP_SIZE = 32 * 1024 * 1024;

/** CPU seconds (user + system) of one thread of a process (NaN once it is gone). */
const threadCpuSeconds = (pid: number, tid: number): number => readThreadCpuSeconds(pid, tid) ?? Number.NaN;

/** Seconds a thread spent runnable but waiting for a core (schedstat's second field, ns). */
function runWaitSeconds(pid: number, tid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return Number.NaN;
  }
}

/** The servers' CPU seconds so far: the upstream, Berth's main thread and its other threads (the client's come from pullInFreshClient). */
function partiesNow(upstream: BenchServer, berth: BenchServer): ServerParties {
  const berthAll = readCpuSeconds(berth.pid) ?? Number.NaN;
  const berthMain = threadCpuSeconds(berth.pid, berth.pid);
  return {
    upstream: readCpuSeconds(upstream.pid) ?? Number.NaN,
    berthMain,
    berthOther: berthAll - berthMain,
    berthThreads: Object.fromEntries(
      (() => {
        try {
          return readdirSync(`/proc/${berth.pid}/task`);
        } catch {
          return [];
        }
      })()
        .filter((tid) => tid !== String(berth.pid))
        .map((tid) => [tid, threadCpuSeconds(berth.pid, Number(tid))]),
    ),
    machineIdle: machineCpuSeconds().idle,
    berthMainRunWait: runWaitSeconds(berth.pid, berth.pid),
  };
}

/** What bench/pull-client.ts prints: pullAndHash's result and what the pull cost the client. */
interface ClientReport {
  status: number;
  bytes: number;
  digest: string;
  seconds: number;
  cpu: number;
  runWait: number;
}

/**
 * glibc settings of the client process: its heap is never trimmed. Node allocates a buffer per
 * socket read and frees them in batches after a collection; glibc then gives the top of the heap
 * back to the kernel and the next reads fault fresh pages in, which costs ~10 µs a page on the
 * VMs measured. Without this, one pull in three cost the client 2-3× the CPU (direct pulls of the
 * same 1 GiB from Distribution: 1.4-4.6 CPU-s, with 21k-230k page faults); with it 1.5-1.7
 * (8 of 8, ~20k faults), whatever the server.
 */
const CLIENT_MALLOC_ENV = { MALLOC_TRIM_THRESHOLD_: String(256 * 1024 * 1024), MALLOC_TOP_PAD_: String(64 * 1024 * 1024) };

/** One pull by bench/pull-client.ts in a fresh process (see there why). */
async function pullInFreshClient(baseUrl: string, repo: string, digest: string): Promise<ClientReport> {
  const script = path.join(ROOT, 'bench/pull-client.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', script, baseUrl, repo, digest], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...CLIENT_MALLOC_ENV },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new CheckFailed(`the pull client for ${repo}@${digest} exited with ${code}: ${err.trim()}`);
  return JSON.parse(out) as ClientReport;
}

/** One timed GET that must return exactly the layer: seconds, and CPU seconds of `cpuOf` meanwhile. */
async function timedPull(
  server: BenchServer,
  repo: string,
  digest: string,
  size: number,
  what: string,
  cpuOf?: BenchServer,
  partiesOf?: { upstream: BenchServer; berth: BenchServer },
): Promise<{ seconds: number; cpu: number; parties?: Parties }> {
  const cpuBefore = cpuOf ? (readCpuSeconds(cpuOf.pid) ?? Number.NaN) : Number.NaN;
  const partiesBefore = partiesOf ? partiesNow(partiesOf.upstream, partiesOf.berth) : undefined;
  const pulled = await pullInFreshClient(server.url, repo, digest);
  const seconds = pulled.seconds;
  const cpu = cpuOf ? (readCpuSeconds(cpuOf.pid) ?? Number.NaN) - cpuBefore : Number.NaN;
  let parties: Parties | undefined;
  if (partiesOf && partiesBefore) {
    const after = partiesNow(partiesOf.upstream, partiesOf.berth);
    const { berthThreads, ...totals } = after;
    parties = {
      ...(Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, v - (partiesBefore[k as keyof typeof totals] as number)])) as Omit<
        ServerParties,
        'berthThreads'
      >),
      client: pulled.cpu,
      clientRunWait: pulled.runWait,
      berthThreads: Object.fromEntries(Object.entries(berthThreads).map(([tid, v]) => [tid, v - (partiesBefore.berthThreads[tid] ?? 0)])),
    };
  }
  if (pulled.status !== 200 || pulled.bytes !== size || pulled.digest !== digest) {
    throw new CheckFailed(
      `${what}: GET answered ${pulled.status} with ${pulled.bytes} bytes of digest ${pulled.digest}, expected ${size} bytes of ${digest}`,
    );
  }
  return { seconds, cpu, parties };
}

/**
 * Waits until the cache has no download in progress: its spool directory is empty and no
 * `proxy-*` staging file is left (the spool file is renamed into staging, then committed).
 */
async function fillsEnded(berth: BenchServer, timeoutMs = 300_000): Promise<void> {
  const busy = () => {
    const list = (dir: string) => {
      try {
        return readdirSync(dir);
      } catch {
        return [];
      }
    };
    return [
      ...list(path.join(berth.dataDir, 'proxy-spool')),
      ...list(path.join(berth.dataDir, 'storage', 'uploads')).filter((name) => name.startsWith('proxy-')),
    ];
  };
  await waitFor(() => {
    const left = busy();
    return left.length > 0 ? `the cache still had downloads in progress after ${timeoutMs / 1000} s: ${left.join(', ')}` : null;
  }, timeoutMs);
  // The staging file leaves before the link's transaction commits: give it a moment.
  await sleep(500);
}

/** Checks every 50 ms until `pending` answers null (done); after `timeoutMs`, fails with its last answer. */
async function waitFor(pending: () => string | null, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let failure = pending(); failure !== null; failure = pending()) {
    if (Date.now() > deadline) throw new CheckFailed(failure);
    await sleep(50);
  }
}

/**
 * Waits until Distribution's proxy has stored the blob: it serves a miss from one upstream
 * request and stores the blob from a second one in the background, which would otherwise
 * run into the next timed pull.
 */
async function anchorStored(anchor: BenchServer, digest: string, timeoutMs = 300_000): Promise<void> {
  const hex = digest.slice('sha256:'.length);
  const data = path.join(anchor.dataDir, 'storage/docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  const deadline = Date.now() + timeoutMs;
  await waitFor(() => (existsSync(data) ? null : `Distribution's proxy had not stored ${digest} after ${timeoutMs / 1000} s`), timeoutMs);
  // Then until it is idle (under 10 ms of CPU in 250 ms): the stored blob's bytes are still being flushed.
  for (let cpu = readCpuSeconds(anchor.pid) ?? 0; ;) {
    await sleep(250);
    const now = readCpuSeconds(anchor.pid) ?? 0;
    if (now - cpu < 0.01 || Date.now() > deadline) break;
    cpu = now;
  }
}

/** A counter's value in Berth's /metrics (open with auth mode none), 0 when absent. */
async function counter(berth: BenchServer, series: string): Promise<number> {
  const text = await (await fetch(`${berth.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Runs the rounds and returns a Markdown report (also logged as it goes). */
export async function runProxyCacheBench(
  options: BenchOptions,
  size: number,
  upstreamRate?: string,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<string> {
  const workDir = tempDir('berth-bench-');
  const buildDir = options.berthRuntime === 'build' ? await prepareBerthBuild(workDir) : undefined;
  const upstream = await startDistribution();
  let anchor: BenchServer | undefined;
  let unshape: (() => void) | undefined;
  let berth: BenchServer | undefined;
  const rounds: Round[] = [];
  const loadAtStart = os.loadavg()[0]!;
  try {
    const launch: BerthLaunch = {
      runtime: options.berthRuntime,
      buildDir,
      nodeArgs: options.berthNodeArgs,
      setup: [
        { args: ['registry', 'add', 'upstream', upstream.url, '--kind', 'distribution'] },
        { args: ['project', 'add', 'normal', '--public'] },
        { args: ['project', 'add', 'cache', '--public'] },
        { args: ['registry', 'cache', 'set', 'cache', 'upstream'] },
      ],
    };
    berth = await startBerth(launch);
    anchor = await startDistribution({ proxyOf: upstream.url });
    if (upstreamRate) unshape = shapeRepliesFrom(Number(new URL(upstream.url).port), upstreamRate);
    const blobMisses = 'berth_proxy_cache_misses_total{kind="blob"}';
    const blobJoined = 'berth_proxy_cache_coalesced_total{kind="blob"}';
    for (let round = -1; round < options.rounds; round++) {
      const layerSize = round < 0 ? Math.min(WARM_UP_SIZE, size) : size;
      const blob = new PatternBlob(layerSize);
      const digest = blob.digest();
      const upstreamRepo = round < 0 ? 'lib/warm-up' : `lib/layer-${round + 1}`;
      for (const [server, repo] of [
        [upstream, upstreamRepo],
        [berth, 'normal/layer'],
      ] as const) {
        const pushed = await streamPush(server.url, blob, digest, repo);
        if (pushed.status !== 201)
          throw new CheckFailed(`push of the ${formatSize(layerSize)} layer to ${server.kind} answered ${pushed.status}`);
      }
      const seconds = {} as Record<Side, number>;
      const berthCpu = {} as Round['berthCpu'];
      let anchorCpu = Number.NaN;
      const parties = {} as Round['parties'];
      const berthServer = berth;
      const anchorServer = anchor;
      const pull = async (side: Side, server: BenchServer, repo: string, what: string) => {
        const {
          seconds: s,
          cpu,
          parties: p,
        } = await timedPull(server, repo, digest, layerSize, what, side === 'anchor' ? anchorServer : berthServer, {
          upstream,
          berth: berthServer,
        });
        seconds[side] = s;
        parties[side] = p!;
        if (side === 'anchor') anchorCpu = cpu;
        else if (side !== 'direct') berthCpu[side] = cpu;
      };
      const steps: Record<'direct' | 'normal' | 'cache' | 'anchor', () => Promise<void>> = {
        direct: () => pull('direct', upstream, upstreamRepo, 'direct'),
        anchor: async () => {
          await pull('anchor', anchorServer, upstreamRepo, "first pull through Distribution's proxy");
          await anchorStored(anchorServer, digest);
        },
        normal: () => pull('normal', berthServer, 'normal/layer', 'normal project'),
        cache: async () => {
          const missesBefore = await counter(berthServer, blobMisses);
          await pull('uncached', berthServer, `cache/${upstreamRepo}`, 'uncached pull through the cache');
          await fillsEnded(berthServer);
          if ((await counter(berthServer, blobMisses)) !== missesBefore + 1)
            throw new CheckFailed('the first pull through the cache was not one upstream download');
          // A pull that joined the download (still linking on a busy machine) is measured again.
          for (let attempt = 1; ; attempt++) {
            const joinedBefore = await counter(berthServer, blobJoined);
            await pull('cached', berthServer, `cache/${upstreamRepo}`, 'cached pull');
            if ((await counter(berthServer, blobMisses)) !== missesBefore + 1)
              throw new CheckFailed('the cached pull went upstream instead of reading the stored layer');
            if ((await counter(berthServer, blobJoined)) === joinedBefore) break;
            if (attempt === 3) throw new CheckFailed('three cached pulls in a row joined the download instead of reading the stored layer');
            log('  the cached pull joined the download still being stored; measuring it again');
            await sleep(2000);
          }
        },
      };
      const order =
        round % 2 === 0 ? (['direct', 'cache', 'anchor', 'normal'] as const) : (['normal', 'anchor', 'cache', 'direct'] as const);
      for (const step of order) await steps[step]();
      const r: Round = { seconds, parties, berthCpu, anchorCpu, loadAverage: os.loadavg()[0]! };
      if (round >= 0) rounds.push(r);
      log(
        `[${round < 0 ? 'warm-up, discarded' : `round ${round + 1}/${options.rounds}`}] ${formatSize(layerSize)}: direct ${seconds.direct.toFixed(2)} s, uncached ${seconds.uncached.toFixed(2)} s (${(seconds.uncached / seconds.direct).toFixed(2)}×), ` +
          `Distribution's proxy ${seconds.anchor.toFixed(2)} s (${(seconds.anchor / seconds.direct).toFixed(2)}×), cached ${seconds.cached.toFixed(2)} s, normal ${seconds.normal.toFixed(2)} s (cached/normal throughput ${(seconds.normal / seconds.cached).toFixed(2)}); ` +
          `Berth CPU s uncached ${berthCpu.uncached.toFixed(2)}, cached ${berthCpu.cached.toFixed(2)}, normal ${berthCpu.normal.toFixed(2)}; load ${r.loadAverage.toFixed(1)}`,
      );
      for (const side of ['direct', 'uncached'] as const) log(`  ${side}: ${describeParties(seconds[side], parties[side])}`);
    }
  } catch (err) {
    const output = berth?.output().trim();
    if (output) log(`berth output (tail):\n${output.slice(-2000)}`);
    throw err;
  } finally {
    unshape?.();
    await berth?.stop();
    await anchor?.stop();
    await upstream.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
  return renderProxyCacheReport(rounds, size, loadAtStart, upstreamRate);
}

/** CPU seconds of each party during a GET and the machine's idle time, as one line. */
function describeParties(seconds: number, p: Parties): string {
  const f = (n: number) => n.toFixed(2);
  // Off a core and not waiting for one: asleep, waiting for bytes (the client) or for the upstream, the client or the disk (Berth).
  const asleep = (cpu: number, runWait: number) => f(Math.max(0, seconds - cpu - runWait));
  return `wall ${f(seconds)} s; client CPU ${f(p.client)}, runnable-waiting ${f(p.clientRunWait)}, asleep ${asleep(p.client, p.clientRunWait)}; Berth main thread CPU ${f(p.berthMain)}, runnable-waiting ${f(p.berthMainRunWait)}, asleep ${asleep(p.berthMain, p.berthMainRunWait)}; upstream CPU ${f(p.upstream)}, Berth other threads ${f(p.berthOther)} (${Object.values(
    p.berthThreads,
  )
    .filter((v) => v >= 0.05)
    .sort((a, b) => b - a)
    .map(f)
    .join(' + ')}); machine idle ${f(p.machineIdle)} of ${f(seconds * os.cpus().length)} core-s`;
}

const mbps = (size: number, seconds: number) => (size / 1e6 / seconds).toFixed(0);

export function renderProxyCacheReport(rounds: Round[], size: number, loadAtStart: number, upstreamRate?: string): string {
  const firstRatios = rounds.map((r) => r.seconds.uncached / r.seconds.direct);
  const anchorRatios = rounds.map((r) => r.seconds.anchor / r.seconds.direct);
  const cachedRatios = rounds.map((r) => r.seconds.normal / r.seconds.cached);
  const first = median(firstRatios);
  const cached = median(cachedRatios);
  const side = (s: Side) =>
    `${median(rounds.map((r) => r.seconds[s])).toFixed(2)} s | ${mbps(size, median(rounds.map((r) => r.seconds[s])))} MB/s`;
  const cpu = (s: BerthSide) => `${median(rounds.map((r) => r.berthCpu[s])).toFixed(2)} s`;
  const list = (values: number[]) => values.map((v) => v.toFixed(2)).join(', ');
  return [
    `## Pull-through cache: one ${formatSize(size)} layer, single-stream GET hashed by the client (${rounds.length} rounds after a discarded ${formatSize(Math.min(WARM_UP_SIZE, size))} warm-up)`,
    '',
    `Upstream link: ${upstreamRate ? `the upstream's replies limited to ${upstreamRate} (tc on loopback)` : 'loopback, not limited (the two shared cores set the pace)'}`,
    '',
    `Load average (1 min) ${loadAtStart.toFixed(1)} at start, per round: ${rounds.map((r) => r.loadAverage.toFixed(1)).join(', ')} · MB = 10^6 bytes`,
    '',
    "| GET of the layer | median time | throughput | cache's CPU (user + system) |",
    '|---|--:|--:|--:|',
    `| direct from Distribution (the upstream) | ${side('direct')} | — |`,
    `| first pull through the cache project (miss) | ${side('uncached')} | ${cpu('uncached')} |`,
    `| first pull through Distribution's own proxy (the anchor; miss) | ${side('anchor')} | ${median(rounds.map((r) => r.anchorCpu)).toFixed(2)} s until the last byte |`,
    `| cached pull from the cache project | ${side('cached')} | ${cpu('cached')} |`,
    `| normal project (the layer pushed to Berth) | ${side('normal')} | ${cpu('normal')} |`,
    '',
    '| Ratio | per round | median | target | |',
    '|---|---|--:|--:|---|',
    `| first pull time / direct time | ${list(firstRatios)} | ${first.toFixed(2)}× | ≤ 1.2× | ${first <= 1.2 ? 'PASS' : 'MISS'} |`,
    `| cached throughput / normal throughput | ${list(cachedRatios)} | ${cached.toFixed(2)}× | ≥ 0.9× | ${cached >= 0.9 ? 'PASS' : 'MISS'} |`,
    `| anchor: Distribution's proxy first pull time / direct time | ${list(anchorRatios)} | ${median(anchorRatios).toFixed(2)}× | — | |`,
    '',
    "CPU seconds of each party per round (client = a fresh node process per pull, hashing; idle = the whole machine's idle core-seconds meanwhile):",
    '',
    ...rounds.flatMap((r, i) =>
      (['direct', 'uncached'] as const).map((s) => `- round ${i + 1} ${s}: ${describeParties(r.seconds[s], r.parties[s])}`),
    ),
    '',
  ].join('\n');
}
