import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fsckStores } from '../../src/cli/fsck.js';
import { applyEnvOverrides, resolveConfigPaths } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { corruptionCount, type FsckReport, type ProblemKind } from '../../src/fsck/types.js';
import { ROOT, testMetadataEnv } from '../helpers/server.js';

/** Helpers shared by the robustness suites (crashes, fsck, limits, load). */

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `berth` CLI (through tsx, as `npm start` does from source) and collects its output. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const metadataEnv = await testMetadataEnv(env.BERTH_DATA_DIR, env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, BERTH_LOG_LEVEL: 'silent', ...metadataEnv, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface FsckRun extends CliResult {
  report: FsckReport;
}

/** `berth fsck --json [...args]` on the data directory `dataDir`. */
export async function fsck(dataDir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<FsckRun> {
  const result = await runCli(['fsck', '--json', ...args], { BERTH_DATA_DIR: dataDir, ...env });
  let report: FsckReport;
  try {
    report = JSON.parse(result.stdout) as FsckReport;
  } catch {
    throw new Error(`berth fsck printed no JSON report (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
  return { ...result, report };
}

/**
 * The same check in-process (what `berth fsck` runs after parsing its flags), for tests
 * that need many runs; `code` is the exit code the CLI would give.
 */
export async function fsckInProcess(
  dataDir: string,
  options: { repair?: boolean; verifyContent?: boolean; graceMs?: number } = {},
): Promise<{ code: number; report: FsckReport }> {
  const raw = applyEnvOverrides({ data: { dir: dataDir } }, await testMetadataEnv(dataDir));
  const config = resolveConfigPaths(configSchema.parse(raw));
  const report = await fsckStores(config, { repair: false, verifyContent: false, graceMs: 3_600_000, ...options });
  return { code: corruptionCount(report) > 0 ? 1 : 0, report };
}

/** Problems of one kind in a report, unrepaired unless `repaired` says otherwise. */
export function problemsOf(report: FsckReport, kind: ProblemKind): FsckReport['problems'] {
  return report.problems.filter((p) => p.kind === kind);
}

/** Path of a committed blob under the filesystem store of `dataDir` (layout: src/storage/filesystem.ts). */
export function blobFile(dataDir: string, digest: string): string {
  const [algorithm, hex] = digest.split(':') as [string, string];
  return path.join(dataDir, 'storage', 'blobs', algorithm, hex.slice(0, 2), hex);
}

export function stagingFile(dataDir: string, uploadId: string): string {
  return path.join(dataDir, 'storage', 'uploads', uploadId);
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}
