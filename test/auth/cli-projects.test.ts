import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { RegistryClient, makeImage } from '../helpers/registry-client.js';
import { ROOT } from '../helpers/server.js';
import { addUser, adminAuth, api, basic, useAuthServer } from './support.js';

const exec = promisify(execFile);

describe("berth project / member / robot CLI: the same answers as /api/v1, on the server's own data", () => {
  const reg = useAuthServer('basic');

  /** Runs `berth <args>` on the server's data directory and metadata database; rejects on a non-zero exit. */
  async function berth(args: string[]): Promise<string> {
    const { driver, url } = reg.server.config.metadata;
    const env = {
      ...process.env,
      BERTH_DATA_DIR: reg.server.dataDir,
      BERTH_AUTH_MODE: 'basic',
      BERTH_METADATA_DRIVER: driver,
      ...(url ? { BERTH_METADATA_URL: url } : {}),
    };
    return (await exec(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], { cwd: ROOT, env })).stdout;
  }
  const json = async <T>(args: string[]): Promise<T> => JSON.parse(await berth([...args, '--json'])) as T;
  const apiJson = async (route: string): Promise<unknown> => {
    const res = await api(reg.server, 'GET', route, adminAuth());
    assert.equal(res.status, 200, route);
    return res.json();
  };

  it('project add, then project list (human and --json) shows it; --json equals GET /api/v1/projects', async () => {
    assert.match(await berth(['project', 'add', 'web']), /created private project web/);
    assert.match(await berth(['project', 'add', 'docs', '--public']), /created public project docs/);
    const listed = await json<{ name: string; public: boolean }[]>(['project', 'list']);
    assert.deepEqual(listed.map((p) => [p.name, p.public]).sort(), [
      ['docs', true],
      ['web', false],
    ]);
    assert.deepEqual(listed, await apiJson('/projects'));
    const human = (await berth(['project', 'list'])).trim().split('\n');
    assert.match(human[0]!, /^NAME\s+VISIBILITY\s+CREATED\s+BY$/);
    assert.ok(
      human.some((line) => /^web\s+private\s+\S+\s+cli:/.test(line)),
      human.join('\n'),
    );
  });

  it('member add / list / rm: --json equals GET /api/v1/projects/<p>/members, and the role takes effect on pushes', async () => {
    await addUser(reg.server, 'dora', 'dora-password-1');
    assert.match(await berth(['member', 'add', 'web', 'dora', 'developer']), /dora in web: developer/);
    const members = await json<unknown[]>(['member', 'list', 'web']);
    assert.deepEqual(members, [{ project: 'web', username: 'dora', role: 'developer' }]);
    assert.deepEqual(members, await apiJson('/projects/web/members'));
    assert.match(await berth(['member', 'list', 'web']), /^USER\s+ROLE\ndora\s+developer\n$/);
    const dora = new RegistryClient(reg.url, { authorization: basic('dora', 'dora-password-1') });
    assert.equal((await dora.pushBlob('web/site', makeImage().config)).status, 201);

    assert.match(await berth(['member', 'rm', 'web', 'dora']), /removed dora from web/);
    assert.deepEqual(await json(['member', 'list', 'web']), []);
    assert.equal((await dora.pushBlob('web/site', makeImage().config)).status, 403, 'no longer a member: no push');
  });

  it('robot add / list / rm: --json lists never show a secret; the robot works until rm revokes it', async () => {
    const created = await json<{ name: string; secret: string }>([
      'robot',
      'add',
      'web',
      'deploy',
      '--actions',
      'pull,push',
      '--description',
      'the deploy job',
    ]);
    assert.equal(created.name, 'robot$web+deploy');
    const robot = new RegistryClient(reg.url, { authorization: basic(created.name, created.secret) });
    await robot.pushImage('web/site', 'v1', makeImage());

    const listed = await json<Record<string, unknown>[]>(['robot', 'list', 'web']);
    assert.deepEqual(listed, await apiJson('/projects/web/robots'));
    assert.deepEqual(
      listed.map((r) => [r.name, r.description]),
      [['robot$web+deploy', 'the deploy job']],
    );
    for (const r of listed) assert.ok(!('secret' in r) && !('secretHash' in r), 'no secret in a listing');
    assert.match(await berth(['robot', 'list']), /^ROBOT\s+EXPIRES\s+PERMISSIONS\nrobot\$web\+deploy\s+never\s+web\/\*:pull,push\n$/);

    const shown = await json<{ project: { name: string }; members: unknown[]; robots: { name: string }[] }>(['project', 'show', 'web']);
    assert.equal(shown.project.name, 'web');
    assert.deepEqual(
      shown.robots.map((r) => r.name),
      ['robot$web+deploy'],
    );

    assert.match(await berth(['robot', 'rm', 'web+deploy']), /deleted robot\$web\+deploy/);
    assert.deepEqual(await json(['robot', 'list', 'web']), []);
    const res = await robot.fetch('/v2/');
    assert.equal(res.status, 401, 'a revoked robot cannot log in');
  });

  it('project rm refuses a project that still has repositories, deletes an empty one; unknown names fail with exit 1 and a message', async () => {
    await assert.rejects(berth(['project', 'rm', 'web']), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /project web still has repositories; delete them first/);
      return true;
    });
    assert.match(await berth(['project', 'rm', 'docs']), /deleted project docs/);
    assert.deepEqual(
      (await json<{ name: string }[]>(['project', 'list'])).map((p) => p.name),
      ['web'],
    );
    await assert.rejects(berth(['project', 'show', 'docs']), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /project docs not found/);
      return true;
    });
    await assert.rejects(berth(['robot', 'rm', 'robot$web+nobody']), /robot robot\$web\+nobody not found/);
    await assert.rejects(berth(['member', 'add', 'web', 'nobody', 'developer']), /user nobody not found/);
  });
});
