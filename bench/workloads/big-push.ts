import { formatSize, type BenchOptions } from '../options.js';
import { readMemory } from '../rss.js';
import { mbPerSecond, type Workload } from '../workload.js';
import { PatternBlob, streamPush } from './blob-stream.js';

const MB = 1e6;

/**
 * How much a server's RSS grew over one long push: the highest sample of the push's second
 * half minus the highest of its first quarter. A server that buffers any share of the blob
 * grows with the bytes received (gigabytes here); one that streams stays flat, give or take
 * what the GC has not collected yet. Too short a push for quarters: last minus first.
 */
export function rssGrowthMB(samples: { atMs: number; rss: number }[]): number {
  if (samples.length === 0) return Number.NaN;
  if (samples.length < 8) return (samples.at(-1)!.rss - samples[0]!.rss) / MB;
  const start = samples[0]!.atMs;
  const span = samples.at(-1)!.atMs - start;
  const highest = (from: number, to: number) =>
    Math.max(...samples.filter((s) => s.atMs - start >= from * span && s.atMs - start <= to * span).map((s) => s.rss));
  return (highest(0.5, 1) - highest(0, 0.25)) / MB;
}

/** Issue 6: "memory flat for a 4 GiB blob push", measured rather than assumed. */
export function bigPushWorkload(options: BenchOptions): Workload {
  const blob = new PatternBlob(options.bigBlobSize);
  let digest = '';
  const size = formatSize(options.bigBlobSize);
  return {
    id: 'big-push',
    title: `Memory over a single-stream push of one ${size} blob`,
    // One round: the figure is a bound on memory, and each push writes gigabytes.
    rounds: 1,
    figures: [
      { id: 'big-push-growth', label: `RSS growth over a ${size} push`, unit: 'MB', better: 'lower', target: { atMost: 20 } },
      { id: 'big-push-speed', label: `Blob push, 1 stream (${size})`, unit: 'MB/s', better: 'higher' },
    ],
    async prepare() {
      digest = blob.digest();
    },
    async run(ctx) {
      const samples: { atMs: number; rss: number }[] = [];
      const sample = () => {
        const memory = readMemory(ctx.server.pid);
        if (memory) samples.push({ atMs: performance.now(), rss: memory.rss });
      };
      ctx.startMeasuring();
      const timer = setInterval(sample, 50);
      const started = performance.now();
      sample();
      let pushed;
      try {
        pushed = await streamPush(ctx.server.url, blob, digest);
      } finally {
        clearInterval(timer);
      }
      const ms = performance.now() - started;
      sample();
      ctx.check(
        pushed.status === 201 && pushed.headers['docker-content-digest'] === digest,
        `${size} push answered 201 with its digest`,
        `got ${pushed.status}`,
      );
      return { 'big-push-growth': rssGrowthMB(samples), 'big-push-speed': mbPerSecond(blob.size, ms) };
    },
  };
}
