import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Runs the real container clients (skopeo, podman, buildah, umoci) for interop tests,
 * each in a private sandbox: its own HOME, XDG_RUNTIME_DIR, TMPDIR, auth file and
 * vfs image stores under one temp directory, so nothing reads or writes root's
 * configuration or the system image store.
 */

export interface RunResult {
  command: string;
  code: number | null;
  /** The signal that ended the tool, if one did (e.g. SIGKILL after `abort`). */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Kill the tool (SIGKILL) after this many milliseconds. */
  timeoutMs?: number;
  /** Resolve with the result instead of throwing when the tool exits non-zero. */
  allowFailure?: boolean;
  /** Aborting it kills the tool (SIGKILL), as a user pressing ^C or a crash would. */
  abort?: AbortSignal;
}

const DEFAULT_TIMEOUT_MS = 120_000;

export class ToolError extends Error {
  constructor(
    readonly result: RunResult,
    reason: string,
  ) {
    super(
      `${result.command} ${reason} after ${result.ms} ms\n--- stderr ---\n${tail(result.stderr)}\n--- stdout ---\n${tail(result.stdout)}`,
    );
  }
}

/** Runs `command args…` to completion, capturing its output; throws on failure or timeout. */
export function runTool(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  const shown = [command, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: options.abort,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.on('error', (err) => {
      // An abort is reported here and then as an ordinary exit by signal below.
      if (err.name === 'AbortError') return;
      clearTimeout(timer);
      reject(new Error(`cannot run ${shown}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result = { command: shown, code, signal, stdout, stderr, ms: Date.now() - started };
      if (timedOut) reject(new ToolError(result, `timed out (${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms)`));
      else if (code !== 0 && !options.allowFailure) reject(new ToolError(result, `exited with ${code ?? signal}`));
      else resolve(result);
    });
  });
}

/**
 * Throws (so the suite fails rather than skips) unless every tool is on PATH.
 * scripts/install-system-deps.sh installs them.
 */
export function requireTools(tools: string[]): void {
  const missing = tools.filter((tool) => !onPath(tool));
  if (missing.length > 0) {
    throw new Error(`interop clients missing from PATH: ${missing.join(', ')} (run scripts/install-system-deps.sh)`);
  }
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** `127.0.0.1:<port>` of a registry base URL, the form container clients want. */
export function registryHost(url: string): string {
  return new URL(url).host;
}

export interface StoreOption {
  /** Which private image store to use; a fresh name is an empty store. */
  store?: string;
}

/** A private environment for the container clients, removed by `destroy()`. */
export class ClientSandbox {
  readonly env: NodeJS.ProcessEnv;

  private constructor(readonly dir: string) {
    for (const sub of ['home', 'run', 'tmp']) mkdirSync(path.join(dir, sub), { recursive: true, mode: 0o700 });
    const authFile = path.join(dir, 'auth.json');
    // podman and buildah refuse a REGISTRY_AUTH_FILE that does not exist.
    writeFileSync(authFile, JSON.stringify({ auths: {} }));
    this.env = {
      ...process.env,
      HOME: path.join(dir, 'home'),
      XDG_RUNTIME_DIR: path.join(dir, 'run'),
      XDG_CONFIG_HOME: path.join(dir, 'home', '.config'),
      TMPDIR: path.join(dir, 'tmp'),
      REGISTRY_AUTH_FILE: authFile,
    };
  }

  /**
   * The directory name is lowercase hex on purpose: `podman pull oci:<dir>:<tag>` names
   * the image after the path, and image names must be lowercase. It is also short,
   * because podman refuses a --runroot longer than 50 characters.
   */
  static create(): ClientSandbox {
    const dir = path.join(os.tmpdir(), `berth-interop-${randomBytes(4).toString('hex')}`);
    mkdirSync(dir, { mode: 0o700 });
    return new ClientSandbox(dir);
  }

  /** A path inside the sandbox; its parent directory is created, the path itself is not. */
  path(...parts: string[]): string {
    const full = path.join(this.dir, ...parts);
    mkdirSync(path.dirname(full), { recursive: true });
    return full;
  }

  skopeo(args: string[], options: RunOptions = {}): Promise<RunResult> {
    return runTool('skopeo', args, { ...options, env: this.env });
  }

  podman(args: string[], options: RunOptions & StoreOption = {}): Promise<RunResult> {
    const flags = [...this.storeFlags(options.store), '--tmpdir', this.storePath(options.store, 'libpod-tmp')];
    // No container ever runs: cgroupfs and file events avoid needing systemd/journald.
    flags.push('--cgroup-manager=cgroupfs', '--events-backend=file');
    return runTool('podman', [...flags, ...args], { ...options, env: this.env });
  }

  buildah(args: string[], options: RunOptions & StoreOption = {}): Promise<RunResult> {
    return runTool('buildah', [...this.storeFlags(options.store), ...args], { ...options, env: this.env });
  }

  umoci(args: string[], options: RunOptions = {}): Promise<RunResult> {
    return runTool('umoci', args, { ...options, env: this.env });
  }

  destroy(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private storeFlags(store: string | undefined): string[] {
    const runroot = path.join(this.dir, 'rr', store ?? 'default');
    if (runroot.length > 50) throw new Error(`podman refuses a --runroot over 50 characters: ${runroot}`);
    return ['--storage-driver', 'vfs', '--root', this.storePath(store, 'root'), '--runroot', runroot];
  }

  private storePath(store: string | undefined, sub: string): string {
    return path.join(this.dir, 'stores', store ?? 'default', sub);
  }
}

function tail(text: string, max = 4000): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}
