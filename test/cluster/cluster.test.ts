import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { runBerth } from '../helpers/cli.js';
import { databaseForDeployment } from '../helpers/postgres.js';
import { promtoolCheckMetrics, sample } from '../metrics/support.js';

/**
 * Issue 19, "every core": `berth serve --workers 2` as users run it (a real child process: the
 * primary and two node:cluster workers sharing the port), on SQLite and on PostgreSQL. Each
 * request below opens its own connection (the primary hands connections, not requests, to the
 * workers in turn), and the `Berth-Worker` header says which worker answered.
 */

const ADMIN_PASSWORD = 'cluster-admin-secret';
const BASIC = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;

interface Answer {
  status: number;
  worker: string | undefined;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request on a connection of its own. */
function request(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer,
  timeoutMs = 60_000,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL(path, url),
      {
        method,
        agent: false,
        timeout: timeoutMs,
        headers: { connection: 'close', ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            worker: res.headers['berth-worker'] as string | undefined,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.end(body);
  });
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Worker pids as the workers logged them ("worker is listening"), latest first per worker. */
function workerPids(server: BerthProcess): Map<number, number> {
  const pids = new Map<number, number>();
  for (const line of server.logOutput().split('\n')) {
    if (!line.includes('worker is listening')) continue;
    const { worker, pid } = JSON.parse(line) as { worker: number; pid: number };
    pids.set(worker, pid);
  }
  return pids;
}

for (const metadata of ['sqlite', 'postgres'] as const) {
  describe(`berth serve --workers 2 (${metadata} metadata)`, () => {
    let server: BerthProcess;
    let dataDir: string;

    before(async () => {
      dataDir = tempDir('berth-cluster-');
      const metadataEnv =
        metadata === 'postgres'
          ? { BERTH_METADATA_DRIVER: 'postgres', BERTH_METADATA_URL: (await databaseForDeployment(dataDir)).url }
          : { BERTH_METADATA_DRIVER: 'sqlite' };
      server = await startBerthProcess(
        {
          BERTH_DATA_DIR: dataDir,
          ...metadataEnv,
          BERTH_AUTH_MODE: 'basic',
          BERTH_ADMIN_PASSWORD: ADMIN_PASSWORD,
          BERTH_HTTP_TRUSTPROXY: 'true',
          BERTH_AUTH_RATELIMIT_FAILURES: '3',
          BERTH_AUTH_RATELIMIT_BACKOFF: '1m',
          BERTH_AUTH_RATELIMIT_WINDOW: '5m',
        },
        [],
        ['--workers', '2'],
      );
    });
    after(async () => {
      await server?.stop();
    });

    it('answers on both workers: new connections go to each in turn', async () => {
      const workers = new Set<string | undefined>();
      for (let i = 0; i < 8; i++) {
        const res = await request(server.url, 'GET', '/v2/', { authorization: BASIC });
        assert.equal(res.status, 200);
        workers.add(res.worker);
      }
      assert.deepEqual([...workers].sort(), ['0', '1']);
    });

    it('a chunked upload whose PATCHes land on different workers completes, byte-identical', async () => {
      const chunks = Array.from({ length: 6 }, () => randomBytes(256 * 1024 + 17));
      const blob = Buffer.concat(chunks);
      const start = await request(server.url, 'POST', '/v2/team/chunked/blobs/uploads/', { authorization: BASIC });
      assert.equal(start.status, 202);
      let location = start.headers.location!;
      const served = new Set<string | undefined>();
      let offset = 0;
      for (const chunk of chunks) {
        const res = await request(
          server.url,
          'PATCH',
          location,
          { authorization: BASIC, 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
          chunk,
        );
        assert.equal(res.status, 202, res.body.toString());
        served.add(res.worker);
        offset += chunk.length;
        location = res.headers.location!;
        assert.equal(res.headers.range, `0-${offset - 1}`);
      }
      assert.deepEqual([...served].sort(), ['0', '1'], 'the chunks were appended by both workers');
      const digest = sha256(blob);
      const put = await request(server.url, 'PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, {
        authorization: BASIC,
      });
      assert.equal(put.status, 201, put.body.toString());
      for (let i = 0; i < 2; i++) {
        const got = await request(server.url, 'GET', `/v2/team/chunked/blobs/${digest}`, { authorization: BASIC });
        assert.equal(got.status, 200);
        assert.equal(sha256(got.body), digest);
      }
    });

    it('a second writer on another worker while a PATCH is still being sent gets 400 BLOB_UPLOAD_INVALID; the first completes', async () => {
      const blob = randomBytes(2 * 1024 * 1024);
      const start = await request(server.url, 'POST', '/v2/team/writers/blobs/uploads/', { authorization: BASIC });
      const location = start.headers.location!;
      const port = Number(new URL(server.url).port);
      const socket = net.connect(port, '127.0.0.1');
      let raw = '';
      const answered = new Promise<void>((resolve) => {
        socket.on('data', (d: Buffer) => {
          raw += d.toString('latin1');
          if (raw.includes('\r\n\r\n')) resolve();
        });
        socket.on('close', () => resolve());
      });
      socket.write(
        `PATCH ${location} HTTP/1.1\r\nHost: x\r\nAuthorization: ${BASIC}\r\nConnection: close\r\nContent-Range: 0-${blob.length - 1}\r\nContent-Length: ${blob.length}\r\n\r\n`,
      );
      socket.write(blob.subarray(0, 1000));
      await sleep(300);
      // Whichever worker the first PATCH went to, one of the next connections lands on the other.
      const refusals: Answer[] = [];
      for (let i = 0; i < 4; i++) {
        const second = await request(server.url, 'PATCH', location, { authorization: BASIC, 'content-range': '0-9' }, blob.subarray(0, 10));
        assert.equal(second.status, 400, second.body.toString());
        assert.equal((JSON.parse(second.body.toString()) as { errors: { code: string }[] }).errors[0]!.code, 'BLOB_UPLOAD_INVALID');
        assert.match(second.body.toString(), /another request is writing/);
        refusals.push(second);
      }
      assert.deepEqual(
        [...new Set(refusals.map((r) => r.worker))].sort(),
        ['0', '1'],
        'refused by both workers, the one writing and the other',
      );
      socket.write(blob.subarray(1000));
      await answered;
      socket.destroy();
      assert.match(raw, /^HTTP\/1\.1 202/, raw);
      const digest = sha256(blob);
      const put = await request(server.url, 'PUT', `${location}?digest=${digest}`, { authorization: BASIC });
      assert.equal(put.status, 201, put.body.toString());
      const got = await request(server.url, 'GET', `/v2/team/writers/blobs/${digest}`, { authorization: BASIC });
      assert.equal(sha256(got.body), digest);
    });

    it('parallel pushes through both workers all succeed (no SQLITE_BUSY: WAL + busy_timeout, BEGIN IMMEDIATE)', async () => {
      const blobs = Array.from({ length: 24 }, () => randomBytes(64 * 1024));
      const results = await Promise.all(
        blobs.map((blob, i) =>
          request(
            server.url,
            'POST',
            `/v2/team/parallel${i % 3}/blobs/uploads/?digest=${sha256(blob)}`,
            { authorization: BASIC, 'content-type': 'application/octet-stream' },
            blob,
          ),
        ),
      );
      assert.deepEqual(
        results.map((r) => r.status),
        Array(blobs.length).fill(201),
        results.map((r) => r.body.toString()).join('\n'),
      );
      assert.deepEqual([...new Set(results.map((r) => r.worker))].sort(), ['0', '1']);
    });

    it('the failed-login throttle counts failures on every worker together', async () => {
      const from = { 'x-forwarded-for': '203.0.113.9' };
      const wrong = `Basic ${Buffer.from('admin:wrong-password').toString('base64')}`;
      const failedOn = new Set<string | undefined>();
      for (let i = 0; i < 3; i++) {
        const res = await request(server.url, 'GET', '/v2/', { ...from, authorization: wrong });
        assert.equal(res.status, 401);
        failedOn.add(res.worker);
      }
      assert.deepEqual([...failedOn].sort(), ['0', '1'], 'the failures were spread over both workers');
      // Each worker saw fewer than 3 failures itself: only counting together blocks the next try on both.
      const blockedOn = new Set<string | undefined>();
      for (let i = 0; i < 4; i++) {
        const res = await request(server.url, 'GET', '/v2/', { ...from, authorization: BASIC });
        assert.equal(res.status, 429, `worker ${res.worker}: ${res.body.toString()}`);
        blockedOn.add(res.worker);
      }
      assert.deepEqual([...blockedOn].sort(), ['0', '1']);
      assert.equal(
        (await request(server.url, 'GET', '/v2/', { 'x-forwarded-for': '198.51.100.3', authorization: BASIC })).status,
        200,
        'another address is not blocked',
      );
    });

    it('/metrics is the sum over both workers (counters), passes promtool, and shows shared gauges once', async () => {
      const count = (text: string) => sample(text, 'berth_http_requests_total', { route: '/v2/', method: 'GET', code: '200' }) ?? 0;
      const scrape = async () => {
        const res = await request(server.url, 'GET', '/metrics', { authorization: BASIC });
        assert.equal(res.status, 200, res.body.toString());
        return res.body.toString();
      };
      const before = count(await scrape());
      const workers = new Set<string | undefined>();
      for (let i = 0; i < 10; i++) workers.add((await request(server.url, 'GET', '/v2/', { authorization: BASIC })).worker);
      assert.deepEqual([...workers].sort(), ['0', '1']);
      const text = await scrape();
      assert.equal(count(text) - before, 10, 'all ten requests counted, whichever worker served them');
      promtoolCheckMetrics(text);
      assert.equal(sample(text, 'berth_ready'), 1, 'a shared gauge is not doubled');
      const blobs = sample(text, 'berth_storage_blobs');
      assert.ok(
        blobs !== undefined && blobs >= 2 + 24 && blobs <= 3 + 24,
        `berth_storage_blobs ${blobs}: the blobs pushed above, counted once`,
      );
    });

    it('a killed worker is restarted (logged), and the server keeps answering meanwhile', async () => {
      const pids = workerPids(server);
      const victim = pids.get(1)!;
      assert.ok(victim > 0, server.logOutput());
      process.kill(victim, 'SIGKILL');
      // Requests meanwhile are answered (by worker 0 until worker 1 is back). The one connection
      // the primary may have been handing to worker 1 as it died is lost with it (node:cluster
      // keeps it and never answers): that request, and only that one, may fail.
      const deadline = Date.now() + 90_000;
      const failures: string[] = [];
      let answered = 0;
      for (;;) {
        try {
          const res = await request(server.url, 'GET', '/v2/', { authorization: BASIC }, undefined, 5_000);
          assert.equal(res.status, 200);
          answered++;
          if (res.worker === '1' && workerPids(server).get(1) !== victim) break;
        } catch (err) {
          if (err instanceof assert.AssertionError) throw err;
          failures.push((err as Error).message);
        }
        assert.ok(Date.now() < deadline, `worker 1 was not restarted:\n${server.logOutput().slice(-3000)}`);
        await sleep(100);
      }
      assert.ok(failures.length <= 1, `${failures.length} requests failed (${answered} answered): ${failures.join('; ')}`);
      assert.match(
        server.logOutput(),
        /"worker":1,"pid":\d+,"code":null,"signal":"SIGKILL","restartInMs":\d+,"msg":"worker exited; restarting it"/,
      );
      assert.match(server.logOutput(), /"msg":"worker restarted"/);
    });

    it('SIGTERM to the primary: an upload in flight is finished, then every worker and the primary exit 0', async () => {
      const blob = randomBytes(1024 * 1024);
      const start = await request(server.url, 'POST', '/v2/team/draining/blobs/uploads/', { authorization: BASIC });
      const location = start.headers.location!;
      const digest = sha256(blob);
      const port = Number(new URL(server.url).port);
      const socket = net.connect(port, '127.0.0.1');
      let raw = '';
      const answered = new Promise<void>((resolve) => {
        socket.on('data', (d: Buffer) => (raw += d.toString('latin1')));
        socket.on('close', () => resolve());
      });
      socket.write(
        `PUT ${location}?digest=${digest} HTTP/1.1\r\nHost: x\r\nAuthorization: ${BASIC}\r\nConnection: close\r\nContent-Length: ${blob.length}\r\n\r\n`,
      );
      socket.write(blob.subarray(0, 4096));
      await sleep(300);
      const exited = new Promise<number | null>((resolve) => server.child.once('exit', (code) => resolve(code)));
      server.child.kill('SIGTERM');
      await sleep(500);
      // The server no longer takes new connections' requests, but this one goes on to the end.
      socket.write(blob.subarray(4096));
      await answered;
      assert.match(raw, /^HTTP\/1\.1 201/, raw);
      assert.equal(await exited, 0, server.output().slice(-3000));
      assert.match(server.logOutput(), /"msg":"every worker has stopped"/);
    });
  });
}

describe('the number of workers: refused when it is not one', () => {
  it('--workers 0 and server.workers "many" are refused before anything starts, naming the setting', async () => {
    const dataDir = tempDir('berth-cluster-bad-');
    const flag = await runBerth(['serve', '--workers', '0'], { BERTH_DATA_DIR: dataDir, BERTH_HTTP_ADDR: '127.0.0.1:0' });
    assert.notEqual(flag.code, 0);
    assert.match(flag.stderr, /--workers.*expected a number of workers from 1 to 256, or auto/);
    const config = await runBerth(['config', 'check'], { BERTH_DATA_DIR: dataDir, BERTH_SERVER_WORKERS: 'many' });
    assert.equal(config.code, 2);
    assert.match(config.stderr, /server\.workers/);
    const auto = await runBerth(['config', 'check'], { BERTH_DATA_DIR: dataDir });
    assert.match(auto.stdout, /"workers": "auto"/);
  });
});
