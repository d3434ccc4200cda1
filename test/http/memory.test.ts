import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';

const GiB = 1024 * 1024 * 1024;
const CHUNK = 1024 * 1024;
const RSS_GROWTH_LIMIT_MB = 100;

/** Resident and peak-resident memory of a process, in MiB, from /proc/<pid>/status. */
function memoryMb(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/**
 * `total` bytes of deterministic pseudo-random data, generated chunk by chunk as the
 * request body pulls it (never held whole), hashed on the way out.
 */
function generatedBody(total: number, hash: Hash): ReadableStream<Uint8Array> {
  const base = Buffer.alloc(CHUNK);
  let x = 0x9e3779b9;
  for (let i = 0; i < CHUNK; i += 4) {
    // xorshift32: cheap, deterministic, incompressible enough for a storage test.
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    base.writeUInt32LE(x >>> 0, i);
  }
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= total) {
        controller.close();
        return;
      }
      const chunk = Buffer.from(base.subarray(0, Math.min(CHUNK, total - sent)));
      chunk.writeUInt32LE(sent / CHUNK, 0); // every chunk differs
      hash.update(chunk);
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

describe('memory: a 1 GiB blob streams through a real berth process in bounded memory', () => {
  const dataDir = tempDir('berth-mem-');
  let berth: BerthProcess;
  before(async () => {
    berth = await startBerthProcess({ BERTH_DATA_DIR: dataDir });
  });
  after(async () => {
    await berth?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(
    `streamed PATCH + PUT of 1 GiB, then GET of it, grow the server's RSS by < ${RSS_GROWTH_LIMIT_MB} MB`,
    { timeout: 8 * 60_000 },
    async (t) => {
      const pid = berth.child.pid!;
      const warm = await fetch(`${berth.url}/v2/`);
      assert.equal(warm.status, 200);
      const baseline = memoryMb(pid).rss;

      const start = await fetch(`${berth.url}/v2/mem/big/blobs/uploads/`, { method: 'POST' });
      assert.equal(start.status, 202);
      const location = new URL(start.headers.get('location')!, berth.url).toString();
      const sent = createHash('sha256');
      const began = Date.now();
      const patch = await fetch(location, { method: 'PATCH', body: generatedBody(GiB, sent), duplex: 'half' } as RequestInit);
      assert.equal(patch.status, 202, await patch.text());
      assert.equal(patch.headers.get('range'), `0-${GiB - 1}`);
      const digest = `sha256:${sent.digest('hex')}`;
      const put = await fetch(`${new URL(patch.headers.get('location')!, berth.url)}?digest=${digest}`, { method: 'PUT' });
      assert.equal(put.status, 201, await put.text());
      const pushSeconds = (Date.now() - began) / 1000;

      const pulled = createHash('sha256');
      let received = 0;
      const get = await fetch(`${berth.url}/v2/mem/big/blobs/${digest}`);
      assert.equal(get.status, 200);
      for await (const chunk of get.body!) {
        pulled.update(chunk);
        received += chunk.length;
      }
      assert.equal(received, GiB);
      assert.equal(`sha256:${pulled.digest('hex')}`, digest);

      const { rss, hwm } = memoryMb(pid);
      const growth = hwm - baseline;
      t.diagnostic(
        `1 GiB push ${pushSeconds.toFixed(1)}s (${(1024 / pushSeconds).toFixed(0)} MiB/s); server RSS baseline ${baseline.toFixed(0)} MB, peak ${hwm.toFixed(0)} MB, now ${rss.toFixed(0)} MB, peak growth ${growth.toFixed(0)} MB`,
      );
      assert.ok(
        growth < RSS_GROWTH_LIMIT_MB,
        `server peak RSS grew by ${growth.toFixed(0)} MB (baseline ${baseline.toFixed(0)}, peak ${hwm.toFixed(0)})`,
      );
    },
  );
});

/**
 * Issue 19: idle RSS per worker. Measured the production way (`npm start`: the compiled dist/,
 * the same node flags), SQLite + filesystem, one worker, after 25 s without requests.
 * docs/performance.md › Memory at idle has the breakdown; the floor is node itself (~40 MB).
 */
// 89-92 MB measured after the lazy loading of 2026-12-03 (load 15-22 on 2 shared cores), 94-98 before.
const IDLE_RSS_LIMIT_MB = 95;
const IDLE_SECONDS = 25;

describe('memory: an idle berth serve (dist/, one worker) stays small', () => {
  const dataDir = tempDir('berth-idle-');
  let child: ChildProcess | undefined;
  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(
    `RSS after ${IDLE_SECONDS} s idle is <= ${IDLE_RSS_LIMIT_MB} MB, with the heap compacted at start and once idle`,
    { timeout: 5 * 60_000 },
    async (t) => {
      const build = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), '--if-stale'], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(build.status, 0, build.stderr);
      child = spawn(process.execPath, ['--max-semi-space-size=4', '--enable-source-maps', path.join(ROOT, 'dist/src/cli.js'), 'serve'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          BERTH_DATA_DIR: dataDir,
          BERTH_HTTP_ADDR: '127.0.0.1:0',
          BERTH_SERVER_WORKERS: '1',
          BERTH_LOG_LEVEL: 'debug',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let log = '';
      child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      const deadline = Date.now() + 60_000;
      while (!/"url":"(https?:\/\/[^"]+)".*berth is listening/.test(log)) {
        assert.ok(Date.now() < deadline && child.exitCode === null, `berth did not start:\n${log}`);
        await sleep(100);
      }
      const url = /"url":"(https?:\/\/[^"]+)".*berth is listening/.exec(log)![1]!;
      assert.equal((await fetch(`${url}/v2/`)).status, 200);
      await sleep(IDLE_SECONDS * 1000);
      const rollup = readFileSync(`/proc/${child.pid}/smaps_rollup`, 'utf8');
      const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)![1]);
      const rss = kb('Rss') / 1024;
      const anon = kb('Anonymous') / 1024;
      const compactions = log.match(/heap compacted/g)?.length ?? 0;
      t.diagnostic(
        `idle RSS ${rss.toFixed(1)} MB (anonymous ${anon.toFixed(1)}, file-backed ${(rss - anon).toFixed(1)}), idle compactions ${compactions}`,
      );
      assert.equal(compactions, 2, `one compaction at start, one per idle spell:\n${log}`);
      assert.ok(rss <= IDLE_RSS_LIMIT_MB, `idle RSS ${rss.toFixed(1)} MB > ${IDLE_RSS_LIMIT_MB} MB`);
    },
  );
});
