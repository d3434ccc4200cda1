import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './server.js';

const exec = promisify(execFile);

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `berth <args>` as `npx berth` would (src/cli.ts under tsx), with `env` over this
 * process's environment: its exit code and output, never a rejection for a non-zero exit.
 */
export async function runBerth(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<CliRun> {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      timeout: timeoutMs,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as CliRun;
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** The environment that points the CLI at a data directory and its metadata database. */
export function metadataEnvOf(dataDir: string, metadata: { driver: string; url?: string }): NodeJS.ProcessEnv {
  return { BERTH_DATA_DIR: dataDir, BERTH_METADATA_DRIVER: metadata.driver, ...(metadata.url ? { BERTH_METADATA_URL: metadata.url } : {}) };
}
