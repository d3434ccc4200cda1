import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { SetupCommand } from './options.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DISTRIBUTION_BINARY = '/usr/bin/docker-registry';

export type ServerKind = 'berth' | 'distribution';

/** A freshly started registry, timed from outside over real HTTP. */
export interface BenchServer {
  kind: ServerKind;
  url: string;
  pid: number;
  /** Temporary directory holding all of the server's data; removed by stop(). */
  dataDir: string;
  /** Everything the process printed (for error messages). */
  output(): string;
  /** Stops the process and removes dataDir, unless `keepData` (to seed later servers from it). */
  stop(options?: { keepData?: boolean }): Promise<void>;
}

export interface BerthLaunch {
  runtime: 'build' | 'tsx';
  /** Compiled tree from prepareBerthBuild(), required for runtime 'build'. */
  buildDir?: string;
  nodeArgs?: string[];
  /** Extra BERTH_* settings for every Berth started (a --variant, e.g. metrics off). */
  env?: Record<string, string>;
  /** `berth` commands run on each fresh data directory before it serves (a --variant's state, e.g. policies). */
  setup?: SetupCommand[];
  /** A command node runs under, with its flags, e.g. valgrind's (bench/metrics-instructions.ts). */
  wrapper?: string[];
  /** How long the server may take to answer GET /v2/ (default 30 s; under valgrind it takes minutes). */
  readyTimeoutMs?: number;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A port nobody listens on right now (the server binds it a moment later). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Transpiles src/ into a private directory with esbuild (the transpiler tsx itself uses;
 * seconds faster than tsc on a busy machine), so the benchmark runs plain JavaScript as
 * users run `berth serve`, without a loader thread, and without touching the shared dist/.
 */
export async function prepareBerthBuild(workDir: string): Promise<string> {
  const buildDir = path.join(workDir, 'berth-build');
  const sources = readdirSync(path.join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => path.join(ROOT, 'src', file));
  const esbuild = path.join(ROOT, 'node_modules/esbuild/bin/esbuild');
  await promisify(execFile)(esbuild, [
    ...sources,
    `--outdir=${path.join(buildDir, 'src')}`,
    '--format=esm',
    '--platform=node',
    '--target=node20',
    '--log-level=warning',
  ]);
  if (!existsSync(path.join(buildDir, 'src/cli.js'))) throw new Error(`esbuild did not produce ${buildDir}/src/cli.js`);
  copyFileSync(path.join(ROOT, 'package.json'), path.join(buildDir, 'package.json'));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(buildDir, 'node_modules'));
  return buildDir;
}

/** What a server starts from: empty, or a copy of a data directory seeded earlier. */
export interface StartOptions {
  /** A stopped server's dataDir (kept with `keepData`), copied before the start. */
  seedFrom?: string;
  /** Distribution only: require Basic auth against this htpasswd file (bcrypt, `htpasswd -Bbn`). */
  htpasswd?: string;
  /** Distribution only: run as a pull-through cache of this registry (its `proxy.remoteurl`). */
  proxyOf?: string;
}

async function freshDataDir(prefix: string, seedFrom: string | undefined): Promise<string> {
  const dataDir = tempDir(prefix);
  // cp(1): tens of thousands of small files (Distribution keeps a directory per tag) copy
  // several times faster than with fs.cp.
  if (seedFrom) await promisify(execFile)('cp', ['-a', `${seedFrom}/.`, dataDir]);
  return dataDir;
}

/**
 * The node flags `npm start` runs Berth with (package.json's start script), so the
 * benchmark measures the process users get, e.g. with its young-generation size.
 */
export function startScriptNodeFlags(startScript: string): string[] {
  const m = /\bnode((?:\s+--[\w-]+(?:=\S+)?)*)\s+dist\/src\/cli\.js serve/.exec(startScript);
  if (!m) throw new Error(`package.json's start script does not run "node [flags] dist/src/cli.js serve": ${startScript}`);
  return m[1]!.trim().split(/\s+/).filter(Boolean);
}

let cachedNpmStartFlags: string[] | undefined;

/** startScriptNodeFlags of this checkout's package.json, read once per run. */
function npmStartNodeFlags(): string[] {
  if (!cachedNpmStartFlags) {
    const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
    cachedNpmStartFlags = startScriptNodeFlags(scripts.start);
  }
  return cachedNpmStartFlags;
}

