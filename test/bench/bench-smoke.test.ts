import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { describe, it } from 'node:test';
import { createWorkloads, runBench } from '../../bench/bench.js';
import { parseDdRate, parseOpenSslSpeed } from '../../bench/machine.js';
import { resolveOptions, type BenchOptions } from '../../bench/options.js';
import { renderMarkdown } from '../../bench/report.js';
import { startDistribution, startScriptNodeFlags, type BenchServer } from '../../bench/servers.js';
import { CheckFailed, type WorkloadContext } from '../../bench/workload.js';
import { readTreeCpuSeconds } from '../../bench/rss.js';
import { bigBlobWorkload, splitRanges } from '../../bench/workloads/big-blob.js';
import { blobStreamWorkload, PatternBlob } from '../../bench/workloads/blob-stream.js';
import { rssGrowthMB } from '../../bench/workloads/big-push.js';
import { summarise } from '../../bench/profile-summary.js';
import { runProxyCacheBench } from '../../bench/proxy-cache.js';
import { shapeRepliesFrom } from '../../bench/link-shaping.js';

/** The quick mode's pieces at tiny sizes: every workload, both servers, one round. */
const TINY: Partial<BenchOptions> = {
  quick: true,
  // The opt-in big-blob rows too (issue 19), on the small bigBlobSize below.
  big: true,
  rounds: 1,
  berthRuntime: 'tsx',
  blobSize: 4 * 1024 * 1024 + 123,
  bigBlobSize: 16 * 1024 * 1024 + 7,
  images: 2,
  layersPerImage: 2,
  layerSize: 256 * 1024,
  skopeoParallel: 2,
  connections: 8,
  durationSeconds: 1,
  tags: 150,
  repositories: 120,
  pageSize: 50,
  listingRepeats: 3,
  catalogWalkRepeats: 1,
  openSslSeconds: 1,
  ddSize: 8 * 1024 * 1024,
  resultsDir: null,
};

