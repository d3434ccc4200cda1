import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http, { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { nodeBody } from '../../src/client/index.js';
import { endpointFetch } from '../../src/registries/index.js';

/**
 * The endpoint fetch's Node body of a Content-Length response is read from the socket past the
 * HTTP parser (rawBody): the bytes are exactly the body's, a slow reader holds the socket back
 * instead of buffering, a connection cut short fails the body, and the endpoint's next
 * requests still work (the read connection is not reused).
 */
describe('endpoint fetch: raw Content-Length bodies', () => {
  const size = 24 * 1024 * 1024 + 12345;
  const data = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  let server: http.Server;
  let base: string;
  const fetchOf = endpointFetch({ insecure: false, caBundle: null });

  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/short') {
        // Announces the whole blob, sends half, then closes the connection.
        res.writeHead(200, { 'content-length': String(size) });
        res.write(data.subarray(0, size >> 1), () => res.socket?.destroy());
        return;
      }
      if (req.url === '/chunked') {
        res.writeHead(200);
        res.write(data.subarray(0, 1000));
        res.end(data.subarray(1000, 3000));
        return;
      }
      res.writeHead(200, { 'content-length': String(size) });
      res.end(data);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('hands out exactly the body bytes, past the parser, and a slow reader pauses the socket', async () => {
    const res = await fetchOf(`${base}/blob`);
    const body = nodeBody(res)!;
    assert.ok(!(body instanceof IncomingMessage), 'the raw socket chunks');
    const hash = createHash('sha256');
    let bytes = 0;
    let maxBuffered = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      maxBuffered = Math.max(maxBuffered, body.readableLength);
      // A slow consumer: the socket must wait for it rather than fill memory.
      if (bytes < 4 * 1024 * 1024) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.equal(bytes, size);
    assert.equal(hash.digest('hex'), createHash('sha256').update(data).digest('hex'));
    assert.ok(maxBuffered <= 2 * 1024 * 1024, `buffered at most ~1 MiB ahead of the reader (saw ${maxBuffered})`);
    // The endpoint still works afterwards (a fresh connection).
    const again = await fetchOf(`${base}/blob`);
    assert.equal(Buffer.from(await again.arrayBuffer()).equals(data), true);
  });

  it('fails the body when the connection closes before Content-Length bytes', async () => {
    const res = await fetchOf(`${base}/short`);
    const body = nodeBody(res)!;
    let bytes = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of body as AsyncIterable<Buffer>) bytes += chunk.length;
      })(),
      /closed after \d+ of \d+ body bytes|aborted|ECONNRESET/,
    );
    assert.ok(bytes < size, `got ${bytes} of ${size}`);
  });

  it('leaves a chunked body to the parser', async () => {
    const res = await fetchOf(`${base}/chunked`);
    const body = nodeBody(res)!;
    assert.ok(body instanceof IncomingMessage);
    const chunks: Buffer[] = [];
    for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
    assert.ok(Buffer.concat(chunks).equals(data.subarray(0, 3000)));
  });
});