export async function startBerth(launch: BerthLaunch, start: StartOptions = {}): Promise<BenchServer> {
  const port = await freePort();
  const dataDir = await freshDataDir('berth-bench-data-', start.seedFrom);
  const entry =
    launch.runtime === 'build' ? [path.join(launch.buildDir!, 'src/cli.js')] : ['--import', 'tsx', path.join(ROOT, 'src/cli.ts')];
  const env = {
    ...withoutBerthVariables(process.env),
    BERTH_DATA_DIR: dataDir,
    BERTH_HTTP_ADDR: `127.0.0.1:${port}`,
    // Warn, so per-request logging does not dominate what is measured.
    BERTH_LOG_LEVEL: 'warn',
    // One process unless asked (--berth-workers, a --cluster-scaling side): the figures (RSS, CPU) are a process's.
    BERTH_SERVER_WORKERS: '1',
    ...launch.env,
  };
  // A seeded data directory was made by a Berth started the same way: its setup is in it already.
  for (const command of start.seedFrom ? [] : (launch.setup ?? [])) {
    const done = spawnSync(process.execPath, [...entry, ...command.args], {
      cwd: ROOT,
      env,
      input: command.stdin,
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (done.status !== 0) throw new Error(`berth ${command.args.join(' ')} failed (${done.status ?? done.signal}): ${done.stderr}`);
  }
  const [command, ...wrapperArgs] = [...(launch.wrapper ?? []), process.execPath];
  const child = spawn(command!, [...wrapperArgs, ...npmStartNodeFlags(), ...(launch.nodeArgs ?? []), ...entry, 'serve'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return watch('berth', child, `http://127.0.0.1:${port}`, dataDir, launch.readyTimeoutMs);
}

/** The configuration Distribution is started with; cache as in its shipped config.yml. */
export function distributionConfig(dataDir: string, port: number, htpasswd?: string, proxyOf?: string): string {
  const auth = htpasswd ? ['auth:', '  htpasswd:', '    realm: berth-test', `    path: ${htpasswd}`] : [];
  const proxy = proxyOf ? ['proxy:', `  remoteurl: ${proxyOf}`] : [];
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(dataDir, 'storage')}`,
    '  delete:',
    '    enabled: true',
    '  cache:',
    '    blobdescriptor: inmemory',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ...auth,
    ...proxy,
    '',
  ].join('\n');
}

export async function startDistribution(start: StartOptions = {}): Promise<BenchServer> {
  ensureDistributionInstalled();
  const port = await freePort();
  const dataDir = await freshDataDir('distribution-bench-data-', start.seedFrom);
  const configFile = path.join(dataDir, 'config.yml');
  writeFileSync(configFile, distributionConfig(dataDir, port, start.htpasswd, start.proxyOf));
  mkdirSync(path.join(dataDir, 'storage'), { recursive: true });
  const child = spawn(DISTRIBUTION_BINARY, ['serve', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' },
  });
  return watch('distribution', child, `http://127.0.0.1:${port}`, dataDir);
}

export function startServerOfKind(kind: ServerKind, launch: BerthLaunch, start: StartOptions = {}): Promise<BenchServer> {
  return kind === 'berth' ? startBerth(launch, start) : startDistribution(start);
}

const running = new Set<BenchServer>();

/** Stops every server still running (on Ctrl-C), so none outlives the harness. */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop()));
}

/** Installs the Debian package when the binary is missing (the harness runs as root). */
export function ensureDistributionInstalled(): void {
  if (existsSync(DISTRIBUTION_BINARY)) return;
  if (process.getuid?.() !== 0) throw new Error(`${DISTRIBUTION_BINARY} is missing: apt-get install -y docker-registry (as root)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', 'docker-registry'],
  ]) {
    const result = spawnSync('apt-get', args, { env, stdio: 'inherit' });
    if (result.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed with ${result.status}`);
  }
  // The package starts a system service on port 5000; the harness starts its own.
  spawnSync('systemctl', ['disable', '--now', 'docker-registry'], { stdio: 'ignore' });
}

export function distributionVersion(): string {
  const result = spawnSync(DISTRIBUTION_BINARY, ['--version'], { encoding: 'utf8' });
  return result.stdout.trim() || 'unknown';
}

function withoutBerthVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('BERTH_')));
}

/** Waits until GET /v2/ answers, or fails with the process output. */
async function watch(kind: ServerKind, child: ChildProcess, url: string, dataDir: string, readyTimeoutMs = 30_000): Promise<BenchServer> {
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const server: BenchServer = {
    kind,
    url,
    pid: child.pid!,
    dataDir,
    output: () => out,
    async stop(options = {}) {
      running.delete(server);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
      if (!options.keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  running.add(server);
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    // 401 is an answer too: a Distribution started with htpasswd auth.
    const ok = await fetch(`${url}/v2/`).then(
      (res) => res.status === 200 || res.status === 401,
      () => false,
    );
    if (ok) return server;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await server.stop();
  throw new Error(`${kind} did not answer GET /v2/ within ${readyTimeoutMs / 1000}s:\n${out}`);
}
