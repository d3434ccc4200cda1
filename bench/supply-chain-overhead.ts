/**
 * `npm run bench -- --supply-chain-overhead`: what the two pull policies of issue 16 cost a
 * manifest GET together — the signature trust policy and the vulnerability policy, both
 * enforcing — against both off (target: enforced within 10 % of unenforced). Project `bench`
 * trusts a fresh cosign key and has a vulnerability policy (severity high, unscanned artifacts
 * refused) on both sides; an offline OSV database of one advisory is imported. The image pulled
 * is signed (cosign `.sig` tag) and scanned clean through the admin API. Side `off` has both
 * policies in mode off, side `enforced` both in mode enforce; a second, unsigned and unscanned
 * image checks that enforcement is really on (403) or off (200). The same build, alternating
 * A/B rounds: manifest GET by tag under load and the server's CPU time per GET.
 *
 * `--supply-chain-instructions` counts instructions per GET of the same setup under callgrind
 * (bench/metrics-instructions.ts's machinery): independent of the machine's load, slow.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { BenchClient, OCI_MANIFEST, smallImage } from './client.js';
import { measureRequest } from './load.js';
import { instructionsPerGet, type InstructionCounts, type PrepareGet } from './metrics-instructions.js';
import type { BenchOptions, SetupCommand } from './options.js';
import { median } from './rss.js';
import { prepareBerthBuild, startBerth, tempDir, type BenchServer, type BerthLaunch } from './servers.js';
import { pushSigned, REPO } from './signatures-overhead.js';
import { CheckFailed } from './workload.js';

type Side = 'off' | 'enforced';
type PrivateKey = ReturnType<typeof generateKeyPairSync>['privateKey'];

/**
 * The main thread's share of a callgrind dump (instructions under `__libc_start_main`,
 * inclusive): the request path itself, without V8's background compiler and GC threads, which
 * dominate the run-to-run noise of the total (bench/metrics-instructions.ts's caveat).
 */
async function mainThreadInstructions(dump: string): Promise<number | null> {
  const { stdout } = await promisify(execFile)('callgrind_annotate', ['--inclusive=yes', '--threshold=100', dump], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const line = /^\s*([\d,]+)\s+\([\d.]+%\)\s+\S*__libc_start_main/m.exec(stdout);
  return line ? Number(line[1]!.replace(/,/g, '')) : null;
}

/** One OSV advisory (npm bench-pkg < 2.0.0, High): the database the scan matches against. */
function writeOsvDatabase(): string {
  const dir = path.join(tempDir('berth-bench-osv-'), 'osv');
  mkdirSync(dir, { recursive: true });
  const advisory = {
    id: 'BENCH-2099-0001',
    modified: '2026-01-01T00:00:00Z',
    aliases: ['CVE-2099-9999'],
    summary: 'bench advisory',
    affected: [
      { package: { ecosystem: 'npm', name: 'bench-pkg' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '2.0.0' }] }] },
    ],
    database_specific: { severity: 'HIGH' },
  };
  writeFileSync(path.join(dir, 'BENCH-2099-0001.json'), JSON.stringify(advisory));
  return dir;
}

/** The `berth` commands that give project `bench` its two policies in `mode` (the variant's state). */
export function supplyChainSetup(publicPem: string, osvDir: string, mode: 'off' | 'enforce'): SetupCommand[] {
  return [
    { args: ['project', 'add', 'bench', '--public'] },
    { args: ['signature', 'trust', 'bench', 'bench-key', '-'], stdin: publicPem },
    { args: ['signature', 'policy', 'bench', '--mode', mode] },
    { args: ['vulndb', 'import', osvDir] },
    { args: ['vuln-policy', 'bench', '--mode', mode, '--severity', 'high', '--unscanned', 'deny'] },
  ];
}

