import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { distributionVersion } from './servers.js';

export interface MachineInfo {
  date: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  distribution: string;
  /** 1-minute load average when the run started: other work on the machine skews every figure. */
  loadAverageAtStart: number;
}

export interface MachineLimits {
  /** openssl speed -evp sha256 at 16 KiB blocks, MB/s. */
  sha256MBps: number;
  /** Sequential write with fdatasync (dd), MB/s. */
  diskWriteMBps: number;
  /** Sequential read of the file just written, from the page cache (dd, 1 MiB blocks), MB/s: what a GET of a cached blob cannot beat. */
  cacheReadMBps: number;
  /** The lower of the two: the best a single-stream push can do here. */
  pushLimitMBps: number;
}

export function describeMachine(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    date: new Date().toISOString(),
    cpus: os.availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    kernel: os.release(),
    node: process.version,
    distribution: distributionVersion(),
    loadAverageAtStart: os.loadavg()[0]!,
  };
}

/** Parses the 16384-byte column of `openssl speed -evp sha256` (values are in 1000s of bytes/s). */
export function parseOpenSslSpeed(output: string): number {
  const line = output.split('\n').find((l) => /^sha256\s/i.test(l.trim()) || /^SHA2-256\s/i.test(l.trim()));
  const kbps = line?.trim().split(/\s+/).at(-1)?.replace(/k$/, '');
  const value = Number(kbps);
  if (!line || !Number.isFinite(value)) throw new Error(`cannot parse openssl speed output:\n${output}`);
  return (value * 1000) / 1e6;
}

/** Parses dd's summary ("1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.1 s, 511 MB/s"). */
export function parseDdRate(output: string): number {
  const m = /(\d+) bytes .* copied, ([\d.,]+) s/.exec(output);
  if (!m) throw new Error(`cannot parse dd output:\n${output}`);
  return Number(m[1]) / 1e6 / Number(m[2]!.replace(',', '.'));
}

export function measureMachineLimits(dir: string, opensslSeconds: number, ddBytes: number): MachineLimits {
  const speed = execFileSync('openssl', ['speed', '-evp', 'sha256', '-bytes', '16384', '-seconds', String(opensslSeconds)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const sha256MBps = parseOpenSslSpeed(speed);
  const file = path.join(dir, 'dd-write-test');
  const blockSize = 4 * 1024 * 1024;
  const count = Math.max(1, Math.round(ddBytes / blockSize));
  // dd reports on stderr; conv=fdatasync makes the time include reaching the disk.
  const dd = spawnSync('dd', ['if=/dev/zero', `of=${file}`, `bs=${blockSize}`, `count=${count}`, 'conv=fdatasync'], {
    encoding: 'utf8',
    env: { ...process.env, LC_ALL: 'C' },
  });
  // The file is in the page cache now (written, then flushed: its pages stay cached and clean).
  const read =
    dd.status === 0
      ? spawnSync('dd', [`if=${file}`, 'of=/dev/null', `bs=${1024 * 1024}`], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })
      : undefined;
  rmSync(file, { force: true });
  if (dd.status !== 0) throw new Error(`dd failed: ${dd.stderr}`);
  if (read?.status !== 0) throw new Error(`dd (read) failed: ${read?.stderr}`);
  const diskWriteMBps = parseDdRate(dd.stderr);
  return { sha256MBps, diskWriteMBps, cacheReadMBps: parseDdRate(read.stderr), pushLimitMBps: Math.min(sha256MBps, diskWriteMBps) };
}
