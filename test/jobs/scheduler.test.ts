import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pino from 'pino';
import type { BerthConfig } from '../../src/config/schema.js';
import { Scheduler, type Job } from '../../src/jobs/scheduler.js';
import { openStores, type Stores } from '../../src/stores.js';
import { makeImage } from '../helpers/registry-client.js';
import { ROOT, tempDir } from '../helpers/server.js';
import { useServer } from '../helpers/use-server.js';
import { leaseConfig } from './lease-contract.js';

const exec = promisify(execFile);
const silent = pino({ level: 'silent' });

describe('Scheduler: leased jobs and their run history', () => {
  const dir = tempDir('berth-scheduler-');
  let config: BerthConfig;
  let replicas: Stores[];
  before(async () => {
    config = leaseConfig(dir);
    // Two processes' worth of stores on one database: two replicas.
    replicas = [await openStores(config), await openStores(config)];
  });
  after(async () => {
    await Promise.all(replicas.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a leased job runs on one replica at a time; the other skips that tick and records nothing', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const job = (): Job => ({
      name: 'exclusive',
      schedule: { everyMs: 3_600_000 },
      async run() {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(200);
        running--;
        runs++;
        return { summary: { done: true } };
      },
    });
    const schedulers = replicas.map((s) => new Scheduler(silent, s.leases, s.jobs));
    for (const scheduler of schedulers) scheduler.add(job());
    await Promise.all(schedulers.map((s) => s.runNow('exclusive')));
    assert.equal(maxRunning, 1);
    assert.equal(runs, 1, 'the replica that found the lease taken did not run');
    const history = await replicas[0]!.jobs.list(10, 'exclusive');
    assert.equal(history.length, 1);
    assert.equal(history[0]!.outcome, 'ok');
    assert.deepEqual(history[0]!.summary, { done: true });
    assert.ok(history[0]!.finishedAt!.getTime() - history[0]!.startedAt.getTime() >= 150);
    await Promise.all(schedulers.map((s) => s.stop()));
  });

  it('a failed run is recorded with its error; idle runs of frequent jobs leave no row; scope process needs no lease', async () => {
    const scheduler = new Scheduler(silent, replicas[0]!.leases, replicas[0]!.jobs);
    scheduler.add({ name: 'broken', schedule: { everyMs: 3_600_000 }, run: async () => Promise.reject(new Error('disk on fire')) });
    let idle = true;
    scheduler.add({
      name: 'ticker',
      schedule: { everyMs: 3_600_000 },
      history: 'work',
      scope: 'process',
      run: async () => ({ idle, summary: { idle } }),
    });
    await scheduler.runNow('broken');
    await scheduler.runNow('ticker');
    idle = false;
    await scheduler.runNow('ticker');
    const broken = await replicas[0]!.jobs.list(10, 'broken');
    assert.deepEqual(
      broken.map((r) => [r.outcome, r.summary]),
      [['failed', { error: 'disk on fire' }]],
    );
    assert.deepEqual(
      (await replicas[0]!.jobs.list(10, 'ticker')).map((r) => r.summary),
      [{ idle: false }],
    );
    assert.equal(await replicas[0]!.leases.holder('ticker', Date.now()), null, 'a process-scope job takes no lease');
    await scheduler.stop();
  });

  it('a tick whose job says it has no work takes no lease and does not run; runNow runs it anyway', async () => {
    const acquired: string[] = [];
    const store = replicas[0]!.leases;
    const counting = {
      ...store,
      holder: store.holder.bind(store),
      renew: store.renew.bind(store),
      release: store.release.bind(store),
      tryAcquire: (name: string, holder: string, now: number, until: number) => (
        acquired.push(name),
        store.tryAcquire(name, holder, now, until)
      ),
    };
    const scheduler = new Scheduler(silent, counting, replicas[0]!.jobs);
    let work = false;
    let runs = 0;
    scheduler.add({
      name: 'frequent',
      schedule: { everyMs: 50 },
      history: 'work',
      hasWork: async () => work,
      run: async () => ({ idle: !work, summary: { runs: ++runs } }),
    });
    scheduler.start();
    await sleep(400);
    assert.deepEqual([runs, acquired.length], [0, 0], 'no work: neither a run nor a lease');
    work = true;
    await sleep(300);
    assert.ok(runs >= 1, 'work: it runs at the next tick');
    assert.ok(acquired.length >= 1 && acquired.every((n) => n === 'frequent'), 'under its lease');
    await scheduler.stop();
    const manual = new Scheduler(silent, counting, replicas[0]!.jobs);
    let manualRuns = 0;
    manual.add({ name: 'asked', schedule: { everyMs: 3_600_000 }, hasWork: async () => false, run: async () => void manualRuns++ });
    await manual.runNow('asked');
    assert.equal(manualRuns, 1, 'runNow does not ask hasWork');
    await manual.stop();
  });

  it('list() shows every job with its schedule; a job name is registered once; stop() waits for a run in progress', async () => {
    const scheduler = new Scheduler(silent, replicas[1]!.leases, replicas[1]!.jobs);
    let finished = false;
    scheduler.add({ name: 'slow', schedule: { cron: '0 3 * * *' }, run: async () => void (await sleep(300), (finished = true)) });
    assert.throws(() => scheduler.add({ name: 'slow', schedule: { everyMs: 1000 }, run: async () => undefined }), /registered twice/);
    scheduler.start();
    const [info] = scheduler.list();
    assert.equal(info?.name, 'slow');
    assert.deepEqual(info?.schedule, { cron: '0 3 * * *' });
    assert.match(info?.nextRunAt ?? '', /T03:00:00/);
    const run = scheduler.runNow('slow');
    await sleep(50);
    assert.equal(scheduler.list()[0]?.running, true);
    await scheduler.stop();
    assert.equal(finished, true);
    await run;
  });
});

