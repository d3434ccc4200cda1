import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import YAML from 'yaml';
import { RegistryClient } from '../helpers/registry-client.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { useServer } from '../helpers/use-server.js';
import { readOsvSource } from '../../src/scanning/sources.js';
import { VulnDb } from '../../src/scanning/vulndb.js';
import type { RescanRecord } from '../../src/scanning/ports.js';
import { debianImage, eventually, opensslAdvisory, osvDir } from './support.js';

interface Status {
  queue: { pending: number; failed: number };
  rescan: { databaseImport: number; state: string; total: number; scanned: number; remaining: number } | null;
}

const call = (url: string, method: string, p: string, body?: unknown) =>
  fetch(`${url}/api/v1${p}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

/**
 * The work of SBOM and scan on push is durable: a real `berth serve` killed with SIGKILL after a
 * push (with the work queued, or right after the push answered) does it after the restart.
 */
describe('supply chain survives kill -9 of berth serve', () => {
  let dataDir: string;
  let configFile: string;
  let berth: BerthProcess | undefined;

  const configure = (workerInterval: string) =>
    writeFileSync(
      configFile,
      YAML.stringify({ events: { interval: '100ms' }, gc: { enabled: false }, scanning: { interval: workerInterval } }),
    );
  const start = async () => {
    berth = await startBerthProcess({ BERTH_CONFIG: configFile, BERTH_DATA_DIR: dataDir });
    return berth.url;
  };
  const status = async (url: string) => (await (await call(url, 'GET', '/supply-chain/status')).json()) as Status;
  const done = async (url: string, digest: string) => {
    // Killed while working, the process held the supply-chain lease: it expires within 15 s.
    const scan = await eventually(
      'the scan after the restart',
      async () => {
        const res = await call(url, 'GET', `/projects/crash/repositories/app/artifacts/${digest}/vulnerabilities`);
        return res.status === 200 ? ((await res.json()) as { status: string; error: string | null }) : undefined;
      },
      40_000,
    );
    // No database imported: the scan ran and says so.
    assert.deepEqual([scan.status, scan.error], ['failed', 'the vulnerability database is empty: run berth vulndb import first']);
    assert.equal(
      (await call(url, 'GET', `/projects/crash/repositories/app/artifacts/${digest}/sbom`)).status,
      200,
      'the SBOM was attached',
    );
    await eventually('an empty queue', async () => ((await status(url)).queue.pending === 0 ? true : undefined));
  };

  before(() => {
    dataDir = tempDir('berth-supply-crash-');
    configFile = path.join(dataDir, 'berth.yaml');
  });
  after(async () => {
    await berth?.kill();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('queued, then killed before the worker ran: done after the restart', async () => {
    configure('1h');
    const url = await start();
    assert.equal((await call(url, 'POST', '/projects', { name: 'crash' })).status, 201);
    assert.equal((await call(url, 'PUT', '/projects/crash/supply-chain', { sbomOnPush: true, scanOnPush: true })).status, 200);
    const image = await debianImage();
    await new RegistryClient(url).pushImage('crash/app', 'v1', image);
    await eventually('the work queued', async () => ((await status(url)).queue.pending === 1 ? true : undefined));
    await berth!.kill();
    configure('200ms');
    await done(await start(), image.manifest.digest);
  });

  it('killed right after the push answered (the event maybe still in the outbox): done after the restart', async () => {
    const image = await debianImage();
    await new RegistryClient(berth!.url).pushImage('crash/app', 'v2', image);
    await berth!.kill();
    await done(await start(), image.manifest.digest);
  });
});

/**
 * The rescan after a database change is resumable and idempotent: stopped after its first
 * batch (the job's signal aborted), it continues after the digest it stored and scans each
 * artifact once.
 */
describe('rescan: resumable', () => {
  const reg = useServer({
    events: { interval: '100ms', pullflushinterval: '1h' },
    gc: { enabled: false },
    scanning: { interval: '200ms', rescaninterval: '1h', rescanbatch: 1 },
  });
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(path.dirname(d), { recursive: true, force: true })));

  it('stopped after one batch, the next run continues where it stopped; every artifact is rescanned exactly once', async () => {
    const vulndb = new VulnDb(reg.server.stores.vulndb);
    const first = osvDir([opensslAdvisory('DSA-9401-1', '3.0.11-1~deb12u2', '2026-01-10T00:00:00Z')]);
    dirs.push(first);
    await vulndb.import(first, readOsvSource(first));
    assert.equal((await call(reg.url, 'POST', '/projects', { name: 'team' })).status, 201);
    assert.equal((await call(reg.url, 'PUT', '/projects/team/supply-chain', { sbomOnPush: false, scanOnPush: true })).status, 200);
    const digests: string[] = [];
    for (const tag of ['a', 'b', 'c']) {
      const image = await debianImage();
      await reg.client.pushImage('team/app', tag, image);
      digests.push(image.manifest.digest);
    }
    for (const d of digests)
      await eventually(`the scan of ${d}`, async () => ((await reg.server.stores.vulndb.scanOf(d)) ? true : undefined));
    // The queue rows too: a row still pending when the second import lands would be scanned
    // against it by the worker, and the rescan would find fewer stale scans than it expects.
    await eventually('an empty scan queue', async () =>
      (await reg.server.stores.supplyChain.queueCounts()).pending === 0 ? true : undefined,
    );

    const second = osvDir([
      opensslAdvisory('DSA-9401-1', '3.0.11-1~deb12u2', '2026-01-10T00:00:00Z'),
      opensslAdvisory('DSA-9402-1', '3.0.11-1~deb12u3', '2026-02-10T00:00:00Z'),
    ]);
    dirs.push(second);
    const run = await vulndb.import(second, readOsvSource(second));
    const service = reg.server.composition.supplyChain;
    const store = reg.server.stores.supplyChain;
    const controller = new AbortController();
    const update = store.updateRescan.bind(store);
    store.updateRescan = async (r: RescanRecord) => {
      await update(r);
      controller.abort();
    };
    try {
      const stopped = await service.rescan(controller.signal);
      assert.deepEqual(stopped, { databaseImport: run.id, scanned: 1, failed: 0, remaining: 2 });
    } finally {
      store.updateRescan = update;
    }
    const half = (await (await call(reg.url, 'GET', '/supply-chain/status')).json()) as Status;
    assert.deepEqual([half.rescan!.state, half.rescan!.total, half.rescan!.scanned, half.rescan!.remaining], ['running', 3, 1, 2]);

    const resumed = await service.rescan(new AbortController().signal);
    assert.deepEqual(resumed, { databaseImport: run.id, scanned: 2, failed: 0, remaining: 0 });
    const finished = (await (await call(reg.url, 'GET', '/supply-chain/status')).json()) as Status;
    assert.deepEqual(
      [finished.rescan!.state, finished.rescan!.total, finished.rescan!.scanned, finished.rescan!.remaining],
      ['complete', 3, 3, 0],
    );
    assert.equal(await service.rescan(new AbortController().signal), null, 'nothing left: a further run does nothing');

    for (const d of digests) assert.equal((await reg.server.stores.vulndb.scanOf(d))!.databaseImport, run.id);
    const db = reg.server.stores.metadata.db as unknown as Kysely<{ events: { type: string; payload: string } }>;
    const events = (
      await db.selectFrom('events').select(['type', 'payload']).where('type', 'in', ['scan.completed', 'scan.failed']).execute()
    ).map((e) => ({ type: e.type, ...(JSON.parse(e.payload) as { digest: string; error?: string }) }));
    const scans = events.filter((e) => e.type === 'scan.completed').map((e) => e.digest);
    // The whole list in the message: this assertion failed twice on PostgreSQL in CI and never alone.
    const seen = JSON.stringify(events.map((e) => ({ type: e.type, digest: e.digest.slice(7, 19), error: e.error })));
    for (const d of digests)
      assert.equal(scans.filter((s) => s === d).length, 2, `scanned on push, then once by the rescan: ${d.slice(7, 19)} in ${seen}`);
  });
});
