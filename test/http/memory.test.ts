import assert from 'node:assert/strict';
import { createHash, type Hash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';

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

  it(`streamed PATCH + PUT of 1 GiB, then GET of it, grow the server's RSS by < ${RSS_GROWTH_LIMIT_MB} MB`, { timeout: 8 * 60_000 }, async (t) => {
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
    t.diagnostic(`1 GiB push ${pushSeconds.toFixed(1)}s (${(1024 / pushSeconds).toFixed(0)} MiB/s); server RSS baseline ${baseline.toFixed(0)} MB, peak ${hwm.toFixed(0)} MB, now ${rss.toFixed(0)} MB, peak growth ${growth.toFixed(0)} MB`);
    assert.ok(growth < RSS_GROWTH_LIMIT_MB, `server peak RSS grew by ${growth.toFixed(0)} MB (baseline ${baseline.toFixed(0)}, peak ${hwm.toFixed(0)})`);
  });
});
