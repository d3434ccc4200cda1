import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { configSchema, type BerthConfig } from '../../src/config/schema.js';
import { applyEnvOverrides, resolveConfigPaths } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { databaseForDeployment, dropDeploymentDatabase } from './postgres.js';
import { databaseForDeployment as mysqlDatabaseForDeployment, dropDeploymentDatabase as dropMysqlDeploymentDatabase } from './mysql.js';
import { testStorageEnv } from './s3.js';

// Every /api/v1 answer of a test server is checked against its route's response schema (src/http/api/index.ts).
process.env.BERTH_API_CHECK_RESPONSES ??= '1';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface TestServer extends RunningServer {
  dataDir: string;
  config: BerthConfig;
  /**
   * The in-process server's own URL. It equals `url` except in the cluster pass, where `url` is the
   * cluster of `berth serve` children beside it: a test that patches code in this process asks here.
   */
  inProcessUrl: string;
  /** Stops the server and deletes its data directory. */
  destroy(): Promise<void>;
}

/** A fresh temporary directory, removed by the caller (or by `destroy`). */
export function tempDir(prefix = 'berth-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Starts an in-process Berth on 127.0.0.1 with a random port and a temporary data
 * directory. `overrides` is merged into the config like a berth.yaml would be.
 * Extra BERTH_* variables in `env` apply as they do for `berth serve`.
 */
export async function startTestServer(overrides: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Promise<TestServer> {
  const dataDir = (overrides.data as { dir?: string } | undefined)?.dir ?? tempDir();
  const raw = applyEnvOverrides(deepMerge({ http: { addr: '127.0.0.1:0' }, data: { dir: dataDir }, log: { level: 'silent' } }, overrides), {
    ...(await testMetadataEnv(dataDir, { ...env, ...flattenMetadataOverride(overrides) })),
    ...(await testStorageEnv(dataDir, { ...env, ...flattenStorageOverride(overrides) })),
    ...env,
  });
  const parsed = configSchema.parse(raw);
  const config = resolveConfigPaths(parsed);
  const server = await startServer(config, pino({ level: process.env.BERTH_TEST_LOG ?? 'silent' }));
  const cluster = TEST_WORKERS > 1 ? await startClusterBeside(server, raw, dataDir, env) : null;
  const close = async () => {
    await cluster?.stop();
    await server.close();
  };
  return {
    ...server,
    inProcessUrl: server.url,
    ...(cluster ? { url: cluster.url, metricsUrl: server.metricsUrl?.replace(server.url, cluster.url), close } : {}),
    dataDir,
    config,
    async destroy() {
      await close();
      rmSync(dataDir, { recursive: true, force: true });
      await dropDeploymentDatabase(path.resolve(dataDir));
      await dropMysqlDeploymentDatabase(path.resolve(dataDir));
    },
  };
}

/**
 * BERTH_TEST_WORKERS=N (scripts/test.sh runs the HTTP and interop suites once with 2): every
 * test server is `berth serve --workers N`, a real child process with the same configuration,
 * and its `url` is the cluster's. The in-process server started first (it migrates the database)
 * stays up beside it, so tests that read the stores (`server.stores`) still see what the cluster
 * wrote; what lives in a process's memory (its pull counter, its app's routes) is the in-process
 * server's, and the tests that read it are not run in that pass (scripts/test.sh names them).
 * `berth serve` children (startBerthProcess) get N workers too.
 */
const TEST_WORKERS = Number(process.env.BERTH_TEST_WORKERS ?? '1');

async function startClusterBeside(
  server: RunningServer,
  raw: Record<string, unknown>,
  dataDir: string,
  env: NodeJS.ProcessEnv,
): Promise<BerthProcess> {
  const file = path.join(os.tmpdir(), `berth-cluster-config-${randomUUID()}.json`);
  // JSON is YAML: the child reads the very configuration the in-process server runs with.
  writeFileSync(file, JSON.stringify(raw));
  try {
    return await startBerthProcess({ ...env, BERTH_DATA_DIR: dataDir, BERTH_SERVER_WORKERS: String(TEST_WORKERS) }, ['--config', file]);
  } catch (err) {
    await server.close();
    throw err;
  } finally {
    rmSync(file, { force: true });
  }
}

/**
 * Environment that selects the metadata back end under test. The suite runs once per
 * back end: BERTH_TEST_METADATA=postgres (or mysql) points every test server at
 * PostgreSQL (or MySQL/MariaDB), in a fresh database per data directory (restarting on the
 * same directory keeps the metadata; PostgreSQL's is dropped by `destroy()`, and every one
 * at the end of the test process). A test that chooses its metadata back end itself
 * (`given` sets BERTH_METADATA_DRIVER/URL) is left alone.
 */
export async function testMetadataEnv(dataDir?: string, given: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv> {
  const driver = process.env.BERTH_TEST_METADATA;
  if (driver !== 'postgres' && driver !== 'mysql') return {};
  if (given.BERTH_METADATA_DRIVER !== undefined || given.BERTH_METADATA_URL !== undefined) return {};
  const key = dataDir ? path.resolve(dataDir) : `anonymous-${randomUUID()}`;
  const database = await (driver === 'mysql' ? mysqlDatabaseForDeployment(key) : databaseForDeployment(key));
  return { BERTH_METADATA_DRIVER: driver, BERTH_METADATA_URL: database.url };
}

/** `storage:` overrides naming a driver, seen as the env variables testStorageEnv checks. */
function flattenStorageOverride(overrides: Record<string, unknown>): NodeJS.ProcessEnv {
  const storage = overrides.storage as { filesystem?: unknown; s3?: unknown } | undefined;
  return {
    BERTH_STORAGE_FILESYSTEM_ROOTDIRECTORY: storage?.filesystem === undefined ? undefined : 'set',
    BERTH_STORAGE_S3_BUCKET: storage?.s3 === undefined ? undefined : 'set',
  };
}

/** `metadata:` overrides given to startTestServer, seen as the env variables testMetadataEnv checks. */
function flattenMetadataOverride(overrides: Record<string, unknown>): NodeJS.ProcessEnv {
  const metadata = overrides.metadata as { driver?: string; url?: string } | undefined;
  return { BERTH_METADATA_DRIVER: metadata?.driver, BERTH_METADATA_URL: metadata?.url };
}

export interface BerthProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything the process printed so far. */
  output(): string;
  /** What it wrote to stdout only: the JSON log (stderr carries what is meant for the operator's eyes only). */
  logOutput(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit (crash simulation). */
  kill(): Promise<void>;
}

/**
 * How long a `berth serve` child may take to listen. tsx compiles src/ at each start: about 2 s on
 * a quiet machine, 12 s at load 12, over 30 s seen at load 17 (a replica restarted by
 * test/ha/replica-kill.test.ts while other suites ran).
 */
const START_TIMEOUT_MS = 60_000;

/**
 * Starts `berth serve` as a real child process (as users run it), on a random port
 * unless BERTH_HTTP_ADDR is given in `env`, and waits until it listens. `args` go before
 * `serve` (global options such as --config), `serveArgs` after it (--workers 2). One worker
 * (BERTH_TEST_WORKERS in the cluster pass) unless `env` or `serveArgs` ask for more
 * (BERTH_SERVER_WORKERS, --workers): the tests that start processes are about other things, and
 * a cluster per process would multiply their cost; test/cluster runs clusters.
 */
export async function startBerthProcess(env: NodeJS.ProcessEnv, args: string[] = [], serveArgs: string[] = []): Promise<BerthProcess> {
  const metadataEnv = await testMetadataEnv(env.BERTH_DATA_DIR, env);
  const storageEnv = await testStorageEnv(env.BERTH_DATA_DIR, env);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args, 'serve', ...serveArgs], {
    cwd: ROOT,
    env: {
      ...process.env,
      BERTH_HTTP_ADDR: '127.0.0.1:0',
      BERTH_LOG_LEVEL: 'info',
      BERTH_SERVER_WORKERS: String(TEST_WORKERS),
      ...metadataEnv,
      ...storageEnv,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let log = '';
  child.stdout!.on('data', (d: Buffer) => ((out += d.toString()), (log += d.toString())));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Don't leave an orphan server behind (the caller never gets a handle to stop it).
      child.kill('SIGKILL');
      reject(new Error(`berth did not start within ${START_TIMEOUT_MS / 1000}s (it must log "berth is listening" at level info):\n${out}`));
    }, START_TIMEOUT_MS);
    const onData = () => {
      const m = /"url":"(https?:\/\/[^"]+)".*berth is listening/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`berth exited with ${code} before listening:\n${out}`));
    });
  });
  const stopWith = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    url,
    port: Number(new URL(url).port),
    child,
    output: () => out,
    logOutput: () => log,
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
  };
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? deepMerge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}
