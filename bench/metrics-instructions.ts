/**
 * `npm run bench -- --metrics-instructions`: what metrics cost a manifest GET by tag, counted
 * in CPU instructions rather than time. Berth runs under valgrind's callgrind, with metrics on
 * and off, on the same build; after a warm-up the counters are zeroed, a fixed number of GETs
 * is sent one after another over one keep-alive connection, and the counters are dumped
 * (`--metrics-instructions-dir` keeps the dumps for callgrind_annotate).
 *
 * Caveat, measured: instruction counts do not depend on the machine's load, but V8 does. With
 * 2,000 warm-up and 1,000 counted requests, TurboFan was still compiling (about 58 % of the
 * counted instructions were its background jobs) and the main thread's count differed by 7 %
 * between the two sides in the direction opposite to the metrics work, so one round resolves
 * nothing near 5 %. `--single-threaded` moves the compiles onto the main thread without ending
 * them; a lower `--interrupt-budget` makes V8 compile far more. Use many rounds, or read the
 * dumps by function (the JIT frames are unnamed; node's C++ and builtins are).
 * Slow: a server under callgrind runs some 50 times slower; a side takes 7–17 minutes.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, get as httpGet } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { BenchClient, OCI_MANIFEST, smallImage } from './client.js';
import { BERTH_VARIANTS, type BenchOptions } from './options.js';
import { median } from './rss.js';
import { prepareBerthBuild, startBerth, tempDir, type BerthLaunch } from './servers.js';

type Side = 'on' | 'off';

export interface InstructionCounts {
  /** Requests before the counters are zeroed (JIT warm-up). */
  warmup: number;
  /** Requests counted. */
  requests: number;
  /** Keep each side's callgrind dump here (for callgrind_annotate), named by side and round. */
  keepDumpsIn?: string;
}

const execFileAsync = promisify(execFile);

/** Instructions per manifest GET of one fresh server under callgrind (`name`: of its kept dump). */
/** What a variant GETs: it pushes (and prepares) its manifest and says which path answers which body. */
export type PrepareGet = (client: BenchClient, baseUrl: string) => Promise<{ path: string; expected: string }>;

/** metrics-instructions' own request: a small unsigned image, tagged latest, by tag. */
const pushSmallImage: PrepareGet = async (client) => {
  const repo = 'bench/metrics';
  const image = smallImage(`${repo}-instructions`);
  await client.uploadBlob(repo, image.config);
  await client.uploadBlob(repo, image.layer);
  await client.putManifest(repo, 'latest', image.manifest);
  return { path: `/v2/${repo}/manifests/latest`, expected: image.manifest.data.toString('utf8') };
};

export async function instructionsPerGet(
  launch: BerthLaunch,
  counts: InstructionCounts,
  outDir: string,
  name: string,
  prepare: PrepareGet = pushSmallImage,
): Promise<number> {
  const server = await startBerth({
    ...launch,
    wrapper: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${path.join(outDir, 'callgrind.out')}`, '--dump-line=no'],
    readyTimeoutMs: 600_000,
  });
  try {
    const client = new BenchClient(server.url);
    const { path: getPath, expected } = await prepare(client, server.url);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const url = `${server.url}${getPath}`;
    const get = () =>
      new Promise<void>((resolve, reject) => {
        httpGet(url, { agent, headers: { accept: OCI_MANIFEST } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode === 200 && body === expected) resolve();
            else reject(new Error(`manifest GET answered ${res.statusCode}: ${body.slice(0, 200)}`));
          });
        }).on('error', reject);
      });
    for (let i = 0; i < counts.warmup; i++) await get();
    await execFileAsync('callgrind_control', ['--zero', String(server.pid)]);
    for (let i = 0; i < counts.requests; i++) await get();
    await execFileAsync('callgrind_control', ['--dump', String(server.pid)]);
    agent.destroy();
    const dump = dumpFile(outDir);
    if (counts.keepDumpsIn) copyFileSync(dump, path.join(counts.keepDumpsIn, `callgrind.${name}`));
    return dumpedInstructions(dump) / counts.requests;
  } catch (err) {
    throw new Error(`${(err as Error).message}\nserver output:\n${server.output()}`, { cause: err });
  } finally {
    await server.stop();
    rmSync(outDir, { recursive: true, force: true });
  }
}

/** The one dump callgrind_control asked for. */
function dumpFile(outDir: string): string {
  const dumps = readdirSync(outDir).filter((file) => /^callgrind\.out\.\d+$/.test(file));
  if (dumps.length !== 1) throw new Error(`expected one callgrind dump in ${outDir}, found: ${dumps.join(', ') || 'none'}`);
  return path.join(outDir, dumps[0]!);
}

/** A dump's `summary:` line: instructions since the counters were zeroed. */
function dumpedInstructions(dump: string): number {
  const text = readFileSync(dump, 'utf8');
  const summary = /^summary:\s+(\d+)/m.exec(text) ?? /^totals:\s+(\d+)/m.exec(text);
  if (!summary) throw new Error(`no summary line in ${dump}`);
  return Number(summary[1]);
}

/** Runs the A/B rounds and returns a Markdown report (also logged as it goes). */
export async function runMetricsInstructions(
  options: BenchOptions,
  counts: InstructionCounts,
  log = (line: string) => process.stderr.write(`${line}\n`),
): Promise<string> {
  const buildDir = options.berthRuntime === 'build' ? await prepareBerthBuild(tempDir('berth-bench-')) : undefined;
  const launches: Record<Side, BerthLaunch> = {
    on: { runtime: options.berthRuntime, buildDir, nodeArgs: options.berthNodeArgs },
    off: { runtime: options.berthRuntime, buildDir, nodeArgs: options.berthNodeArgs, env: BERTH_VARIANTS['metrics-off'] },
  };
  const results: Record<Side, number[]> = { on: [], off: [] };
  for (let round = 0; round < options.rounds; round++) {
    const order: Side[] = round % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
    for (const side of order) {
      const perRequest = await instructionsPerGet(launches[side], counts, tempDir('berth-callgrind-'), `${side}.${round + 1}`);
      results[side].push(perRequest);
      log(`[round ${round + 1}/${options.rounds}] metrics ${side}: ${Math.round(perRequest)} instructions/request`);
    }
  }
  const on = median(results.on);
  const off = median(results.off);
  const row = (side: Side, label: string) =>
    `| ${label} | ${Math.round(median(results[side]))} | ${results[side].map((n) => Math.round(n)).join(', ')} |`;
  return [
    `## Metrics overhead in instructions: manifest GET by tag (callgrind, ${counts.requests} requests after ${counts.warmup} warm-up, ${options.rounds} A/B rounds)`,
    '',
    '| metrics | instructions per request (median) | rounds |',
    '|---|---|---|',
    row('on', 'on (default)'),
    row('off', 'off (--variant metrics-off)'),
    '',
    `Instructions per request on / off: ${((on / off) * 100).toFixed(1)} % (+${Math.round(on - off)} per request; target: on within 5 % of off).`,
    '',
  ].join('\n');
}