/** Pushes the signed image, scans it clean, checks both policies answer as the side says; returns the GET to measure. */
function prepareSigned(privateKey: PrivateKey, nonce: string, side: Side): PrepareGet {
  return async (client: BenchClient, baseUrl: string) => {
    const manifest = await pushSigned(client, privateKey, nonce);
    const scan = await fetch(
      `${baseUrl}/api/v1/projects/bench/repositories/${REPO.slice('bench/'.length)}/artifacts/${manifest.digest}/scan`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ packages: [{ ecosystem: 'npm', name: 'bench-pkg', version: '2.0.0' }] }),
      },
    );
    const scanned = (await scan.json()) as { status?: string; findings?: unknown[]; error?: string };
    if (scan.status !== 200 || scanned.status !== 'complete' || scanned.findings?.length !== 0)
      throw new CheckFailed(`the scan answered ${scan.status}: ${JSON.stringify(scanned).slice(0, 300)}`);
    const first = await client.getBytes(`/v2/${REPO}/manifests/latest`, { accept: OCI_MANIFEST });
    if (first.status !== 200)
      throw new CheckFailed(`the signed, clean manifest answered ${first.status}: ${first.body.toString().slice(0, 300)}`);
    // Enforcement really on (or off): an unsigned, unscanned image in the same project.
    const other = smallImage(`${nonce}-unsigned`);
    for (const blob of [other.config, other.layer]) await client.uploadBlob(REPO, blob);
    await client.putManifest(REPO, 'unsigned', other.manifest);
    const refused = await client.getBytes(`/v2/${REPO}/manifests/unsigned`, { accept: OCI_MANIFEST });
    const want = side === 'enforced' ? 403 : 200;
    if (refused.status !== want)
      throw new CheckFailed(`side ${side}: an unsigned, unscanned manifest answered ${refused.status}, expected ${want}`);
    return { path: `/v2/${REPO}/manifests/latest`, expected: manifest.data.toString('utf8') };
  };
}

async function measure(
  launch: BerthLaunch,
  options: BenchOptions,
  privateKey: PrivateKey,
  side: Side,
  round: number,
): Promise<{ perSecond: number; cpuMicros: number }> {
  const server: BenchServer = await startBerth(launch);
  try {
    const get = await prepareSigned(privateKey, `sc-${side}-${round}`, side)(new BenchClient(server.url), server.url);
    return await measureRequest(server, options, {
      label: 'signed, scanned manifest GET by tag',
      path: get.path,
      headers: { accept: OCI_MANIFEST },
      expectBody: get.expected,
    });
  } finally {
    await server.stop();
  }
}

async function launchesOf(options: BenchOptions): Promise<{ launches: Record<Side, BerthLaunch>; privateKey: PrivateKey }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const osvDir = writeOsvDatabase();
  const buildDir = options.berthRuntime === 'build' ? await prepareBerthBuild(tempDir('berth-bench-')) : undefined;
  const base: BerthLaunch = { runtime: options.berthRuntime, buildDir, nodeArgs: options.berthNodeArgs };
  return {
    privateKey,
    launches: {
      off: { ...base, setup: supplyChainSetup(publicPem, osvDir, 'off') },
      enforced: { ...base, setup: supplyChainSetup(publicPem, osvDir, 'enforce') },
    },
  };
}

/** Runs the A/B rounds (one discarded warm-up measurement per side first) and returns a Markdown report. */
export async function runSupplyChainOverhead(
  options: BenchOptions,
  log = (line: string) => process.stderr.write(`${line}\n`),
): Promise<string> {
  const { launches, privateKey } = await launchesOf(options);
  for (const side of ['off', 'enforced'] as Side[]) {
    const f = await measure(launches[side], options, privateKey, side, -1);
    log(`[warm-up, discarded] ${side}: ${f.perSecond.toFixed(0)} req/s, ${f.cpuMicros.toFixed(0)} µs CPU/request`);
  }
  const results: Record<Side, { perSecond: number; cpuMicros: number }[]> = { off: [], enforced: [] };
  for (let round = 0; round < options.rounds; round++) {
    const order: Side[] = round % 2 === 0 ? ['off', 'enforced'] : ['enforced', 'off'];
    for (const side of order) {
      const f = await measure(launches[side], options, privateKey, side, round);
      results[side].push(f);
      log(`[round ${round + 1}/${options.rounds}] ${side}: ${f.perSecond.toFixed(0)} req/s, ${f.cpuMicros.toFixed(0)} µs CPU/request`);
    }
  }
  const rps = (side: Side) => median(results[side].map((f) => f.perSecond));
  const cpu = (side: Side) => median(results[side].map((f) => f.cpuMicros));
  const row = (side: Side, label: string) =>
    `| ${label} | ${rps(side).toFixed(0)} | ${cpu(side).toFixed(0)} | ${results[side].map((f) => `${f.perSecond.toFixed(0)} / ${f.cpuMicros.toFixed(0)}`).join(', ')} |`;
  return [
    `## Supply-chain policies overhead: signed, scanned manifest GET by tag (${options.connections} connections, ${options.durationSeconds} s, ${options.rounds} A/B rounds)`,
    '',
    '| policies of project bench | req/s (median) | server CPU µs per request (median) | rounds (req/s / µs) |',
    '|---|---|---|---|',
    row('off', 'signatures off, vulnerabilities off'),
    row('enforced', 'signatures enforce, vulnerabilities enforce (severity high, unscanned denied)'),
    '',
    `Throughput enforced / off: ${((rps('enforced') / rps('off')) * 100).toFixed(1)} %; CPU per request enforced / off: ${((cpu('enforced') / cpu('off')) * 100).toFixed(1)} % (target: enforced within 10 % of off).`,
    '',
  ].join('\n');
}

