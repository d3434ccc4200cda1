import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { readCpuSeconds } from '../../bench/rss.js';
import { ClientSandbox, registryHost, requireTools, runTool } from '../helpers/clients.js';
import {
  GiB,
  MiB,
  MODELPACK,
  OCI_MANIFEST,
  layerBytes,
  layerDigest,
  peakRss,
  pushModel,
  sha256,
  weightPath,
  type ModelManifest,
} from '../helpers/modelpack.js';
import { ROOT, startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';

/**
 * AI models end to end (issue 19): a CNCF ModelPack artifact with multi-GB weight layers pushed
 * and pulled by a client that moves bytes as oras/modctl do (test/helpers/modelpack.ts), against
 * a real `berth serve` child process on the filesystem store.
 *
 * The push goes in 64 MiB PATCH chunks and is interrupted twice mid-layer: the client process is
 * SIGKILLed during a chunk of the first layer (a new process resumes from the state file: GET on
 * the upload URL, Range, PATCH from there), and the server is SIGKILLed and restarted on the same
 * port and data directory during a chunk of the second layer (the client, still running, resumes
 * the same way). The pull fetches each layer with 8 concurrent Range GETs written at their
 * offsets. Every layer pulled hashes to the digest computed independently here from the seed,
 * and the peak RSS (VmHWM) of both the server and the client stays bounded whatever the layer
 * size: BERTH_MODELPACK_LAYER_GB=4 runs the same test with 4 GiB layers (by hand; CI uses 1 GiB).
 */
const LAYER_SIZE = Math.round(Number(process.env.BERTH_MODELPACK_LAYER_GB ?? 1) * GiB);
const LAYERS = Number(process.env.BERTH_MODELPACK_LAYERS ?? 2);
const CHUNK = 64 * MiB;
const SEED = process.env.BERTH_MODELPACK_SEED ?? 'berth-modelpack-1';
const REPO = 'models/llama';
/** Peak RSS the client may reach (it holds one 1 MiB piece of a chunk at a time). */
const CLIENT_PEAK_LIMIT = 200 * 1e6;
/**
 * Peak RSS of the server. It runs from source under tsx here (about 165 MB at idle, most of it
 * the TypeScript compiler's leftovers); what must not happen is growth with the bytes moved,
 * so the bound is on growth over the idle figure, plus an absolute ceiling. Observed growth:
 * 7–91 MB with 1 and 4 GiB layers on a loaded machine (the peak falls at a layer's first chunks
 * and varies with GC timing); buffering in proportion to a layer would be 1 GiB or more.
 */
const SERVER_GROWTH_LIMIT = 150 * 1e6;
const SERVER_PEAK_LIMIT = 320 * 1e6;
const MB = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

interface ClientEvent {
  event: string;
  layer?: number;
  offset?: number;
  start?: number;
  end?: number;
  digest?: string;
  seconds?: number;
  cpuSeconds?: number;
  transferSeconds?: number;
  hashSeconds?: number;
  resumedAt?: number[];
  peakRss?: number;
  manifestDigest?: string;
  files?: { path: string; digest: string; size: number }[];
  message?: string;
}

/** The CLI client as a child process, with its JSON-lines events. */
class ClientProcess {
  readonly events: ClientEvent[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  private stderr = '';
  private waiters: { test: (e: ClientEvent) => boolean; resolve: (e: ClientEvent) => void }[] = [];

  constructor(args: string[]) {
    this.child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/helpers/modelpack-cli.ts'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const event = JSON.parse(line) as ClientEvent;
      this.events.push(event);
      for (const w of [...this.waiters]) {
        if (w.test(event)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(event);
        }
      }
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** The first event (past or future) that passes `test`; rejects if the client exits first. */
  async waitFor(test: (e: ClientEvent) => boolean): Promise<ClientEvent> {
    const seen = this.events.find(test);
    if (seen) return seen;
    const event = new Promise<ClientEvent>((resolve) => this.waiters.push({ test, resolve }));
    return Promise.race([
      event,
      this.exited.then(async (code) => {
        await sleep(50); // let the last lines be read
        const late = this.events.find(test);
        if (late) return late;
        throw new Error(`client exited (${code}) before the awaited event: ${this.log()}`);
      }),
    ]);
  }

  async done(): Promise<ClientEvent> {
    const code = await this.exited;
    await sleep(50);
    const done = this.events.find((e) => e.event === 'done');
    assert.ok(code === 0 && done, `client exited with ${code}: ${this.log()}`);
    return done;
  }

  log(): string {
    return `${this.events
      .slice(-8)
      .map((e) => JSON.stringify(e))
      .join('\n')}\n${this.stderr.slice(-2000)}`;
  }
}

/** Resets a process's VmHWM to its current RSS (Linux clear_refs), so the next peak is the next phase's own. */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

const cpuOf = (pid: number) => readCpuSeconds(pid) ?? Number.NaN;

/**
 * Samples a process's RSS every 100 ms and remembers the highest sample with what `label()` said
 * then (the client's last event), so a peak can be traced to the step that caused it.
 */
class RssWatch {
  peak = { rss: 0, at: '' };
  private readonly timer: NodeJS.Timeout;
  constructor(
    private pid: () => number,
    private label: () => string,
  ) {
    this.timer = setInterval(() => {
      try {
        const now = rss(this.pid());
        if (now > this.peak.rss) this.peak = { rss: now, at: this.label() };
      } catch {
        // the process is being restarted
      }
    }, 100);
    this.timer.unref(); // a failed test does not leave it running
  }
  stop(): string {
    clearInterval(this.timer);
    return `${MB(this.peak.rss)} at ${this.peak.at}`;
  }
}

/** Resident set size of a process now, in bytes (VmRSS). */
function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

describe(`ModelPack artifact end to end: ${LAYERS} weight layers of ${LAYER_SIZE / GiB} GiB against berth serve`, () => {
  const dataDir = tempDir('berth-modelpack-');
  const work = tempDir('berth-modelpack-client-');
  const stateFile = path.join(work, 'push-state.json');
  const env = { BERTH_DATA_DIR: dataDir };
  let server: BerthProcess;
  let registry: string;
  let expected: string[];
  let manifestDigest: string;
  let sandbox: ClientSandbox;
  const serverPeaks: { phase: string; peak: number; idle: number }[] = [];
  /** Log output of servers that were killed (the running one's is read from it). */
  let earlierLogs = '';
  /** The servers' log lines at warn level or above, as "level msg". */
  const serverComplaints = () =>
    `${earlierLogs}${server.logOutput()}`
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string; err?: { message?: string } })
      .filter((entry) => entry.level >= 40)
      .map((entry) => `${entry.level} ${entry.msg}${entry.err?.message ? `: ${entry.err.message}` : ''}`);

  before(async () => {
    requireTools(['skopeo', 'curl', 'dd', 'sha256sum']);
    sandbox = ClientSandbox.create();
    server = await startBerthProcess(env);
    registry = server.url;
    // The digests a correct round trip must produce, from the seed alone (not from the client's run).
    expected = Array.from({ length: LAYERS }, (_, i) => layerDigest(SEED, i, LAYER_SIZE));
  });
  after(async () => {
    await server?.stop();
    sandbox?.destroy();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  /** Warms the server up with a small push and returns its idle RSS then (tsx has compiled what requests need). */
  async function idleRss(): Promise<number> {
    await pushModel({
      registry,
      repository: 'models/warmup',
      tag: 'w',
      spec: { seed: 'warmup', layers: 1, layerSize: MiB },
      chunkSize: MiB,
    });
    await sleep(500);
    return rss(server.child.pid!);
  }

  const pushArgs = [
    'push',
    '--repository',
    REPO,
    '--tag',
    'v1',
    '--seed',
    SEED,
    '--layers',
    String(LAYERS),
    '--layer-size',
    String(LAYER_SIZE),
    '--chunk-size',
    String(CHUNK),
    '--state',
    stateFile,
  ];
  const midLayer = (layer: number) => (e: ClientEvent) =>
    e.event === 'chunk-sending' && e.layer === layer && e.start! >= Math.min(4 * CHUNK, LAYER_SIZE / 2);

  it('the generated layer bytes can be regenerated from any offset (what a resume at an unaligned Range needs)', () => {
    const whole = Buffer.concat([...layerBytes(SEED, 7, 0, 3 * MiB + 5)]);
    assert.equal(whole.length, 3 * MiB + 5);
    for (const [start, end] of [
      [0, 1],
      [15, 17],
      [16, 32],
      [1_000_003, 2 * MiB + 9],
      [MiB - 1, 3 * MiB + 5],
    ] as const) {
      const part = Buffer.concat([...layerBytes(SEED, 7, start, end)]);
      assert.ok(part.equals(whole.subarray(start, end)), `bytes ${start}-${end}`);
    }
    assert.ok(!whole.subarray(0, 64).equals(Buffer.concat([...layerBytes(SEED, 8, 0, 64)])), 'each layer has its own bytes');
    assert.equal(layerDigest(SEED, 7, 3 * MiB + 5), sha256(whole));
  });

  it(
    'pushes in 64 MiB chunks and resumes from the upload Range after the client is SIGKILLed and after the server is SIGKILLed and restarted, both mid-layer',
    { timeout: 20 * 60_000 },
    async (t) => {
      const started = Date.now();
      let idle = await idleRss();
      let serverCpu = -cpuOf(server.child.pid!);

      // 1. The client dies (SIGKILL) while a chunk of layer 0 is on the wire.
      const first = new ClientProcess(['push', '--registry', registry, ...pushArgs.slice(1)]);
      let active = first;
      const watch = new RssWatch(
        () => server.child.pid!,
        () => `${active === first ? 'first' : 'second'} client after ${JSON.stringify(active.events.at(-1) ?? {})}`,
      );
      const sending = await first.waitFor(midLayer(0));
      await sleep(100);
      const firstPeak = peakRss(first.child.pid!);
      const firstCpu = cpuOf(first.child.pid!);
      first.child.kill('SIGKILL');
      await first.exited;
      const acked = Math.max(0, ...first.events.filter((e) => e.event === 'chunk-acked' && e.layer === 0).map((e) => e.offset!));
      t.diagnostic(
        `client killed while sending layer 0 bytes ${sending.start}-${sending.end! - 1}; ${acked} bytes acknowledged; its peak RSS ${MB(firstPeak)}`,
      );
      assert.ok(firstPeak < CLIENT_PEAK_LIMIT, `client peak RSS ${MB(firstPeak)}`);

      // 2. A new client process resumes from the state file; the server dies mid-layer 1 and comes back on the same port.
      const second = new ClientProcess(['push', '--registry', registry, ...pushArgs.slice(1)]);
      active = second;
      const resumed = await second.waitFor((e) => e.event === 'resume' && e.layer === 0);
      assert.ok(
        resumed.offset! >= acked && resumed.offset! < LAYER_SIZE,
        `resumed layer 0 at ${resumed.offset}, after ${acked} acknowledged bytes`,
      );
      assert.equal(resumed.offset! % CHUNK, 0, 'the server kept whole chunks only (the cut chunk is re-sent)');
      assert.ok(!second.events.some((e) => e.event === 'upload-started' && e.layer === 0), 'layer 0 was not started over');
      await second.waitFor(midLayer(1));
      await sleep(100);
      const port = server.port;
      serverPeaks.push({ phase: 'push before the server kill', peak: peakRss(server.child.pid!), idle });
      serverCpu += cpuOf(server.child.pid!);
      await server.kill();
      earlierLogs += server.logOutput();
      server = await startBerthProcess({ ...env, BERTH_HTTP_ADDR: `127.0.0.1:${port}` });
      idle = rss(server.child.pid!);
      serverCpu -= cpuOf(server.child.pid!);
      const done = await second.done();
      serverCpu += cpuOf(server.child.pid!);
      t.diagnostic(`server RSS sampled every 100 ms peaked at ${watch.stop()}`);
      const restartResume = second.events.find((e) => e.event === 'resume' && e.layer === 1);
      assert.ok(restartResume, `the client resumed layer 1 after the restart: ${second.log()}`);
      assert.ok(
        second.events.some((e) => e.event === 'interrupted' && e.layer === 1),
        'the restart interrupted a chunk of layer 1',
      );
      assert.ok(
        !second.events.some(
          (e) => e.event === 'upload-started' && e.layer === 1 && second.events.indexOf(e) > second.events.indexOf(restartResume),
        ),
        'layer 1 was not started over',
      );

      // What the registry holds is what the seed generates.
      const pushed = second.events.filter((e) => e.event === 'layer-pushed').map((e) => e.digest!);
      assert.deepEqual(pushed, expected);
      manifestDigest = done.manifestDigest!;
      // Layer 0's rest went uninterrupted: the steady chunked push rate (generation, hashing and 64 MiB PATCHes).
      const layer0 = second.events.find((e) => e.event === 'layer-pushed' && e.layer === 0)!;
      t.diagnostic(
        `layer 0 from ${resumed.offset} to the end: ${layer0.seconds} s, ${MB((LAYER_SIZE - resumed.offset!) / layer0.seconds!)}/s`,
      );
      const seconds = (Date.now() - started) / 1000;
      serverPeaks.push({ phase: 'push after the restart', peak: peakRss(server.child.pid!), idle });
      t.diagnostic(
        `pushed ${LAYERS} × ${LAYER_SIZE / GiB} GiB in ${seconds.toFixed(1)} s with two interruptions (${MB((LAYERS * LAYER_SIZE) / seconds)}/s overall, restart included); ` +
          `resumed layer 0 at ${resumed.offset}, layer 1 at ${restartResume.offset}; client peak RSS ${MB(done.peakRss!)}; ` +
          `server peak RSS ${serverPeaks.map((p) => `${MB(p.peak)} (${p.phase}, idle ${MB(p.idle)})`).join(', ')}`,
      );
      const gib = (LAYERS * LAYER_SIZE) / GiB;
      t.diagnostic(
        `CPU: server ${serverCpu.toFixed(1)} s (${(serverCpu / gib).toFixed(2)} s/GiB, start-up of the restarted server excluded), ` +
          `clients ${(firstCpu + done.cpuSeconds!).toFixed(1)} s (killed ${firstCpu.toFixed(1)} + resumed ${done.cpuSeconds!.toFixed(1)}; ${((firstCpu + done.cpuSeconds!) / gib).toFixed(2)} s/GiB, keystream generation and hashing included)`,
      );
      assert.ok(done.peakRss! < CLIENT_PEAK_LIMIT, `client peak RSS ${MB(done.peakRss!)}`);
      t.diagnostic(`server log lines at warn or above: ${JSON.stringify(serverComplaints())}`);
      for (const p of serverPeaks) {
        assert.ok(
          p.peak < SERVER_PEAK_LIMIT && p.peak - p.idle < SERVER_GROWTH_LIMIT,
          `server peak RSS ${MB(p.peak)} over idle ${MB(p.idle)} (${p.phase})`,
        );
      }
    },
  );

  it(
    'pulls with 8 concurrent Range GETs per layer, byte-identical, with flat memory on both sides',
    { timeout: 20 * 60_000 },
    async (t) => {
      assert.ok(manifestDigest, 'the push test ran');
      const idle = rss(server.child.pid!);
      resetPeak(server.child.pid!);
      const cpuBefore = cpuOf(server.child.pid!);
      const pull = new ClientProcess([
        'pull',
        '--registry',
        registry,
        '--repository',
        REPO,
        '--reference',
        'v1',
        '--out',
        path.join(work, 'pulled'),
        '--parallel',
        '8',
      ]);
      const done = await pull.done();
      assert.equal(done.manifestDigest, manifestDigest);
      const weights = done.files!.slice(0, LAYERS);
      assert.deepEqual(
        weights.map((f) => f.digest),
        expected,
        'SHA-256 of each pulled file equals the digest generated from the seed',
      );
      assert.deepEqual(
        weights.map((f) => path.basename(f.path)),
        Array.from({ length: LAYERS }, (_, i) => weightPath(i, LAYERS)),
      );
      const serverPeak = peakRss(server.child.pid!);
      const serverCpu = cpuOf(server.child.pid!) - cpuBefore;
      const gib = (LAYERS * LAYER_SIZE) / GiB;
      const pulled = pull.events.filter((e) => e.event === 'layer-pulled').slice(0, LAYERS);
      const transfer = pulled.reduce((sum, e) => sum + e.transferSeconds!, 0);
      const hashing = pulled.reduce((sum, e) => sum + e.hashSeconds!, 0);
      t.diagnostic(
        `pulled ${LAYERS} × ${LAYER_SIZE / GiB} GiB in ${done.seconds!.toFixed(1)} s: transfer ${transfer.toFixed(1)} s (${MB((LAYERS * LAYER_SIZE) / transfer)}/s), ` +
          `hashing the files ${hashing.toFixed(1)} s; client peak RSS ${MB(done.peakRss!)}, CPU ${(done.cpuSeconds! / gib).toFixed(2)} s/GiB; ` +
          `server peak RSS ${MB(serverPeak)} during the pull (idle ${MB(idle)}), CPU ${(serverCpu / gib).toFixed(2)} s/GiB`,
      );
      assert.ok(done.peakRss! < CLIENT_PEAK_LIMIT, `client peak RSS ${MB(done.peakRss!)}`);
      assert.ok(
        serverPeak < SERVER_PEAK_LIMIT && serverPeak - idle < SERVER_GROWTH_LIMIT,
        `server peak RSS ${MB(serverPeak)} over idle ${MB(idle)}`,
      );
      rmSync(path.join(work, 'pulled'), { recursive: true, force: true });
      t.diagnostic(`server log lines at warn or above: ${JSON.stringify(serverComplaints())}`);
    },
  );

  it(
    'the model is an artifact like any other: tags list, referrers (a fine-tune whose subject is the base model), skopeo inspect --raw and skopeo copy to an OCI layout',
    { timeout: 5 * 60_000 },
    async () => {
      assert.ok(manifestDigest, 'the push test ran');
      const base = await fetch(`${registry}/v2/${REPO}/manifests/v1`, { headers: { accept: OCI_MANIFEST } });
      const baseBytes = Buffer.from(await base.arrayBuffer());
      assert.equal(sha256(baseBytes), manifestDigest);
      const manifest = JSON.parse(baseBytes.toString()) as ModelManifest;
      assert.equal(manifest.artifactType, MODELPACK.artifactType);
      assert.equal(manifest.config.mediaType, MODELPACK.config);
      assert.deepEqual(
        manifest.layers.map((l) => l.mediaType),
        [...Array<string>(LAYERS).fill(MODELPACK.weightRaw), MODELPACK.weightConfigRaw, MODELPACK.docRaw],
      );
      const config = (await (await fetch(`${registry}/v2/${REPO}/blobs/${manifest.config.digest}`)).json()) as {
        modelfs: { diffIds: string[] };
      };
      assert.deepEqual(config.modelfs.diffIds.slice(0, LAYERS), expected);

      // A small fine-tune (one 1 MiB adapter layer) that refers to the base model.
      const fineTune = await pushModel({
        registry,
        repository: REPO,
        tag: 'v1-lora',
        spec: {
          seed: `${SEED}-lora`,
          layers: 1,
          layerSize: MiB,
          name: 'llama-lora',
          subject: { mediaType: OCI_MANIFEST, digest: manifestDigest, size: baseBytes.length },
        },
        chunkSize: 256 * 1024,
      });

      const tags = (await (await fetch(`${registry}/v2/${REPO}/tags/list`)).json()) as { tags: string[] };
      assert.deepEqual([...tags.tags].sort(), ['v1', 'v1-lora']);
      for (const query of ['', `?artifactType=${encodeURIComponent(MODELPACK.artifactType)}`]) {
        const res = await fetch(`${registry}/v2/${REPO}/referrers/${manifestDigest}${query}`);
        assert.equal(res.status, 200);
        const index = (await res.json()) as { manifests: { digest: string; artifactType: string; annotations?: Record<string, string> }[] };
        assert.deepEqual(
          index.manifests.map((m) => [m.digest, m.artifactType, m.annotations?.['org.opencontainers.image.title']]),
          [[fineTune.manifestDigest, MODELPACK.artifactType, 'llama-lora']],
          `referrers${query}`,
        );
        assert.equal(res.headers.get('oci-filters-applied'), query ? 'artifactType' : null);
      }
      const none = (await (await fetch(`${registry}/v2/${REPO}/referrers/${manifestDigest}?artifactType=application/example`)).json()) as {
        manifests: unknown[];
      };
      assert.deepEqual(none.manifests, []);

      const host = registryHost(registry);
      const raw = await sandbox.skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${host}/${REPO}:v1`]);
      assert.equal(sha256(Buffer.from(raw.stdout)), manifestDigest, 'skopeo inspect --raw prints the manifest byte for byte');

      // The fine-tune is a whole ModelPack artifact of small blobs: skopeo copies it to an OCI layout unchanged.
      const layout = sandbox.path('layouts', 'lora');
      await sandbox.skopeo(['copy', '--src-tls-verify=false', `docker://${host}/${REPO}:v1-lora`, `oci:${layout}:v1-lora`]);
      const indexJson = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
      assert.equal(indexJson.manifests[0]!.digest, fineTune.manifestDigest, 'the layout holds the same manifest');
      for (const d of [fineTune.manifest.config, ...fineTune.manifest.layers]) {
        const blob = readFileSync(path.join(layout, 'blobs', 'sha256', d.digest.slice('sha256:'.length)));
        assert.equal(sha256(blob), d.digest, `${d.mediaType} copied intact`);
      }
    },
  );

  it('docs/ai-models.md: the curl HTTP flow (chunked push, manifest, 8-range pull) runs as written', { timeout: 5 * 60_000 }, async () => {
    const docs = readFileSync(path.join(ROOT, 'docs/ai-models.md'), 'utf8');
    const block = /```sh\n(# modelpack-http-flow\n[\s\S]*?)```/.exec(docs)?.[1];
    assert.ok(block, 'docs/ai-models.md has the # modelpack-http-flow block');
    const dir = sandbox.path('http-flow', 'cwd');
    mkdirSync(dir, { recursive: true });
    const script = `set -euo pipefail\ncd ${JSON.stringify(dir)}\n${block.replaceAll('localhost:5000', registryHost(registry))}`;
    const out = (await runTool('bash', ['-c', script], { timeoutMs: 240_000 })).stdout;
    assert.match(out, /pulled 100000000 bytes, digest verified/);
    assert.match(out, /\{"name":"models\/demo","tags":\["v1"\]\}/);
    const manifest = (await (
      await fetch(`${registry}/v2/models/demo/manifests/v1`, { headers: { accept: OCI_MANIFEST } })
    ).json()) as ModelManifest;
    assert.equal(manifest.artifactType, MODELPACK.artifactType);
    assert.equal(manifest.layers[0]!.size, 100_000_000);
  });
});
