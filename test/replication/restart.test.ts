import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it, type TestContext } from 'node:test';
import { OciClient } from '../../src/client/index.js';
import type { Execution, Task } from '../../src/replication/ports.js';
import { api, basic } from '../auth/support.js';
import { freePort } from '../helpers/nginx.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { FAST_RETRY, pushGeneratedImage, RecordingFront, requireFreeSpace, type GeneratedImage } from './support.js';

/**
 * kill -9 in the middle of a 1 GiB layer, on either side of a replication, with `berth serve`
 * processes (on the metadata back end under test): the execution completes after the restart
 * and the blob is not started over. Asserted on the bytes that crossed the wire, counted by a
 * front between the two registries (RecordingFront), and printed:
 *
 * (a) pull, the Berth running the execution killed: the restarted process continues the
 *     orphaned `running` execution (after the job's lease expires), its upload from the
 *     checkpoint in the metadata DB and the download from there with Range;
 * (b) push, the destination Berth killed and restarted on its port: the running execution
 *     retries with backoff, asks the destination where the upload session stands (GET → 204,
 *     `Range: 0-<N-1>`) and continues with PATCH from N;
 * (c) push, the source Berth (running the execution) killed: as (a), from the other side.
 *
 * One source Berth holds the layer for all three (generated and pushed once, streamed: never
 * held in memory).
 *
 * The layer is 1 GiB (the size) in the default pass. The PostgreSQL (or MySQL) pass
 * of npm test runs the same three cases over a 256 MiB layer: the metadata back end holds only
 * the checkpoints, the executions and the job lease, which that size exercises the same way,
 * and 1 GiB more three times over would cost the suite another ~2 minutes.
 */
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const SIZE = process.env.BERTH_TEST_METADATA ? 256 * MiB : GiB;
/** Kill once this much crossed the wire: the copy is about a third done. */
const KILL_AT = (SIZE / 16) * 5;
/** The replication PATCH size (config default): a kill loses at most the chunk in flight. */
const CHUNK = 8 * MiB;
/** Bytes in flight besides the chunk (socket buffers, the stream's read-ahead). */
const SLACK = 16 * MiB;
/**
 * Most bytes that may cross the wire for the layer: the layer, plus what was in flight at the
 * kill and is read again (the chunk being sent, the one being filled, socket and stream
 * buffers: 0-42 MiB seen on a loaded machine). Starting the blob over would cost at least
 * KILL_AT more, so this tells a resumed copy from a restarted one with room for slow machines.
 */
const MAX_WIRE = SIZE + KILL_AT / 2;
/** The least a resumed upload must have kept: half of what crossed before the kill (whole chunks held by the destination). */
const MIN_RESUMED = KILL_AT / 2;
const PASSWORD = 'restart-admin-1';
const admin = basic('admin', PASSWORD);
const env = {
  BERTH_AUTH_MODE: 'basic',
  BERTH_ADMIN_PASSWORD: PASSWORD,
  BERTH_REPLICATION_INTERVAL: '200ms',
  BERTH_REPLICATION_CHUNKSIZE: String(CHUNK),
  // Per blob 10 tries, 200 ms doubling (≥ 40 s in all): longer than a restart of the destination takes.
  BERTH_REPLICATION_ATTEMPTS: '10',
  BERTH_REPLICATION_BACKOFF: '200ms',
  // The killed runner's lease blocks its restart this long (60 s by default).
  BERTH_REPLICATION_LEASETTL: '6s',
};

interface Node {
  process: BerthProcess;
  dataDir: string;
  port: number;
}

async function start(dataDir: string, port: number): Promise<Node> {
  const child = await startBerthProcess({ ...env, BERTH_DATA_DIR: dataDir, BERTH_HTTP_ADDR: `127.0.0.1:${port}` });
  return { process: child, dataDir, port };
}