/** The same two sides under callgrind: instructions per GET, A/B rounds. */
export async function runSupplyChainInstructions(
  options: BenchOptions,
  counts: InstructionCounts,
  log = (line: string) => process.stderr.write(`${line}\n`),
): Promise<string> {
  const { launches, privateKey } = await launchesOf(options);
  const dumps = counts.keepDumpsIn ?? tempDir('berth-callgrind-dumps-');
  const results: Record<Side, number[]> = { off: [], enforced: [] };
  const mainThread: Record<Side, number[]> = { off: [], enforced: [] };
  for (let round = 0; round < options.rounds; round++) {
    const order: Side[] = round % 2 === 0 ? ['off', 'enforced'] : ['enforced', 'off'];
    for (const side of order) {
      const name = `supply-chain-${side}.${round + 1}`;
      const perRequest = await instructionsPerGet(
        launches[side],
        { ...counts, keepDumpsIn: dumps },
        tempDir('berth-callgrind-'),
        name,
        prepareSigned(privateKey, `sci-${side}-${round}`, side),
      );
      results[side].push(perRequest);
      const main = await mainThreadInstructions(path.join(dumps, `callgrind.${name}`));
      if (main !== null) mainThread[side].push(main / counts.requests);
      log(
        `[round ${round + 1}/${options.rounds}] ${side}: ${Math.round(perRequest)} instructions/request${main === null ? '' : `, ${Math.round(main / counts.requests)} on the main thread`}`,
      );
    }
  }
  const off = median(results.off);
  const on = median(results.enforced);
  const main = (side: Side) =>
    mainThread[side].length > 0
      ? `${Math.round(median(mainThread[side]))} (${mainThread[side].map((n) => Math.round(n)).join(', ')})`
      : 'n/a';
  const row = (side: Side, label: string) =>
    `| ${label} | ${Math.round(median(results[side]))} | ${results[side].map((n) => Math.round(n)).join(', ')} | ${main(side)} |`;
  return [
    `## Supply-chain policies overhead in instructions: signed, scanned manifest GET by tag (callgrind, ${counts.requests} requests after ${counts.warmup} warm-up, ${options.rounds} A/B rounds)`,
    '',
    '| policies of project bench | instructions per request (median) | rounds | main thread only: median (rounds) |',
    '|---|---|---|---|',
    row('off', 'signatures off, vulnerabilities off'),
    row('enforced', 'signatures enforce, vulnerabilities enforce'),
    '',
    `Instructions per request enforced / off: ${((on / off) * 100).toFixed(1)} % (${on >= off ? '+' : ''}${Math.round(on - off)} per request; target: within 10 %).`,
    ...(mainThread.off.length > 0 && mainThread.enforced.length > 0
      ? [
          `Main thread only (V8's compiler and GC threads left out): ${((median(mainThread.enforced) / median(mainThread.off)) * 100).toFixed(1)} %.`,
        ]
      : []),
    '',
  ].join('\n');
}

/**
 * `--supply-chain-inprocess`: the same comparison inside one Berth process, so both sides share
 * one JIT state and one machine moment: the policies are switched between off and enforce
 * through the services (as the admin API does) before each measurement, and manifest GETs are
 * sent through Fastify's `inject` (no sockets, no client process), one after another; the
 * process's CPU time per GET is compared, over alternating rounds. Load on a shared machine
 * still adds noise to each round, but not a bias to one side.
 */
