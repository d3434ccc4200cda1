import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryClient } from '../helpers/registry-client.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';

/** The per-request log lines of a real `berth serve`, including requests the client abandons. */
describe('request log', () => {
  let berth: BerthProcess;
  let dataDir: string;
  before(async () => {
    dataDir = tempDir('berth-reqlog-');
    berth = await startBerthProcess({ BERTH_DATA_DIR: dataDir });
  });
  after(async () => {
    await berth.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function logLines(): Record<string, unknown>[] {
    return berth
      .output()
      .split('\n')
      .filter((line) => line.includes('"msg":"request"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it('logs one line per answered request with method, url, status and duration', async () => {
    const client = new RegistryClient(berth.url);
    assert.equal((await client.fetch('/v2/', { headers: { 'x-request-id': 'probe-123' } })).status, 200);
    await sleep(100);
    const line = logLines().find((l) => l.reqId === 'probe-123');
    assert.ok(line, 'a log line carries the client-supplied request id');
    assert.equal(line.method, 'GET');
    assert.equal(line.url, '/v2/');
    assert.equal(line.status, 200);
    assert.equal(typeof line.ms, 'number');
  });

  it('logs a PATCH the client abandons mid-body as status "aborted", and the upload stays resumable', async () => {
    const client = new RegistryClient(berth.url);
    const started = await client.fetch('/v2/reqlog/app/blobs/uploads/', { method: 'POST' });
    assert.equal(started.status, 202);
    const location = started.headers.get('location')!;
    const { port } = new URL(berth.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(
      `PATCH ${location} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n`,
    );
    socket.write(Buffer.alloc(10, 'x'));
    await sleep(200);
    socket.destroy();

    let aborted: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && !aborted; i++) {
      aborted = logLines().find((l) => l.status === 'aborted' && l.url === location);
      if (!aborted) await sleep(100);
    }
    assert.ok(aborted, `an "aborted" line for PATCH ${location} was logged`);
    assert.equal(aborted.method, 'PATCH');

    // Whatever the abandoned request managed to stage, the session answers its status.
    let status: Response | undefined;
    for (let i = 0; i < 20; i++) {
      status = await client.fetch(location);
      if (status.status === 204) break;
      await sleep(100); // the session stays locked for a few ms after the disconnect
    }
    assert.equal(status!.status, 204);
    assert.match(status!.headers.get('range') ?? '', /^0-\d+$/);
  });
});
