import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { PolicySchema, proxyCacheDefaultPolicy } from '../../src/retention/policy.js';
import type { RetentionRun } from '../../src/retention/ports.js';
import { addMember, addProject, addUser, adminAuth, api, basic, useAuthServer } from '../auth/support.js';
import { RegistryClient } from '../helpers/registry-client.js';
import { ROOT } from '../helpers/server.js';
import { pushTagged, rule, runRetention, setPolicy, tagsOf } from './retention-support.js';

const exec = promisify(execFile);

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  return ((await res.json()) as { errors: { code: string; message: string }[] }).errors[0]!;
}

describe('retention admin API, schedule and CLI', () => {
  const reg = useAuthServer(
    'basic',
    {},
    { gc: { enabled: false } },
    {
      setup: async (server) => {
        await addProject(server, 'alpha');
        await addProject(server, 'beta');
        await addUser(server, 'owner', 'owner-password-1');
        await addUser(server, 'dev', 'dev-password-1');
        await addUser(server, 'stranger', 'stranger-password-1');
        await addMember(server, 'alpha', 'owner', 'project-admin');
        await addMember(server, 'alpha', 'dev', 'developer');
      },
    },
  );
  const owner = basic('owner', 'owner-password-1');
  const policy = { rules: [rule('latestPushedK', { count: 1 })], schedule: null };

  it('a project-admin manages the retention of their project: PUT, GET, runs, DELETE', async () => {
    const put = await api(reg.server, 'PUT', '/projects/alpha/retention', owner, policy);
    assert.equal(put.status, 200);
    const body = (await put.json()) as { project: string; rules: { template: string; count: number }[]; updatedBy: string };
    assert.deepEqual([body.project, body.rules[0]!.template, body.rules[0]!.count, body.updatedBy], ['alpha', 'latestPushedK', 1, 'owner']);
    assert.equal((await api(reg.server, 'GET', '/projects/alpha/retention', owner)).status, 200);
    const run = await api(reg.server, 'POST', '/projects/alpha/retention/runs', owner, { dryRun: true });
    assert.equal(run.status, 202);
    await reg.server.composition.retention.settled();
    const runs = (await (await api(reg.server, 'GET', '/projects/alpha/retention/runs', owner)).json()) as RetentionRun[];
    assert.deepEqual(
      runs.map((r) => [r.dryRun, r.status, r.trigger, r.actor]),
      [[true, 'ok', 'manual', 'owner']],
    );
    assert.equal((await api(reg.server, 'DELETE', '/projects/alpha/retention', owner)).status, 204);
    assert.equal((await api(reg.server, 'GET', '/projects/alpha/retention', owner)).status, 404);
    assert.equal((await api(reg.server, 'GET', '/projects/alpha/retention/runs', owner)).status, 200, 'past runs stay readable');
  });

  const routes: [string, string, unknown?][] = [
    ['GET', '/retention'],
    ['PUT', '/retention', policy],
    ['DELETE', '/retention'],
    ['POST', '/retention/runs', { dryRun: true }],
    ['GET', '/retention/runs'],
    ['GET', '/retention/runs/1'],
  ];
  for (const [method, route, body] of routes) {
    it(`${method} …${route}: 401 without credentials, 403 for a developer, 404 for a non-member and for another tenant's admin`, async () => {
      assert.equal(
        (
          await fetch(`${reg.url}/api/v1/projects/alpha${route}`, {
            method,
            headers: body ? { 'content-type': 'application/json' } : {},
            body: body ? JSON.stringify(body) : undefined,
          })
        ).status,
        401,
      );
      const dev = await api(reg.server, method, `/projects/alpha${route}`, basic('dev', 'dev-password-1'), body);
      assert.equal(dev.status, 403);
      assert.equal((await errorOf(dev)).code, 'DENIED');
      const stranger = await api(reg.server, method, `/projects/alpha${route}`, basic('stranger', 'stranger-password-1'), body);
      assert.equal(stranger.status, 404, 'a private project the caller cannot see does not exist for them');
      assert.equal(
        (await api(reg.server, method, `/projects/beta${route}`, owner, body)).status,
        404,
        "alpha's admin learns nothing about beta",
      );
    });
  }

  it('refuses invalid policies with 400 INVALID_ARGUMENT naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{ rules: [{ template: 'keepEverything' }] }, /rules\.0\.template/],
      [{ rules: [rule('latestPushedK', { count: -1 })] }, /rules\.0\.count/],
      [{ rules: [], schedule: 'every day' }, /schedule: expected a cron expression/],
      [{ rules: [{ ...rule('always'), tags: { decoration: 'sometimes' } }] }, /rules\.0\.tags\.decoration/],
    ];
    for (const [body, message] of cases) {
      const res = await api(reg.server, 'PUT', '/projects/alpha/retention', adminAuth(), body);
      assert.equal(res.status, 400, JSON.stringify(body));
      const error = await errorOf(res);
      assert.equal(error.code, 'INVALID_ARGUMENT');
      assert.match(error.message, message);
    }
  });

  it('404 for a project without a policy (GET, DELETE, POST runs) and for an unknown run', async () => {
    for (const [method, route, body] of [
      ['GET', '/retention'],
      ['DELETE', '/retention'],
      ['POST', '/retention/runs', {}],
    ] as const) {
      const res = await api(reg.server, method, `/projects/beta${route}`, adminAuth(), body);
      assert.equal(res.status, 404, `${method} ${route}`);
      assert.match((await errorOf(res)).message, /project beta has no retention policy/);
    }
    assert.equal((await api(reg.server, 'GET', '/projects/alpha/retention/runs/999999', adminAuth())).status, 404);
    assert.equal((await api(reg.server, 'GET', '/projects/alpha/retention/runs/x', adminAuth())).status, 404);
  });

  it("runs on the policy's cron: the job runs a due policy once and schedules the next occurrence", async () => {
    const admin = new RegistryClient(reg.url, { authorization: adminAuth() });
    await pushTagged(admin, 'beta/app', ['old']);
    await pushTagged(admin, 'beta/app', ['new']);
    await setPolicy(reg.server, 'beta', [rule('latestPushedK', { count: 1 })], '0 3 * * *');
    const stored = await reg.server.composition.retention.policy('beta');
    assert.ok(stored!.nextRunAt!.getTime() > Date.now(), 'the next run is in the future');
    const job = reg.server.composition.retention.job();
    assert.equal((await job.run(new AbortController().signal))?.idle, true, 'nothing is due yet');

    // The occurrence came due.
    await reg.server.stores.metadata.db
      .updateTable('retention_policies' as never)
      .set({ next_run_at: Date.now() - 1000 } as never)
      .where('project' as never, '=', 'beta' as never)
      .execute();
    const result = await job.run(new AbortController().signal);
    assert.equal(result?.idle, false);
    assert.deepEqual(await tagsOf(admin, 'beta/app'), ['new']);
    const runs = await reg.server.composition.retention.runs('beta', 10);
    assert.deepEqual(
      runs.map((r) => [r.trigger, r.dryRun, r.status]),
      [['schedule', false, 'ok']],
    );
    assert.ok((await reg.server.composition.retention.policy('beta'))!.nextRunAt!.getTime() > Date.now(), 'moved to the next occurrence');
    assert.equal((await job.run(new AbortController().signal))?.idle, true, 'and not run twice');
  });

  it("npx berth retention run --dry-run --json on the server's data: --json equals the API, the real run then does what it said", async () => {
    const { driver, url } = reg.server.config.metadata;
    const env = {
      ...process.env,
      BERTH_DATA_DIR: reg.server.dataDir,
      BERTH_AUTH_MODE: 'basic',
      BERTH_METADATA_DRIVER: driver,
      ...(url ? { BERTH_METADATA_URL: url } : {}),
    };
    const berth = async (args: string[]) =>
      (await exec(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], { cwd: ROOT, env })).stdout;
    const admin = new RegistryClient(reg.url, { authorization: adminAuth() });
    for (const tag of ['c1', 'c2', 'c3']) await pushTagged(admin, 'alpha/cli', [tag]);
    // Each berth process costs seconds of start-up on a busy machine: `retention set` is the one step done through the API.
    await setPolicy(reg.server, 'alpha', [rule('latestPushedK', { count: 2, repositories: { decoration: 'matches', pattern: 'cli' } })]);

    const dry = JSON.parse(await berth(['retention', 'run', 'alpha', '--dry-run', '--json'])) as RetentionRun;
    assert.equal(dry.dryRun, true);
    assert.deepEqual(
      dry.report?.repositories[0]?.removed.map((r) => r.tag),
      ['c1'],
    );
    assert.deepEqual(await tagsOf(admin, 'alpha/cli'), ['c1', 'c2', 'c3']);
    assert.deepEqual(dry, await (await api(reg.server, 'GET', `/projects/alpha/retention/runs/${dry.id}`, adminAuth())).json());

    // The real run (through the API: one berth process per test keeps CI lean) does what the CLI's dry run said.
    assert.deepEqual((await runRetention(reg.server, 'alpha', false)).report, dry.report);
    assert.deepEqual(await tagsOf(admin, 'alpha/cli'), ['c2', 'c3']);
  });

  it('a run left "running" by a stopped process is marked failed (interrupted) by the next run of its project', async () => {
    const stale = await reg.server.stores.retention.startRun({
      project: 'beta',
      dryRun: false,
      trigger: 'manual',
      actor: 'crashed',
      at: new Date(Date.now() - 60_000),
    });
    await reg.server.composition.retention.run('beta', { dryRun: true, trigger: 'manual', actor: 'admin' });
    const run = await reg.server.composition.retention.runById('beta', stale);
    assert.equal(run.status, 'failed');
    assert.match((run.summary as { error: string }).error, /interrupted/);
  });

  it('the proxy-cache default policy (given to cache projects when bound) is a valid policy: pulled within 7 days, daily', () => {
    const parsed = PolicySchema.parse(proxyCacheDefaultPolicy());
    assert.deepEqual(
      [parsed.rules[0]!.template, parsed.rules[0]!.template === 'nDaysSinceLastPull' && parsed.rules[0]!.days, parsed.schedule],
      ['nDaysSinceLastPull', 7, '0 0 * * *'],
    );
  });
});