describe('an idle server writes no leases', () => {
  const reg = useServer({ events: { interval: '200ms' }, replication: { interval: '200ms' }, scanning: { interval: '200ms' } });

  it('the frequent jobs (events, replication, supply chain) take their lease only when there is work: a push makes the events job run', async () => {
    const leases = reg.server.stores.leases;
    const taken: string[] = [];
    const tryAcquire = leases.tryAcquire.bind(leases);
    leases.tryAcquire = (name, holder, now, until) => (taken.push(name), tryAcquire(name, holder, now, until));
    try {
      await sleep(1_500);
      const frequent = ['events', 'replication', 'supply-chain'];
      assert.deepEqual(
        taken.filter((n) => frequent.includes(n)),
        [],
        `idle for 1.5 s at 200 ms ticks; leases taken: ${taken.join(', ')}`,
      );
      await reg.client.pushImage('idle/app', 'v1', makeImage());
      const deadline = Date.now() + 5_000;
      while (!taken.includes('events') && Date.now() < deadline) await sleep(50);
      assert.ok(taken.includes('events'), "the push's events were dispatched under the events lease");
    } finally {
      leases.tryAcquire = tryAcquire;
    }
  });
});

describe('GET /api/v1/jobs and berth jobs', () => {
  const reg = useServer({ gc: { enabled: true, schedule: '0 4 * * *' } });

  it("lists the server's jobs and their recorded runs", async () => {
    await reg.server.scheduler.runNow('upload-purge');
    await reg.server.scheduler.runNow('gc');
    const res = await fetch(`${reg.url}/api/v1/jobs`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      jobs: { name: string; scope: string }[];
      runs: { job: string; outcome: string; summary: unknown }[];
    };
    assert.deepEqual(body.jobs.map((j) => j.name).sort(), [
      'events',
      'events-prune',
      'gc',
      'job-history-prune',
      'pull-flush',
      'replication',
      'replication-prune',
      'retention',
      'session-purge',
      'supply-chain',
      'tag-history-prune',
      'upload-purge',
      'vuln-rescan',
      'webhooks',
      'webhooks-prune',
    ]);
    assert.equal(body.jobs.find((j) => j.name === 'gc')?.scope, 'process');
    const purge = body.runs.find((r) => r.job === 'upload-purge');
    assert.equal(purge?.outcome, 'skipped', 'nothing to purge is a skipped run');
    assert.deepEqual(purge?.summary, { purged: 0 });
    assert.equal(body.runs.find((r) => r.job === 'gc')?.outcome, 'ok');
    const only = (await (await fetch(`${reg.url}/api/v1/jobs?job=gc&limit=1`)).json()) as { runs: { job: string }[] };
    assert.deepEqual(
      only.runs.map((r) => r.job),
      ['gc'],
    );
  });

  it('refuses an unknown job (404 NOT_FOUND) and a bad limit (400 INVALID_ARGUMENT)', async () => {
    const unknown = await fetch(`${reg.url}/api/v1/jobs?job=nope`);
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { errors: { code: string }[] }).errors[0]?.code, 'NOT_FOUND');
    for (const limit of ['0', '501', 'ten']) {
      const res = await fetch(`${reg.url}/api/v1/jobs?limit=${limit}`);
      assert.equal(res.status, 400, `limit=${limit}`);
      assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0]?.code, 'INVALID_ARGUMENT');
    }
  });

  it('berth jobs prints the same history from the database', async () => {
    const { driver, url } = reg.server.config.metadata;
    const env = {
      ...process.env,
      BERTH_DATA_DIR: reg.server.dataDir,
      BERTH_METADATA_DRIVER: driver,
      ...(url ? { BERTH_METADATA_URL: url } : {}),
    };
    const run = (args: string[]) =>
      exec(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'jobs', ...args], { cwd: ROOT, env });
    const json = JSON.parse((await run(['--json', '--job', 'gc'])).stdout) as { job: string; outcome: string }[];
    assert.deepEqual(
      json.map((r) => [r.job, r.outcome]),
      [['gc', 'ok']],
    );
    assert.match((await run([])).stdout, /upload-purge\s+skipped/);
    await assert.rejects(run(['--limit', '0']), (err: { code: number; stderr: string }) => err.code === 2 && /--limit/.test(err.stderr));
  });
});
