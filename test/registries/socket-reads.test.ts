import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeBody } from '../../src/client/index.js';
import { endpointFetch } from '../../src/registries/index.js';
import { bodyReader, type ReadSink } from '../../src/registries/socket-reads.js';
import { selfSignedCertificate } from '../helpers/certificates.js';
import { requireTools } from '../helpers/clients.js';

/**
 * A raw body of an endpoint fetch read straight into a sink's memory (socket-reads.ts), over
 * real plain and TLS connections: the bytes land in the sink's memory exactly once, in order; a
 * sink without room pauses the connection (its memory is never overwritten) and the bytes read
 * meanwhile are copied in once it has room; a connection cut short, a destroyed body and a
 * failing sink each reject the read; the endpoint still works afterwards.
 */

/** A sink over `count` buffers of `bytes`, each freed only when `free()` is called: it runs out of room on purpose. */
class RingSink implements ReadSink {
  readonly hash = createHash('sha256');
  received = 0;
  /** Reads filled in place vs all fills (parked bytes copied in count as fills too). */
  fills = 0;
  nulls = 0;
  private readonly buffers: Buffer[];
  private last: Buffer | null = null;
  private inUse = 0;
  private waiters: Array<() => void> = [];
  failAt = Number.POSITIVE_INFINITY;

  constructor(
    count: number,
    private readonly bytes: number,
  ) {
    this.buffers = Array.from({ length: count }, () => Buffer.alloc(bytes));
  }

  /** Buffers fully written and not yet freed. */
  get full(): number {
    return this.inUse;
  }

  room(max: number): Uint8Array | null {
    const at = this.received % this.bytes;
    if (at === 0 && this.inUse === this.buffers.length) {
      this.nulls++;
      return (this.last = null);
    }
    const buf = this.buffers[Math.floor(this.received / this.bytes) % this.buffers.length]!;
    this.last = buf.subarray(at, at + Math.min(this.bytes - at, max));
    return this.last;
  }

  filled(n: number): void {
    if (this.received + n > this.failAt) throw new Error('the sink failed');
    assert.ok(this.last && n <= this.last.length, 'filled within the last room');
    this.hash.update(this.last.subarray(0, n));
    this.fills++;
    const at = this.received % this.bytes;
    this.received += n;
    if (at + n === this.bytes) this.inUse++;
  }

  roomFreed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Frees every full buffer and wakes the reader. */
  free(): void {
    this.inUse = 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

describe('raw bodies read into a sink', () => {
  const size = 8 * 1024 * 1024 + 4321;
  const data = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  const digest = createHash('sha256').update(data).digest('hex');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-socket-reads-'));
  const servers: http.Server[] = [];
  let plainBase: string;
  let tlsBase: string;
  let pem: string;

  const handler: http.RequestListener = (req, res) => {
    if (req.url === '/short') {
      res.writeHead(200, { 'content-length': String(size) });
      res.write(data.subarray(0, size >> 1), () => res.socket?.destroy());
      return;
    }
    res.writeHead(200, { 'content-length': String(size) });
    res.end(data);
  };

  const listen = async (server: http.Server, scheme: string) => {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  before(async () => {
    requireTools(['openssl']);
    const { cert, key } = selfSignedCertificate(dir, 'upstream');
    pem = readFileSync(cert, 'utf8');
    plainBase = await listen(http.createServer(handler), 'http');
    tlsBase = await listen(https.createServer({ key: readFileSync(key), cert: pem }, handler), 'https');
  });

  after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  for (const scheme of ['http', 'https'] as const) {
    it(`${scheme}: every byte lands in the sink's memory in order, and a sink out of room pauses the connection`, async () => {
      const fetchOf = endpointFetch({ insecure: false, caBundle: pem });
      const base = scheme === 'http' ? plainBase : tlsBase;
      const res = await fetchOf(`${base}/blob`);
      const body = nodeBody(res)!;
      const readInto = bodyReader(body);
      assert.ok(readInto, 'a connection of the endpoint fetch reads into a sink');
      // Let the stream side take some bytes first: they must reach the sink too (as leftovers).
      await new Promise((resolve) => setTimeout(resolve, 20));
      // 3 × 256 KiB: the reader runs out of room every 768 KiB until the buffers are freed.
      const sink = new RingSink(3, 256 * 1024);
      let maxFull = 0;
      const freeing = setInterval(() => {
        maxFull = Math.max(maxFull, sink.full);
        sink.free();
      }, 2);
      try {
        await readInto(sink);
      } finally {
        clearInterval(freeing);
      }
      assert.equal(sink.received, size);
      assert.equal(sink.hash.digest('hex'), digest, 'the bytes in order, none overwritten');
      assert.ok(sink.nulls > 0, 'the sink ran out of room at least once (the pause path ran)');
      assert.ok(maxFull <= 3, `never more than the sink's buffers in use (${maxFull})`);
      assert.ok(sink.fills < size / 1024, `few, large fills (${sink.fills})`);
      // The connection was not handed back to the pool mid-state: the next request works.
      const again = await fetchOf(`${base}/blob`);
      assert.equal(
        createHash('sha256')
          .update(Buffer.from(await again.arrayBuffer()))
          .digest('hex'),
        digest,
      );
    });
  }

  it('rejects when the connection closes before Content-Length bytes', async () => {
    const res = await endpointFetch({ insecure: false, caBundle: null })(`${plainBase}/short`);
    const sink = new RingSink(4, 1024 * 1024);
    const freeing = setInterval(() => sink.free(), 2);
    try {
      await assert.rejects(bodyReader(nodeBody(res)!)!(sink), /the upstream connection closed after \d+ of \d+ body bytes|ECONNRESET/);
    } finally {
      clearInterval(freeing);
    }
    assert.ok(sink.received < size, `got ${sink.received} of ${size}`);
  });

  it('rejects with the reason when the body is destroyed meanwhile (an idle timeout), and when the sink throws', async () => {
    const fetchOf = endpointFetch({ insecure: false, caBundle: null });
    const body = nodeBody(await fetchOf(`${plainBase}/blob`))!;
    // Never freed: the read waits for room until the body is destroyed.
    const stuck = new RingSink(1, 64 * 1024);
    const reading = bodyReader(body)!(stuck);
    setTimeout(() => body.destroy(new Error('the upstream sent no bytes for 10 ms')), 50);
    await assert.rejects(reading, /no bytes for 10 ms/);
    assert.equal(stuck.received, 64 * 1024);

    const failing = new RingSink(4, 1024 * 1024);
    failing.failAt = 2 * 1024 * 1024;
    const freeing = setInterval(() => failing.free(), 2);
    try {
      await assert.rejects(bodyReader(nodeBody(await fetchOf(`${plainBase}/blob`))!)!(failing), /the sink failed/);
    } finally {
      clearInterval(freeing);
    }
    assert.ok(failing.received <= 2 * 1024 * 1024);
  });
});