export async function runSupplyChainInProcess(
  options: BenchOptions,
  requests = 4000,
  log = (line: string) => process.stderr.write(`${line}\n`),
): Promise<string> {
  const [{ default: pino }, { configSchema }, { resolveConfigPaths }, { startServer }, { VulnDb }, { readOsvSource }] = await Promise.all([
    import('pino'),
    import('../src/config/schema.js'),
    import('../src/config/load.js'),
    import('../src/server.js'),
    import('../src/scanning/vulndb.js'),
    import('../src/scanning/sources.js'),
  ]);
  const dataDir = tempDir('berth-bench-inprocess-');
  const config = resolveConfigPaths(
    configSchema.parse({ data: { dir: dataDir }, http: { addr: '127.0.0.1:0' }, log: { level: 'silent' } }),
  );
  const server = await startServer(config, pino({ level: 'silent' }));
  try {
    const c = server.composition;
    const actor = { name: 'bench', ip: null };
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await server.stores.auth.createProject({ name: 'bench', public: true, createdBy: 'bench' });
    await c.signatures.addKey(actor, 'bench', 'bench-key', publicKey.export({ type: 'spki', format: 'pem' }) as string);
    const osv = writeOsvDatabase();
    await new VulnDb(server.stores.vulndb).import(osv, readOsvSource(osv));
    const manifest = await pushSigned(new BenchClient(server.url), privateKey, 'inprocess');
    const scan = await c.scanning.scan(REPO, manifest.digest, [{ ecosystem: 'npm', name: 'bench-pkg', version: '2.0.0' }]);
    if (scan.status !== 'complete' || scan.findings.length !== 0) throw new CheckFailed(`the scan: ${JSON.stringify(scan).slice(0, 300)}`);
    const set = async (mode: 'off' | 'enforce') => {
      await c.signatures.setPolicy(actor, 'bench', { mode, inheritIndex: true });
      await c.vulnPolicy.setPolicy(actor, 'bench', {
        mode,
        severity: 'high',
        allowlist: [],
        unscanned: 'deny',
        graceSeconds: 0,
        inheritIndex: true,
      });
    };
    const get = async () => {
      const res = await server.app.inject({ method: 'GET', url: `/v2/${REPO}/manifests/latest`, headers: { accept: OCI_MANIFEST } });
      if (res.statusCode !== 200 || res.body !== manifest.data.toString('utf8'))
        throw new CheckFailed(`manifest GET answered ${res.statusCode}: ${res.body.slice(0, 200)}`);
    };
    const measureSide = async (mode: 'off' | 'enforce') => {
      await set(mode);
      await get(); // judged here (crypto, reads); every later GET is served from the caches
      const before = process.cpuUsage();
      for (let i = 0; i < requests; i++) await get();
      const used = process.cpuUsage(before);
      return (used.user + used.system) / requests;
    };
    await measureSide('off');
    await measureSide('enforce');
    const results: Record<'off' | 'enforce', number[]> = { off: [], enforce: [] };
    const rounds = Math.max(options.rounds, 2) * 2;
    for (let round = 0; round < rounds; round++) {
      for (const mode of (round % 2 === 0 ? ['off', 'enforce'] : ['enforce', 'off']) as ('off' | 'enforce')[]) {
        const micros = await measureSide(mode);
        results[mode].push(micros);
        log(`[round ${round + 1}/${rounds}] ${mode}: ${micros.toFixed(1)} µs CPU per GET`);
      }
    }
    const off = median(results.off);
    const on = median(results.enforce);
    return [
      `## Supply-chain policies overhead in one process: signed, scanned manifest GET by tag (inject, ${requests} GETs per measurement, ${rounds} A/B rounds)`,
      '',
      '| policies of project bench | CPU µs per GET (median) | rounds |',
      '|---|---|---|',
      `| signatures off, vulnerabilities off | ${off.toFixed(1)} | ${results.off.map((n) => n.toFixed(1)).join(', ')} |`,
      `| signatures enforce, vulnerabilities enforce | ${on.toFixed(1)} | ${results.enforce.map((n) => n.toFixed(1)).join(', ')} |`,
      '',
      `CPU per GET enforced / off: ${((on / off) * 100).toFixed(1)} % (target: within 10 %).`,
      '',
    ].join('\n');
  } finally {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
