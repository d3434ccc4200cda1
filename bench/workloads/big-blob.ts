import { once } from 'node:events';
import http from 'node:http';
import { machineCpuSeconds, readCpuSeconds, readTreeCpuSeconds } from '../rss.js';
import { measureMachineLimits } from '../machine.js';
import { formatSize, type BenchOptions } from '../options.js';
import { mbPerSecond, type Workload, type WorkloadContext } from '../workload.js';
import { PatternBlob, streamPush } from './blob-stream.js';

const REPO = 'bench/big';
const GiB = 1024 ** 3;
/** Parallel ranges of one blob, as model downloaders and containerd's parallel fetch use. */
export const RANGES = 8;

/**
 * GET `range` (inclusive bounds; whole blob when absent) and check every byte against the
 * pattern as it arrives (memcmp speed: the client is not bound by hashing). Returns the
 * status and the bytes that matched; a mismatch stops the transfer.
 */
async function pullAndCheck(
  url: string,
  blob: PatternBlob,
  range?: { start: number; end: number },
): Promise<{ status: number; bytes: number; intact: boolean }> {
  const headers = range ? { range: `bytes=${range.start}-${range.end}` } : undefined;
  const req = http.get(url, { headers, agent: false });
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  let offset = range?.start ?? 0;
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (!blob.matches(offset, chunk)) {
      res.destroy();
      return { status: res.statusCode ?? 0, bytes, intact: false };
    }
    offset += chunk.length;
    bytes += chunk.length;
  }
  return { status: res.statusCode ?? 0, bytes, intact: true };
}

/** `size` bytes cut into `count` consecutive inclusive ranges (the last takes the rest). */
export function splitRanges(size: number, count: number): { start: number; end: number }[] {
  const step = Math.ceil(size / count);
  const ranges = [];
  for (let start = 0; start < size; start += step) ranges.push({ start, end: Math.min(size, start + step) - 1 });
  return ranges;
}

/**
 * Issue 19's big-artifact rows (opt-in: `--big`, or `--only big-blob`): in each round and for
 * each server, the machine's limits measured right before (SHA-256 on one core, sequential
 * write with fdatasync, page-cache read), then one blob of `--big-blob-size` pushed as one
 * stream (POST, one PATCH, PUT), pulled as one stream, and pulled as RANGES parallel ranges.
 * Each transfer's rate and the server's CPU seconds per GiB moved (its whole process tree).
 */