describe('npm run bench (quick pieces, tiny sizes)', () => {
  it('measures every figure on both servers with all correctness checks passing', { timeout: 180_000 }, async () => {
    const options = resolveOptions(TINY);
    const result = await runBench(options, () => undefined);
    const expected = createWorkloads(options).flatMap((w) => w.figures.map((f) => f.id));
    assert.deepEqual(result.figures.map((f) => f.id).sort(), [...expected].sort());
    for (const figure of result.figures) {
      for (const kind of ['berth', 'distribution'] as const) {
        // Rates must be positive; latencies (autocannon counts whole ms, so a fast server's p50 at
        // 8 connections is 0) and memory growth (may shrink) need only be real numbers.
        const value = figure.median[kind];
        assert.ok(Number.isFinite(value) && (figure.better === 'higher' ? value > 0 : true), `${figure.id} on ${kind}: ${value}`);
      }
      if (figure.target) assert.match(figure.status, /^(PASS|MISS)$/);
    }
    assert.deepEqual(
      result.rss.map((r) => r.workload).sort(),
      createWorkloads(options)
        .map((w) => w.id)
        .sort(),
    );
    for (const rss of result.rss) assert.ok(rss.peakMB.berth > 10 && rss.peakMB.distribution > 5, `${rss.workload} RSS measured`);
    // CPU time comes in 10 ms ticks: a tiny workload may measure 0, but never less, and not all of them 0.
    for (const usage of result.rss)
      assert.ok(usage.cpuSeconds.berth >= 0 && usage.cpuSeconds.distribution >= 0, `${usage.workload} CPU time measured`);
    for (const kind of ['berth', 'distribution'] as const) {
      assert.ok(result.rss.reduce((sum, usage) => sum + usage.cpuSeconds[kind], 0) > 0, `${kind} used some CPU over all workloads`);
    }
    assert.ok(result.checks.berth.length >= 15, `berth checks: ${result.checks.berth.length}`);
    assert.deepEqual([...result.checks.berth].sort(), [...result.checks.distribution].sort());
    assert.ok(result.limits && result.limits.pushLimitMBps > 0);

    const markdown = renderMarkdown(result);
    for (const figure of result.figures) assert.ok(markdown.includes(`| ${figure.label} |`), `table row for ${figure.label}`);
    assert.match(markdown, /Machine limit for a single-stream push/);
  });

  it('a server that returns corrupted blob bytes fails the run instead of scoring', { timeout: 60_000 }, async () => {
    const distribution = await startDistribution();
    const proxy = await corruptingProxy(distribution.url);
    try {
      const options = resolveOptions({ ...TINY, blobSize: 1024 * 1024 });
      const workload = blobStreamWorkload(options);
      await workload.prepare!();
      const server: BenchServer = { ...distribution, url: proxy.url };
      await assert.rejects(
        workload.run(contextFor(server, options)),
        (err: Error) => err instanceof CheckFailed && /digest/.test(err.message),
      );
    } finally {
      proxy.server.close();
      await distribution.stop();
    }
  });

  it(
    'the big-blob rows check every byte pulled against the pattern, whole and in 8 ranges, and fail on a flipped byte',
    { timeout: 60_000 },
    async () => {
      const blob = new PatternBlob(3 * 4 * 1024 * 1024 + 5);
      let offset = 0;
      const chunks = [...blob.chunks()];
      for (const chunk of chunks) {
        assert.ok(blob.matches(offset, chunk), `chunk at ${offset}`);
        // Cut anywhere, including inside a chunk's 8-byte stamp (the last chunk, 5 bytes, has none).
        if (chunk.length > 5000)
          assert.ok(blob.matches(offset + 3, chunk.subarray(3, 1000)) && blob.matches(offset + 5000, chunk.subarray(5000, 5001)));
        offset += chunk.length;
      }
      const wrong = Buffer.from(chunks[1]!);
      wrong[2] = wrong[2]! ^ 1; // inside the stamp
      assert.equal(blob.matches(4 * 1024 * 1024, wrong), false);
      assert.equal(blob.matches(0, chunks[1]!), false, 'chunk 1 is not chunk 0: the stamps differ');
      assert.equal(blob.matches(blob.size - 2, Buffer.alloc(3)), false, 'past the end');
      assert.deepEqual(
        splitRanges(10, 8).map((r) => [r.start, r.end]),
        [
          [0, 1],
          [2, 3],
          [4, 5],
          [6, 7],
          [8, 9],
        ],
      );
      assert.equal(
        splitRanges(blob.size, 8).reduce((sum, r) => sum + r.end - r.start + 1, 0),
        blob.size,
      );

      const distribution = await startDistribution();
      const proxy = await corruptingProxy(distribution.url);
      try {
        const options = resolveOptions({ ...TINY, bigBlobSize: 2 * 1024 * 1024 });
        const workload = bigBlobWorkload(options);
        await workload.prepare!();
        const server: BenchServer = { ...distribution, url: proxy.url };
        await assert.rejects(
          workload.run(contextFor(server, options)),
          (err: Error) => err instanceof CheckFailed && /GET returned every byte/.test(err.message),
        );
      } finally {
        proxy.server.close();
        await distribution.stop();
      }
    },
  );

  it(
    "the proxy-cache bench times a miss through Berth's cache project and through Distribution's proxy, and reports both against direct",
    { timeout: 120_000 },
    async () => {
      const report = await runProxyCacheBench(resolveOptions(TINY), 2 * 1024 * 1024 + 5, undefined, () => {});
      assert.match(report, /Upstream link: loopback, not limited/);
      assert.match(report, /\| first pull through the cache project \(miss\) \| \d+\.\d\d s \| \d+ MB\/s \| \d+\.\d\d s \|/);
      assert.match(
        report,
        /\| first pull through Distribution's own proxy \(the anchor; miss\) \| \d+\.\d\d s \| \d+ MB\/s \| \d+\.\d\d s until the last byte \|/,
      );
      assert.match(report, /\| first pull time \/ direct time \| \d+\.\d\d \| \d+\.\d\d× \| ≤ 1\.2× \| (PASS|MISS) \|/);
      assert.match(report, /\| anchor: Distribution's proxy first pull time \/ direct time \| \d+\.\d\d \| \d+\.\d\d× \|/);
    },
  );

  it(
    'a shaped upstream link (tc on loopback) slows only the replies of the port it names, and is removed after',
    { timeout: 60_000 },
    async () => {
      assert.throws(() => shapeRepliesFrom(1, 'fast'), /is not a tc rate such as 500mbit/);
      assert.equal(process.getuid?.(), 0, 'shaping needs root: the suite runs as root (scripts/install-system-deps.sh)');
      const body = Buffer.alloc(12 * 1024 * 1024, 7);
      const servers = await Promise.all(
        [0, 1].map(
          () =>
            new Promise<http.Server>((resolve) => {
              const server = http.createServer((_req, res) => res.end(body)).listen(0, '127.0.0.1', () => resolve(server));
            }),
        ),
      );
      const port = (server: http.Server) => (server.address() as AddressInfo).port;
      const fetchSeconds = async (server: http.Server) => {
        const started = performance.now();
        const got = Buffer.from(await (await fetch(`http://127.0.0.1:${port(server)}/`)).arrayBuffer());
        assert.equal(got.length, body.length);
        return (performance.now() - started) / 1000;
      };
      const unshape = shapeRepliesFrom(port(servers[0]!), '100mbit');
      try {
        // 12 MiB at 100 Mbit/s: the first 4 MB pass in the burst allowance, the other ~8.6 MB
        // take 0.69 s; the other port is not limited (milliseconds).
        const shaped = await fetchSeconds(servers[0]!);
        const free = await fetchSeconds(servers[1]!);
        assert.ok(shaped > 0.5, `the shaped port's 12 MiB took ${shaped.toFixed(3)} s`);
        assert.ok(free < shaped / 4, `the other port's took ${free.toFixed(3)} s against ${shaped.toFixed(3)} s`);
      } finally {
        unshape();
        for (const server of servers) server.close();
      }
      assert.doesNotMatch(execFileSync('tc', ['qdisc', 'show', 'dev', 'lo'], { encoding: 'utf8' }), /htb/, 'the shaping is gone');
    },
  );

  it('counts the CPU time of a process and of its children', () => {
    const own = readTreeCpuSeconds(process.pid);
    assert.ok(own !== null && own > 0, `this process used CPU: ${own}`);
    assert.equal(readTreeCpuSeconds(2 ** 22 + 12345), null, 'no such process');
  });

  it('parses openssl speed and dd output', () => {
    const speed = "The 'numbers' are in 1000s of bytes per second processed.\ntype          16384 bytes\nsha256         1501847.83k\n";
    assert.equal(Math.round(parseOpenSslSpeed(speed)), 1502);
    assert.equal(Math.round(parseDdRate('67108864 bytes (67 MB, 64 MiB) copied, 0.5 s, 134 MB/s')), 134);
  });

  it("launches Berth with the node flags of package.json's start script, as npm start does", () => {
    assert.deepEqual(
      startScriptNodeFlags('npm run build --silent && node --max-semi-space-size=4 --enable-source-maps dist/src/cli.js serve'),
      ['--max-semi-space-size=4', '--enable-source-maps'],
    );
    assert.deepEqual(startScriptNodeFlags('node dist/src/cli.js serve'), []);
    assert.throws(() => startScriptNodeFlags('tsx src/cli.ts serve'), /does not run "node \[flags\] dist\/src\/cli.js serve"/);
  });

  it('tells a flat memory curve from one that grows with the bytes pushed', () => {
    const curve = (rssAt: (i: number) => number) => Array.from({ length: 100 }, (_, i) => ({ atMs: i * 100, rss: rssAt(i) }));
    const flat = rssGrowthMB(curve((i) => 120e6 + (i % 7) * 1e6));
    assert.ok(flat >= 0 && flat <= 1, `flat curve: ${flat} MB`);
    assert.equal(rssGrowthMB(curve((i) => 100e6 + i * 40e6)), (99 - 24) * 40);
    assert.ok(Number.isNaN(rssGrowthMB([])), 'no samples, no figure');
  });

  it('profile-summary lists the top self-time functions of every profile given, with or without --top', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'berth-prof-'));
    const file = path.join(dir, 'one.cpuprofile');
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 9 });
    const nodes = [
      { id: 1, callFrame: frame('(root)', '') },
      { id: 2, callFrame: frame('hashChunk', 'file:///app/src/hash.js') },
      { id: 3, callFrame: frame('writeChunk', 'file:///app/node_modules/lib/write.js') },
    ];
    writeFileSync(file, JSON.stringify({ nodes, startTime: 0, endTime: 2e6, samples: [2, 2, 2, 3], timeDeltas: [500, 500, 500, 500] }));
    try {
      const lines = summarise([file]).trim().split('\n');
      assert.match(lines[0]!, /one\.cpuprofile \(2\.0 s profiled\)/);
      assert.match(lines[1]!, /^ 75\.0% +2 ms +hashChunk +.*hash\.js:10$/);
      assert.match(lines[2]!, /^ 25\.0% +1 ms +writeChunk +lib\/write\.js:10$/);
      assert.equal(summarise(['--top', '1', file]).trim().split('\n').length, 2, '--top 1: the header and one row');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function contextFor(server: BenchServer, options: BenchOptions): WorkloadContext {
  return {
    server,
    options,
    startMeasuring: () => undefined,
    check: (ok, what) => {
      if (!ok) throw new CheckFailed(what);
    },
    note: () => undefined,
  };
}

/** Forwards to `target`, flipping one byte in every blob GET body (a fast wrong answer). */
async function corruptingProxy(target: string): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer((req, res) => {
    const upstream = http.request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      const corrupt = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url!);
      let first = true;
      const flip = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          if (corrupt && first && chunk.length > 0) {
            chunk = Buffer.from(chunk);
            chunk[chunk.length - 1] = chunk[chunk.length - 1]! ^ 0xff;
            first = false;
          }
          done(null, chunk);
        },
      });
      up.pipe(flip).pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
