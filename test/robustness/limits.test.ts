import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryClient, errorCode, makeBlob, makeImage } from '../helpers/registry-client.js';
import { startBerthProcess, startTestServer, tempDir } from '../helpers/server.js';
import { useServer } from '../helpers/use-server.js';
import { streamBody } from '../http/support.js';
import { stagingFile } from './support.js';

/**
 * Every configurable limit, exceeded on purpose: the client gets a clear spec error
 * (or, for slow clients, a closed connection) and the server keeps serving.
 */

/** Opens a raw TCP connection; resolves with what the server sent once it closes the socket. */
function rawConnection(url: string): { socket: net.Socket; closed: Promise<{ data: string; afterMs: number }> } {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  const started = Date.now();
  let data = '';
  socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<{ data: string; afterMs: number }>((resolve) =>
    socket.once('close', () => resolve({ data, afterMs: Date.now() - started })),
  );
  return { socket, closed };
}

/** Status line and JSON error code of a raw HTTP response. */
function parseRaw(data: string): { status: number; code: string | undefined } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1]);
  const body = data.slice(data.indexOf('\r\n\r\n') + 4);
  const code = /"code":"([A-Z_]+)"/.exec(body)?.[1];
  return { status, code };
}

/** A PATCH whose body is held open until `release()`, so it occupies an upload slot. */
function heldPatch(url: string, location: string, localAddress?: string): { release: () => void; response: Promise<number> } {
  const target = new URL(location, url);
  let release!: () => void;
  const response = new Promise<number>((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'PATCH',
        localAddress,
        agent: false,
        headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode!);
      },
    );
    req.on('error', reject);
    req.write(Buffer.alloc(1024, 1));
    release = () => req.end(Buffer.alloc(1024, 2));
  });
  return { release, response };
}

async function openUpload(client: RegistryClient, repo: string): Promise<string> {
  const res = await client.fetch(`/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(res.status, 202);
  return res.headers.get('location')!;
}

describe('limits: manifest and blob size', () => {
  const reg = useServer({ limits: { manifestsize: 2048, blobsize: 100_000 } });
  before(async () => {
    await reg.client.pushImage('limits/app', 'v1', makeImage({ layers: 1 }));
  });

  it('a manifest PUT declaring a huge Content-Length gets 413 before any body byte is sent, and the connection is closed', async () => {
    const { socket, closed } = rawConnection(reg.url);
    socket.write(
      'PUT /v2/limits/app/manifests/huge HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 10000000000\r\n\r\n',
    );
    const { data, afterMs } = await closed;
    assert.deepEqual(parseRaw(data), { status: 413, code: 'MANIFEST_INVALID' });
    assert.ok(afterMs < 5_000, `answered after ${afterMs} ms`);
    assert.match(data, /connection: close/i);
  });

  it('a chunked manifest body that grows past the limit is cut off with 413; tags stay as they were', async () => {
    const res = await reg.client.fetch('/v2/limits/app/manifests/big', {
      method: 'PUT',
      body: new Uint8Array(Buffer.alloc(3000, 0x20)),
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(res.status, 413);
    assert.equal(await errorCode(res), 'MANIFEST_INVALID');
    const tags = (await (await reg.client.fetch('/v2/limits/app/tags/list')).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, ['v1']);
  });

  it('a blob PATCH declaring more than limits.blobsize gets 413 SIZE_INVALID without reading, and the session keeps its size', async () => {
    const location = await openUpload(reg.client, 'limits/app');
    const { socket, closed } = rawConnection(reg.url);
    socket.write(
      `PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000000000\r\n\r\n`,
    );
    const { data } = await closed;
    assert.deepEqual(parseRaw(data), { status: 413, code: 'SIZE_INVALID' });
    const status = await reg.client.fetch(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-0');
  });

  it('a streamed (chunked) blob that grows past limits.blobsize is refused with 413 and never becomes visible', async () => {
    const blob = makeBlob(150_000);
    const res = await reg.client.fetch(`/v2/limits/app/blobs/uploads/?digest=${blob.digest}`, {
      method: 'POST',
      ...streamBody([blob.data]),
    } as RequestInit);
    assert.equal(res.status, 413);
    assert.equal(await errorCode(res), 'SIZE_INVALID');
    assert.equal((await reg.client.fetch(`/v2/limits/app/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);
  });

  it('a blob at exactly limits.blobsize is accepted', async () => {
    const blob = makeBlob(100_000);
    assert.equal((await reg.client.pushBlob('limits/app', blob)).status, 201);
  });
});

