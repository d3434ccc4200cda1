import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { RegistryClient, makeImage } from '../helpers/registry-client.js';
import { ROOT } from '../helpers/server.js';
import { basic, useAuthServer } from './support.js';

const exec = promisify(execFile);

describe("berth user / project / robot CLI against a running server's data", () => {
  const reg = useAuthServer('basic');

  /** Runs `berth <args>` on the same data directory (and so the same SQLite DB) as the server. */
  async function berth(args: string[], stdin?: string): Promise<string> {
    const child = exec(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...metadataEnv(), BERTH_DATA_DIR: reg.server.dataDir, BERTH_AUTH_MODE: 'basic' },
    });
    if (stdin !== undefined) child.child.stdin!.end(stdin);
    return (await child).stdout;
  }

  /** The server's metadata back end (SQLite in its data dir, or the suite's PostgreSQL database). */
  function metadataEnv(): NodeJS.ProcessEnv {
    const { driver, url } = reg.server.config.metadata;
    return { BERTH_METADATA_DRIVER: driver, ...(url ? { BERTH_METADATA_URL: url } : {}) };
  }

  const status = async (user: string, password: string) =>
    (await fetch(`${reg.url}/v2/`, { headers: { authorization: basic(user, password) } })).status;

  it('user add (password from stdin) creates an account the server accepts at once; user list shows it', async () => {
    assert.match(await berth(['user', 'add', 'carl', '--password-stdin'], 'carl-password\n'), /created user carl/);
    assert.equal(await status('carl', 'carl-password'), 200);
    assert.deepEqual((await berth(['user', 'list'])).trim().split('\n'), ['admin\tadmin', 'carl']);
  });

  it('user add without a password generates one and prints it once', async () => {
    const out = await berth(['user', 'add', 'gina', '--admin']);
    const password = /password: (\S+)/.exec(out)?.[1];
    assert.ok(password);
    assert.equal(await status('gina', password), 200);
  });

  it('user passwd replaces the password; the old one stops working', async () => {
    await berth(['user', 'passwd', 'carl', '--password', 'carl-password-2']);
    assert.equal(await status('carl', 'carl-password'), 401);
    assert.equal(await status('carl', 'carl-password-2'), 200);
  });

  it('project add, project member and robot add set up a project a robot can push to', async () => {
    await berth(['project', 'add', 'team']);
    assert.match(await berth(['project', 'member', 'team', 'carl', 'developer']), /carl in team: developer/);
    const carl = new RegistryClient(reg.url, { authorization: basic('carl', 'carl-password-2') });
    assert.equal((await carl.pushBlob('team/app', makeImage().config)).status, 201);
    const out = await berth(['robot', 'add', 'team', 'ci', '--actions', 'pull,push']);
    const [, name, secret] = /created (\S+)\nsecret: (\S+)/.exec(out) ?? [];
    assert.equal(name, 'robot$team+ci');
    const robot = new RegistryClient(reg.url, { authorization: basic(name!, secret!) });
    await robot.pushImage('team/app', 'v1', makeImage());
  });

  it('user rm deletes the account', async () => {
    await berth(['user', 'rm', 'carl']);
    assert.equal(await status('carl', 'carl-password-2'), 401);
  });

  it('invalid input fails with a non-zero exit and a message', async () => {
    await assert.rejects(berth(['user', 'add', 'Bad Name', '--password', 'whatever-long']), /username must be/);
    await assert.rejects(berth(['project', 'member', 'team', 'admin', 'overlord']), /role must be one of/);
  });
});
