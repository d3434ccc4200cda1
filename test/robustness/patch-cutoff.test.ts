import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { makeBlob, sha256, type Blob } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Issue 12: a PATCH cut off mid-body — the client half-closes, or resets the connection, or
 * sends more than its Content-Length — leaves the session immediately resumable from its last
 * durable offset. Everything over raw sockets, with no pause between the cut and the resume:
 * the GET right after answers 204 with the durable Range, a PATCH from there answers 202 (not
 * 400 "another request is writing" or BLOB_UPLOAD_INVALID), and the PUT answers 201 with a
 * blob whose digest verifies.
 */

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function parse(raw: string): RawResponse {
  const [head = '', ...rest] = raw.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

/** One request on a fresh connection; resolves with the first response (the connection is then closed). */
function request(port: number, head: string, body: Buffer = Buffer.alloc(0)): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let raw = '';
    socket.on('data', (d: Buffer) => {
      raw += d.toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return;
      const response = parse(raw);
      const length = Number(response.headers['content-length'] ?? 0);
      if (raw.length - end - 4 >= length) {
        socket.destroy();
        resolve(parse(raw));
      }
    });
    socket.on('error', reject);
    socket.write(head);
    // Not end(): Node's server drops a connection the client half-closes before it answered.
    socket.write(body);
  });
}

type Cut = 'half-close' | 'reset' | 'longer';

/**
 * A PATCH of `chunk` at `offset` that never completes as declared: the socket sends only
 * `sent` bytes and half-closes or resets, or (longer) sends the chunk plus junk past its
 * Content-Length. Resolves once the client side is done with the socket.
 */
function cutPatch(port: number, location: string, chunk: Buffer, offset: number, sent: number, cut: Cut): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
    socket.on('data', () => {});
    const head =
      `PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n` +
      `Content-Range: ${offset}-${offset + chunk.length - 1}\r\nContent-Length: ${chunk.length}\r\n\r\n`;
    socket.write(head);
    if (cut === 'longer') {
      socket.end(Buffer.concat([chunk, Buffer.from('GARBAGE-PAST-CONTENT-LENGTH\r\n\r\n')]));
      return;
    }
    socket.write(chunk.subarray(0, sent), () => {
      if (cut === 'half-close') socket.end();
      else socket.resetAndDestroy();
    });
  });
}

async function status(port: number, location: string): Promise<RawResponse> {
  return request(port, `GET ${location} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
}

async function patch(port: number, location: string, chunk: Buffer, offset: number): Promise<RawResponse> {
  return request(
    port,
    `PATCH ${location} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/octet-stream\r\n` +
      `Content-Range: ${offset}-${offset + chunk.length - 1}\r\nContent-Length: ${chunk.length}\r\n\r\n`,
    chunk,
  );
}

function durableOffset(res: RawResponse): number {
  assert.equal(res.status, 204, `GET right after the cut: ${res.status} ${res.body}`);
  const m = /^0-(\d+)$/.exec(res.headers.range ?? '');
  assert.ok(m, `Range ${res.headers.range}`);
  return Number(m[1]) + 1;
}

describe('a PATCH cut off mid-body leaves the session immediately resumable (raw sockets)', () => {
  let server: TestServer;
  let port: number;
  before(async () => {
    server = await startTestServer();
    port = Number(new URL(server.url).port);
  });
  after(async () => server?.destroy());

  const cases: { cut: Cut; what: string }[] = [
    { cut: 'half-close', what: 'the client half-closes after part of the body (shorter than Content-Length)' },
    { cut: 'reset', what: 'the client resets the connection after part of the body' },
    { cut: 'longer', what: 'the client sends more than Content-Length' },
  ];
  for (const { cut, what } of cases) {
    it(`${what}: GET 204 with the durable Range at once, PATCH from there 202, PUT 201, digest verifies`, async () => {
      const repo = `cut/${cut}`;
      const blob: Blob = makeBlob(3 * 1024 * 1024 + 333);
      const start = await request(
        port,
        `POST /v2/${repo}/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(start.status, 202);
      const location = start.headers.location!;
      const first = 1024 * 1024;
      assert.equal((await patch(port, location, blob.data.subarray(0, first), 0)).status, 202);

      // The second chunk is cut: 700 000 of its 1 MiB sent (or all of it plus junk).
      const chunk = blob.data.subarray(first, 2 * first);
      await cutPatch(port, location, chunk, first, 700_000, cut);

      const offset = durableOffset(await status(port, location));
      // Durable means: what an earlier 202 acknowledged, and never a byte the server did not get whole.
      assert.ok(offset === first || (cut === 'longer' && offset === 2 * first), `durable offset ${offset}`);

      const resumed = await patch(port, location, blob.data.subarray(offset), offset);
      assert.equal(resumed.status, 202, `PATCH right after the cut: ${resumed.status} ${resumed.body}`);
      assert.equal(resumed.headers.range, `0-${blob.size - 1}`);
      const put = await request(
        port,
        `PUT ${location}?digest=${blob.digest} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(put.status, 201, put.body);
      const pulled = await fetch(`${server.url}/v2/${repo}/blobs/${blob.digest}`);
      assert.equal(sha256(Buffer.from(await pulled.arrayBuffer())), blob.digest);
    });
  }

  it('a PATCH that is still being sent keeps the session to itself: a second writer is refused, the first completes', async () => {
    const repo = 'cut/live';
    const blob = makeBlob(2 * 1024 * 1024);
    const start = await request(
      port,
      `POST /v2/${repo}/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    );
    const location = start.headers.location!;
    const socket = net.connect(port, '127.0.0.1');
    let raw = '';
    const closed = new Promise<void>((resolve) => {
      socket.on('data', (d: Buffer) => {
        raw += d.toString('latin1');
        if (raw.includes('\r\n\r\n')) resolve();
      });
      socket.on('close', () => resolve());
    });
    socket.write(
      `PATCH ${location} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Range: 0-${blob.size - 1}\r\nContent-Length: ${blob.size}\r\n\r\n`,
    );
    socket.write(blob.data.subarray(0, 1000));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await patch(port, location, blob.data.subarray(0, 10), 0);
    assert.equal(second.status, 400, second.body);
    assert.match(second.body, /another request is writing/);
    socket.write(blob.data.subarray(1000));
    await closed;
    socket.destroy();
    assert.equal(parse(raw).status, 202, raw);
  });
});