/** An admin API call; `T` is what the caller expects on success (an error body otherwise). */
async function call<T = { id: number }>(
  server: { url: string },
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await api(server, method, path, admin, body);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

async function until(what: () => boolean, timeoutMs: number, message: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!what()) {
    assert.ok(Date.now() < deadline, message());
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits for an execution to end (generous: CI runs two files at once on two cores). */
async function finished(server: { url: string }, id: number, timeoutMs = 300_000): Promise<Execution> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await call<Execution>(server, 'GET', `/replication/executions/${id}`);
    if (res.status === 200 && !['pending', 'running', 'stopping'].includes(res.body.status)) return res.body;
    assert.ok(Date.now() < deadline, `execution ${id} still ${res.body?.status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Seconds since `from`, for the phases printed. */
function since(from: number): string {
  return `${((Date.now() - from) / 1000).toFixed(1)} s`;
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

describe(`replication survives kill -9 of either side in the middle of a ${SIZE / MiB} MiB layer`, () => {
  let source: Node;
  let image: GeneratedImage;
  const nodes: Node[] = [];
  const fronts: RecordingFront[] = [];
  const dirs: string[] = [];
  const dir = (name: string) => {
    const d = tempDir(`berth-repl-${name}-`);
    dirs.push(d);
    return d;
  };
  const track = (node: Node) => (nodes.push(node), node);

  before(async () => {
    // The layer at the source, a copy at the (a) and (b)/(c) destinations, staging while they upload.
    requireFreeSpace(5 * SIZE);
    const t0 = Date.now();
    source = track(await start(dir('source'), await freePort()));
    const t1 = Date.now();
    const client = new OciClient({
      baseUrl: source.process.url,
      credentials: { username: 'admin', password: PASSWORD },
      retry: FAST_RETRY,
    });
    image = await pushGeneratedImage(client, 'big/app', 'v1', SIZE, 'replication-restart');
    console.log(`# source Berth started in ${((t1 - t0) / 1000).toFixed(1)} s, the ${SIZE / MiB} MiB image pushed in ${since(t1)}`);
  });
  after(async () => {
    await Promise.all(fronts.map((f) => f.close()));
    await Promise.all(nodes.map((n) => n.process.stop()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** The image arrived whole at `node` in `repo` (HEAD of the layer: its size; the manifest by digest). */
  async function arrived(node: Node, repo: string): Promise<void> {
    const client = new OciClient({ baseUrl: node.process.url, credentials: { username: 'admin', password: PASSWORD }, retry: FAST_RETRY });
    assert.equal((await client.headManifest(repo, 'v1'))?.digest, image.manifest.digest);
    assert.deepEqual(await client.headBlob(repo, image.layer.digest), { digest: image.layer.digest, size: SIZE });
  }

  it('(a) pull: the Berth running the execution killed; its restart completes the execution with Range, from the checkpoint', async (t: TestContext) => {
    const front = await RecordingFront.start(source.process.url);
    fronts.push(front);
    const dataDir = dir('pull');
    const port = await freePort();
    let puller = track(await start(dataDir, port));
    assert.equal(
      (
        await call(puller.process, 'POST', '/registries', {
          name: 'src',
          url: front.url,
          kind: 'berth',
          username: 'admin',
          credential: PASSWORD,
        })
      ).status,
      201,
    );
    const created = await call(puller.process, 'POST', '/replication/policies', {
      name: 'big-pull',
      direction: 'pull',
      registry: 'src',
      repositories: ['big/app'],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const queued = await call(puller.process, 'POST', '/replication/policies/big-pull/run');
    assert.equal(queued.status, 202);
    const runAt = Date.now();

    await until(
      () => front.bytesOut >= KILL_AT,
      300_000,
      () => `only ${front.bytesOut} bytes moved`,
    );
    const killAt = Date.now();
    await puller.process.kill();
    const atKill = front.bytesOut;
    assert.ok(atKill < SIZE, `killed mid-blob (${atKill} of ${SIZE} bytes read)`);

    puller = track(await start(dataDir, port));
    const upAt = Date.now();
    const afterKill = front.bytesOut;
    const execution = await finished(puller.process, queued.body.id);
    t.diagnostic(
      `(a) ${mib(KILL_AT)} in ${((killAt - runAt) / 1000).toFixed(1)} s, restart ${((upAt - killAt) / 1000).toFixed(1)} s, finished ${since(upAt)} later`,
    );
    assert.equal(execution.status, 'succeeded', JSON.stringify(execution));
    const tasks = (await call<Task[]>(puller.process, 'GET', `/replication/executions/${queued.body.id}/tasks`)).body;
    assert.equal(tasks.length, 1);
    assert.equal(tasks[0]!.status, 'copied');
    const read = front.bytesOut;
    const afterRestart = read - afterKill;
    t.diagnostic(
      `(a) pull, kill -9 of the puller: read from the source ${mib(read)} in all for a ${mib(SIZE)} layer (${mib(atKill)} before the kill, ${mib(afterRestart)} after the restart); ` +
        `the restarted task resumed the upload at ${mib(tasks[0]!.resumedBytes)} and wrote ${mib(tasks[0]!.bytes)}`,
    );
    // What the destination session held at the kill: whole chunks, a chunk or two behind what was read.
    assert.ok(tasks[0]!.resumedBytes >= MIN_RESUMED, `resumed at ${tasks[0]!.resumedBytes}`);
    const written = tasks[0]!.resumedBytes + tasks[0]!.bytes;
    assert.ok(written >= SIZE && written <= SIZE + image.config.size, `every byte of the layer written once in all (${written})`);
    assert.ok(
      afterRestart <= SIZE - tasks[0]!.resumedBytes + SLACK,
      `the restart read ${afterRestart} bytes: only the rest of the blob (Range), not all of it`,
    );
    assert.ok(read <= MAX_WIRE, `read ${read} bytes in all for a ${SIZE}-byte layer`);
    await arrived(puller, 'big/app');
    await puller.process.stop();
    nodes.splice(nodes.indexOf(puller), 1);
    rmSync(dataDir, { recursive: true, force: true });
  });

  let destination: Node;
  let front: RecordingFront;

  it('(b) push: the destination Berth killed mid-blob and restarted; the execution retries and continues at the offset the destination reports', async (t: TestContext) => {
    const dataDir = dir('dest');
    const port = await freePort();
    destination = track(await start(dataDir, port));
    front = await RecordingFront.start(destination.process.url);
    fronts.push(front);
    assert.equal(
      (
        await call(source.process, 'POST', '/registries', {
          name: 'dr',
          url: front.url,
          kind: 'berth',
          username: 'admin',
          credential: PASSWORD,
        })
      ).status,
      201,
    );
    const created = await call(source.process, 'POST', '/replication/policies', {
      name: 'big-push',
      direction: 'push',
      registry: 'dr',
      repositories: ['big/app'],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const queued = await call(source.process, 'POST', '/replication/policies/big-push/run');
    assert.equal(queued.status, 202);
    const runAt = Date.now();

    await until(
      () => front.bytesIn >= KILL_AT,
      300_000,
      () => `only ${front.bytesIn} bytes moved`,
    );
    await destination.process.kill();
    const killedAt = Date.now();
    const atKill = front.bytesIn;
    assert.ok(atKill < SIZE, `killed mid-blob (${atKill} of ${SIZE} bytes sent)`);
    nodes.splice(nodes.indexOf(destination), 1);
    destination = track(await start(dataDir, port));
    const upAt = Date.now();

    const execution = await finished(source.process, queued.body.id);
    t.diagnostic(
      `(b) ${mib(KILL_AT)} in ${((killedAt - runAt) / 1000).toFixed(1)} s, restart ${((upAt - killedAt) / 1000).toFixed(1)} s, finished ${since(upAt)} later`,
    );
    assert.equal(execution.status, 'succeeded', JSON.stringify(execution));
    const tasks = (await call<Task[]>(source.process, 'GET', `/replication/executions/${queued.body.id}/tasks`)).body;
    assert.equal(tasks.length, 1);
    assert.equal(tasks[0]!.status, 'copied');

    // After the restart: the session asked for (GET → 204 with Range), then PATCHes from its end on.
    // (A PATCH the client's transport re-sent as the destination came back may come first: it
    // continues at the same offset, which the destination accepts.)
    const later = front.seen.filter((r) => r.at >= killedAt && r.url.includes('/blobs/uploads/'));
    const patches = later.filter((r) => r.method === 'PATCH' && r.status === 202);
    assert.ok(patches.length > 0, `no PATCH accepted after the restart: ${JSON.stringify(later.slice(0, 10))}`);
    const asked = later.some((r) => r.method === 'GET' && r.status === 204 && r.at <= patches[0]!.at);
    const starts = patches.map((r) => Number(/^(\d+)-/.exec(r.range ?? '')?.[1]));
    const resumedAt = starts[0]!;
    assert.ok(resumedAt >= MIN_RESUMED && resumedAt <= atKill, `continued at byte ${resumedAt} (the kill came at ${atKill} sent)`);
    assert.ok(
      starts.every((start, i) => start === resumedAt + i * CHUNK),
      `the PATCHes after the restart continued chunk after chunk from ${resumedAt}: ${starts.slice(0, 5).join(', ')}…`,
    );
    assert.equal(later.filter((r) => r.method === 'POST').length, 0, 'no new upload session: the blob was not started over');
    const sent = front.bytesIn;
    const afterKill = sent - atKill;
    t.diagnostic(
      `(b) push, kill -9 of the destination: sent to the destination ${mib(sent)} in all for a ${mib(SIZE)} layer (${mib(atKill)} before the kill, ${mib(afterKill)} after); ` +
        `the upload continued at ${mib(resumedAt)} (${asked ? 'GET → 204 Range' : 'a re-sent PATCH'}), task: ${tasks[0]!.bytes} B sent, ${tasks[0]!.resumedBytes} B resumed`,
    );
    // PATCHes re-sent while the destination was down may have crossed the front in part.
    assert.ok(
      afterKill <= SIZE - resumedAt + 2 * CHUNK + SLACK,
      `after the restart ${afterKill} bytes were sent: only the rest of the blob`,
    );
    assert.ok(sent <= MAX_WIRE, `sent ${sent} bytes in all for a ${SIZE}-byte layer`);
    await arrived(destination, 'big/app');
  });

  it('(c) push: the source Berth running the execution killed; its restart continues the upload session at the destination', async (t: TestContext) => {
    assert.ok(destination && front, 'runs after (b), into the same destination (another repository)');
    const created = await call(source.process, 'POST', '/replication/policies', {
      name: 'big-push-c',
      direction: 'push',
      registry: 'dr',
      repositories: ['big/app'],
      destNamespace: 'c',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const queued = await call(source.process, 'POST', '/replication/policies/big-push-c/run');
    assert.equal(queued.status, 202);
    const runAt = Date.now();
    const base = front.bytesIn;
    await until(
      () => front.bytesIn - base >= KILL_AT,
      300_000,
      () => `only ${front.bytesIn - base} bytes moved`,
    );
    await source.process.kill();
    const atKill = front.bytesIn - base;
    const killedAt = Date.now();
    assert.ok(atKill < SIZE, `killed mid-blob (${atKill} of ${SIZE} bytes sent)`);
    nodes.splice(nodes.indexOf(source), 1);
    source = track(await start(source.dataDir, source.port));
    const upAt = Date.now();

    const execution = await finished(source.process, queued.body.id);
    t.diagnostic(
      `(c) ${mib(KILL_AT)} in ${((killedAt - runAt) / 1000).toFixed(1)} s, restart ${((upAt - killedAt) / 1000).toFixed(1)} s, finished ${since(upAt)} later`,
    );
    assert.equal(execution.status, 'succeeded', JSON.stringify(execution));
    const tasks = (await call<Task[]>(source.process, 'GET', `/replication/executions/${queued.body.id}/tasks`)).body;
    assert.equal(tasks.length, 1);
    assert.equal(tasks[0]!.status, 'copied');
    const later = front.seen.filter((r) => r.at >= killedAt && r.url.includes('/blobs/uploads/'));
    assert.equal(later.filter((r) => r.method === 'POST').length, 0, 'no new upload session: the blob was not started over');
    const sent = front.bytesIn - base;
    const afterKill = sent - atKill;
    t.diagnostic(
      `(c) push, kill -9 of the source: sent to the destination ${mib(sent)} in all for a ${mib(SIZE)} layer (${mib(atKill)} before the kill, ${mib(afterKill)} after the restart); ` +
        `the restarted task resumed at ${mib(tasks[0]!.resumedBytes)} and sent ${mib(tasks[0]!.bytes)}`,
    );
    assert.ok(tasks[0]!.resumedBytes >= MIN_RESUMED, `resumed at ${tasks[0]!.resumedBytes}`);
    const written = tasks[0]!.resumedBytes + tasks[0]!.bytes;
    assert.ok(written >= SIZE && written <= SIZE + image.config.size, `every byte of the layer sent once in all (${written})`);
    assert.ok(
      afterKill <= SIZE - tasks[0]!.resumedBytes + CHUNK,
      `after the restart ${afterKill} bytes were sent: only the rest of the blob`,
    );
    assert.ok(sent <= MAX_WIRE, `sent ${sent} bytes in all for a ${SIZE}-byte layer`);
    await arrived(destination, 'c/big/app');
  });
});