export function bigBlobWorkload(options: BenchOptions): Workload {
  const blob = new PatternBlob(options.bigBlobSize);
  const size = formatSize(options.bigBlobSize);
  let digest = '';
  const gib = options.bigBlobSize / GiB;
  return {
    id: 'big-blob',
    title: `Big blob: push, GET and ${RANGES}-range GET of one ${size} blob, with the machine's limits`,
    figures: [
      { id: 'machine-sha256', label: 'Machine: SHA-256, one core (openssl), before each server', unit: 'MB/s', better: 'higher' },
      {
        id: 'machine-fdatasync',
        label: `Machine: sequential write + fdatasync (dd ${formatSize(options.ddSize)}), before each server`,
        unit: 'MB/s',
        better: 'higher',
      },
      { id: 'machine-cache-read', label: 'Machine: page-cache read (dd 1 MiB blocks), before each server', unit: 'MB/s', better: 'higher' },
      { id: 'big-push', label: `Push, 1 stream (${size})`, unit: 'MB/s', better: 'higher' },
      {
        id: 'big-push-limit',
        label: `Push, 1 stream (${size}), share of min(SHA-256, fdatasync) measured just before`,
        unit: '%',
        better: 'higher',
        target: { atLeast: 90 },
      },
      {
        id: 'big-push-cpu',
        label: `Push, 1 stream (${size}), server CPU per GiB`,
        unit: 'CPU-s/GiB',
        better: 'lower',
        target: { ratioAtMost: 1 },
      },
      {
        id: 'big-push-machine-cpu',
        label: `Push, 1 stream (${size}), machine CPU per GiB outside the client (server + kernel writeback)`,
        unit: 'CPU-s/GiB',
        better: 'lower',
      },
      { id: 'big-get', label: `GET, 1 stream (${size})`, unit: 'MB/s', better: 'higher', target: { ratioAtLeast: 0.9 } },
      { id: 'big-get-cpu', label: `GET, 1 stream (${size}), server CPU per GiB`, unit: 'CPU-s/GiB', better: 'lower' },
      {
        id: 'big-ranged-get',
        label: `GET, ${RANGES} parallel ranges of one ${size} blob (aggregate)`,
        unit: 'MB/s',
        better: 'higher',
        target: { ratioAtLeast: 0.9 },
      },
      {
        id: 'big-ranged-get-cpu',
        label: `GET, ${RANGES} parallel ranges (${size}), server CPU per GiB`,
        unit: 'CPU-s/GiB',
        better: 'lower',
      },
    ],
    async prepare() {
      digest = blob.digest();
    },
    async run(ctx: WorkloadContext) {
      const limits = measureMachineLimits(ctx.server.dataDir, 1, options.ddSize);
      const url = `${ctx.server.url}/v2/${REPO}/blobs/${digest}`;
      const cpu = () => readTreeCpuSeconds(ctx.server.pid) ?? Number.NaN;
      ctx.startMeasuring();

      // Server CPU alone misses what the kernel's flusher threads write back for a server that
      // leaves dirty pages to them: the machine's busy time minus this process's (the client)
      // counts it, and on a quiet machine little else.
      const outsideClient = () => machineCpuSeconds().busy - (readCpuSeconds(process.pid) ?? Number.NaN);
      let cpuStart = cpu();
      const outsideStart = outsideClient();
      let started = performance.now();
      const pushed = await streamPush(ctx.server.url, blob, digest, REPO);
      const pushMs = performance.now() - started;
      const pushCpu = cpu() - cpuStart;
      const pushOutside = outsideClient() - outsideStart;
      ctx.check(
        pushed.status === 201 && pushed.headers['docker-content-digest'] === digest,
        `${size} push answered 201 with its digest`,
        `got ${pushed.status}`,
      );

      cpuStart = cpu();
      started = performance.now();
      const pulled = await pullAndCheck(url, blob);
      const getMs = performance.now() - started;
      const getCpu = cpu() - cpuStart;
      ctx.check(
        pulled.status === 200 && pulled.intact && pulled.bytes === blob.size,
        `${size} GET returned every byte pushed`,
        `HTTP ${pulled.status}, ${pulled.bytes} bytes`,
      );

      cpuStart = cpu();
      started = performance.now();
      const parts = await Promise.all(
        splitRanges(blob.size, RANGES).map((range) => pullAndCheck(url, blob, range).then((got) => ({ range, got }))),
      );
      const rangedMs = performance.now() - started;
      const rangedCpu = cpu() - cpuStart;
      for (const { range, got } of parts) {
        ctx.check(
          got.status === 206 && got.intact && got.bytes === range.end - range.start + 1,
          `${RANGES} parallel ranged GETs return their bytes`,
          `${range.start}-${range.end}: HTTP ${got.status}, ${got.bytes} bytes`,
        );
      }
      const push = mbPerSecond(blob.size, pushMs);
      return {
        'machine-sha256': limits.sha256MBps,
        'machine-fdatasync': limits.diskWriteMBps,
        'machine-cache-read': limits.cacheReadMBps,
        'big-push': push,
        'big-push-limit': (100 * push) / limits.pushLimitMBps,
        'big-push-cpu': pushCpu / gib,
        'big-push-machine-cpu': pushOutside / gib,
        'big-get': mbPerSecond(blob.size, getMs),
        'big-get-cpu': getCpu / gib,
        'big-ranged-get': mbPerSecond(blob.size, rangedMs),
        'big-ranged-get-cpu': rangedCpu / gib,
      };
    },
  };
}