describe('limits: a rejected body never takes the process down', () => {
  it('oversized bodies arriving before the store is ready get 413 and `berth serve` keeps running', async () => {
    // Regression: the size-limit error used to fire before the store subscribed to the stream,
    // an unhandled 'error' event that killed the whole process (src/core/uploads.ts pipeAbortable).
    const dataDir = tempDir('berth-limits-');
    const server = await startBerthProcess({ BERTH_DATA_DIR: dataDir, BERTH_LIMITS_BLOBSIZE: '100000' });
    try {
      const client = new RegistryClient(server.url);
      for (let i = 0; i < 5; i++) {
        const blob = makeBlob(150_000);
        const streamed = await client.fetch(`/v2/limits/crash/blobs/uploads/?digest=${blob.digest}`, {
          method: 'POST',
          ...streamBody([blob.data]),
        } as RequestInit);
        assert.equal(streamed.status, 413, await streamed.text());
        const whole = await client.pushBlob('limits/crash', blob);
        assert.equal(whole.status, 413, await whole.text());
      }
      assert.equal(server.child.exitCode, null, `berth exited:\n${server.output().slice(-2000)}`);
      assert.equal((await client.pushBlob('limits/crash', makeBlob(1000))).status, 201);
    } finally {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('limits: concurrent uploads', () => {
  it('limits.uploads: the transfer past the global limit gets 429 TOOMANYREQUESTS; slots free up afterwards', async () => {
    const server = await startTestServer({ limits: { uploads: 2, uploadsperclient: 0 } });
    try {
      const client = new RegistryClient(server.url);
      const held = [
        heldPatch(server.url, await openUpload(client, 'limits/a')),
        heldPatch(server.url, await openUpload(client, 'limits/b')),
      ];
      await sleep(300);
      const third = await client.fetch(await openUpload(client, 'limits/c'), { method: 'PATCH', body: new Uint8Array(10) });
      assert.equal(third.status, 429);
      assert.equal(await errorCode(third), 'TOOMANYREQUESTS');
      held.forEach((h) => h.release());
      assert.deepEqual(await Promise.all(held.map((h) => h.response)), [202, 202]);
      assert.equal((await client.pushBlob('limits/c', makeBlob(100))).status, 201);
    } finally {
      await server.destroy();
    }
  });

  it('limits.uploadsperclient: one address past its limit gets 429 while another address still uploads', async () => {
    const server = await startTestServer({ limits: { uploads: 1000, uploadsperclient: 2 } });
    try {
      const client = new RegistryClient(server.url);
      const held = [
        heldPatch(server.url, await openUpload(client, 'limits/a')),
        heldPatch(server.url, await openUpload(client, 'limits/b')),
      ];
      await sleep(300);
      const third = await client.fetch(await openUpload(client, 'limits/c'), { method: 'PATCH', body: new Uint8Array(10) });
      assert.equal(third.status, 429);
      const body = (await third.json()) as { errors: { code: string; message: string }[] };
      assert.equal(body.errors[0]!.code, 'TOOMANYREQUESTS');
      assert.match(body.errors[0]!.message, /this client/);
      // 127.0.0.2 is another client as far as the server can tell (Linux routes all of 127/8 to lo).
      const other = heldPatch(server.url, await openUpload(client, 'limits/d'), '127.0.0.2');
      other.release();
      assert.equal(await other.response, 202);
      held.forEach((h) => h.release());
      assert.deepEqual(await Promise.all(held.map((h) => h.response)), [202, 202]);
      // Slots were returned when those requests finished.
      assert.equal((await client.pushBlob('limits/c', makeBlob(100))).status, 201);
    } finally {
      await server.destroy();
    }
  });
});

describe('limits: slow and stalled clients', () => {
  const reg = useServer({ http: { headerstimeout: '2s', idletimeout: '2s' } });

  it('slowloris: headers sent one byte per second are cut off after http.headerstimeout', async () => {
    const { socket, closed } = rawConnection(reg.url);
    socket.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n');
    const trickle = setInterval(() => socket.writable && socket.write('X'), 1000);
    try {
      const { afterMs } = await Promise.race([closed, sleep(15_000).then(() => ({ afterMs: Infinity }))]);
      assert.ok(afterMs >= 1_500 && afterMs < 6_000, `connection closed after ${afterMs} ms (headerstimeout 2s)`);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
    // Other clients were served all along.
    assert.equal((await fetch(`${reg.url}/v2/`)).status, 200);
  });

  it('a client that stalls mid-body is disconnected after http.idletimeout, and the upload resumes from its last Range', async () => {
    const client = new RegistryClient(reg.url);
    const blob = makeBlob(200_000);
    const location = await openUpload(client, 'limits/stall');
    const first = await client.fetch(location, {
      method: 'PATCH',
      body: new Uint8Array(blob.data.subarray(0, 50_000)),
      headers: { 'content-range': '0-49999', 'content-type': 'application/octet-stream' },
    });
    assert.equal(first.status, 202);

    const { socket, closed } = rawConnection(reg.url);
    socket.write(
      `PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Range: 50000-199999\r\nContent-Length: 150000\r\n\r\n`,
    );
    socket.write(blob.data.subarray(50_000, 100_000));
    const { afterMs } = await Promise.race([closed, sleep(15_000).then(() => ({ afterMs: Infinity, data: '' }))]);
    socket.destroy();
    assert.ok(afterMs >= 1_500 && afterMs < 8_000, `stalled connection closed after ${afterMs} ms (idletimeout 2s)`);

    const status = await client.fetch(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-49999', 'the stalled chunk was not recorded');
    const rest = await client.fetch(location, {
      method: 'PATCH',
      body: new Uint8Array(blob.data.subarray(50_000)),
      headers: { 'content-range': '50000-199999', 'content-type': 'application/octet-stream' },
    });
    assert.equal(rest.status, 202, await rest.text());
    const put = await client.fetch(`${location}?digest=${blob.digest}`, { method: 'PUT' });
    assert.equal(put.status, 201, await put.text());
  });
});

describe('limits: upload purging', () => {
  it('sessions idle longer than storage.maintenance.uploadpurging.age are purged with their staged bytes', async () => {
    const server = await startTestServer({ storage: { maintenance: { uploadpurging: { enabled: true, age: '1s', interval: '1s' } } } });
    try {
      const client = new RegistryClient(server.url);
      const start = await client.fetch('/v2/limits/purge/blobs/uploads/', { method: 'POST' });
      const location = start.headers.get('location')!;
      const id = start.headers.get('docker-upload-uuid')!;
      assert.equal((await client.fetch(location, { method: 'PATCH', body: new Uint8Array(1000) })).status, 202);
      assert.ok(existsSync(stagingFile(server.dataDir, id)));
      // The purge deletes the session row, then its staged bytes: wait for both.
      let status = 0;
      let staged = true;
      for (let i = 0; i < 20 && (status !== 404 || staged); i++) {
        await sleep(500);
        status = (await client.fetch(location)).status;
        staged = existsSync(stagingFile(server.dataDir, id));
      }
      assert.equal(status, 404, 'the idle session was purged');
      assert.equal(staged, false, 'its staging file too');
    } finally {
      await server.destroy();
    }
  });
});
