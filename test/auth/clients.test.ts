import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { createLayoutImage } from '../helpers/images.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { ADMIN_PASSWORD, addMember, addProject, addUser, adminAuth, api, basic, bearer, token } from './support.js';

/** Real clients (podman, skopeo) logging in to a real `berth serve`: token mode, then basic mode. */

async function startAuthProcess(mode: 'token' | 'basic'): Promise<{ berth: BerthProcess; dataDir: string }> {
  const dataDir = tempDir();
  const berth = await startBerthProcess({ BERTH_DATA_DIR: dataDir, BERTH_AUTH_MODE: mode, BERTH_ADMIN_PASSWORD: ADMIN_PASSWORD });
  return { berth, dataDir };
}

describe('podman and skopeo with auth.mode token', () => {
  let berth: BerthProcess;
  let dataDir: string;
  let sandbox: ClientSandbox;
  let host: string;
  let layout: string;

  before(async () => {
    requireTools(['podman', 'skopeo']);
    ({ berth, dataDir } = await startAuthProcess('token'));
    sandbox = ClientSandbox.create();
    host = registryHost(berth.url);
    layout = sandbox.path('layout');
    await createLayoutImage(layout, 'src', [4096, 2048]);
    await addUser(berth, 'alice', 'alice-password');
    await addUser(berth, 'bob', 'bob-password');
    await addProject(berth, 'alice');
    await addMember(berth, 'alice', 'alice', 'developer');
    await addProject(berth, 'pub', true);
  });
  after(async () => {
    await berth?.stop();
    sandbox?.destroy();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const skopeoCopy = (src: string, dest: string, extra: string[] = []) =>
    sandbox.skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...extra, src, dest], { allowFailure: true });

  it('berth serve printed no generated password when BERTH_ADMIN_PASSWORD was given, and admin works', async () => {
    assert.doesNotMatch(berth.output(), /created with password/);
    assert.equal((await api(berth, 'GET', '/me', adminAuth())).status, 200);
  });

  it('podman login with a wrong password fails', async () => {
    const res = await sandbox.podman(['login', '--tls-verify=false', '-u', 'alice', '-p', 'wrong-password', host], { allowFailure: true });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /invalid username\/password|unauthorized/i);
  });

  it('podman login, push and pull into a fresh store', async () => {
    const login = await sandbox.podman(['login', '--tls-verify=false', '-u', 'alice', '-p', 'alice-password', host]);
    assert.match(login.stdout, /Login Succeeded/i);
    await sandbox.podman(['pull', `oci:${layout}:src`], { store: 'a' });
    await sandbox.podman(['tag', `oci:${layout}:src`, `${host}/alice/app:v1`], { store: 'a', allowFailure: true });
    const images = await sandbox.podman(['images', '--format', '{{.ID}}'], { store: 'a' });
    const id = images.stdout.trim().split('\n')[0]!;
    await sandbox.podman(['push', '--tls-verify=false', id, `${host}/alice/app:v1`], { store: 'a' });
    await sandbox.podman(['pull', '--tls-verify=false', `${host}/alice/app:v1`], { store: 'b' });
    const pulled = await sandbox.podman(['images', '--format', '{{.ID}}'], { store: 'b' });
    assert.equal(pulled.stdout.trim(), id);
    await sandbox.podman(['logout', host]);
  });

  it('skopeo copy --dest-creds pushes, and anonymous skopeo can pull only from a public project', async () => {
    const push = await skopeoCopy(`oci:${layout}:src`, `docker://${host}/pub/tool:v1`, ['--dest-creds', `admin:${ADMIN_PASSWORD}`]);
    assert.equal(push.code, 0, push.stderr);
    const anonPull = await skopeoCopy(`docker://${host}/pub/tool:v1`, `oci:${sandbox.path('anon')}:x`, ['--src-no-creds']);
    assert.equal(anonPull.code, 0, anonPull.stderr);
  });

  it("denied push to someone else's project: the client fails with 403, and the upload is DENIED with a clear message", async () => {
    const res = await skopeoCopy(`oci:${layout}:src`, `docker://${host}/alice/stolen:v1`, ['--dest-creds', 'bob:bob-password']);
    assert.notEqual(res.code, 0);
    // skopeo's first request is a HEAD (blob reuse check), which has no body: it shows the status.
    assert.match(res.stderr, /403|denied/i);
    const jwt = await token(berth, ['repository:alice/stolen:pull,push'], basic('bob', 'bob-password'));
    const post = await fetch(`${berth.url}/v2/alice/stolen/blobs/uploads/`, { method: 'POST', headers: { authorization: bearer(jwt) } });
    assert.equal(post.status, 403);
    const body = (await post.json()) as { errors: { code: string; message: string }[] };
    assert.deepEqual(
      body.errors.map((e) => e.code),
      ['DENIED'],
    );
    assert.match(body.errors[0]!.message, /bob may not pull, push repository alice\/stolen/);
  });

  it('denied pull of a private project: unauthorized for anonymous, denied for a signed-in stranger', async () => {
    const anon = await sandbox.skopeo(['inspect', '--tls-verify=false', '--no-creds', `docker://${host}/alice/app:v1`], {
      allowFailure: true,
    });
    assert.notEqual(anon.code, 0);
    assert.match(anon.stderr, /unauthorized|authentication required/i);
    const bob = await sandbox.skopeo(['inspect', '--tls-verify=false', '--creds', 'bob:bob-password', `docker://${host}/alice/app:v1`], {
      allowFailure: true,
    });
    assert.notEqual(bob.code, 0);
    assert.match(bob.stderr, /denied/i);
  });

  it('a robot account logs in with podman and pushes within its grant', async () => {
    const res = await api(berth, 'POST', '/projects/alice/robots', adminAuth(), {
      name: 'ci',
      permissions: [{ project: 'alice', repository: '*', actions: ['pull', 'push'] }],
    });
    assert.equal(res.status, 201);
    const robot = (await res.json()) as { name: string; secret: string };
    await sandbox.podman(['login', '--tls-verify=false', '-u', robot.name, '-p', robot.secret, host]);
    const copy = await skopeoCopy(`oci:${layout}:src`, `docker://${host}/alice/from-robot:v1`);
    assert.equal(copy.code, 0, copy.stderr);
    const outside = await skopeoCopy(`oci:${layout}:src`, `docker://${host}/pub/from-robot:v1`);
    assert.notEqual(outside.code, 0, 'the robot may not push outside its project');
    await sandbox.podman(['logout', host]);
  });
});

describe('skopeo with auth.mode basic', () => {
  let berth: BerthProcess;
  let dataDir: string;
  let sandbox: ClientSandbox;

  before(async () => {
    requireTools(['skopeo']);
    ({ berth, dataDir } = await startAuthProcess('basic'));
    sandbox = ClientSandbox.create();
  });
  after(async () => {
    await berth?.stop();
    sandbox?.destroy();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('skopeo copy --dest-creds pushes and pulls back; wrong credentials are refused', async () => {
    const host = registryHost(berth.url);
    const layout = sandbox.path('layout');
    await createLayoutImage(layout, 'src', [1024]);
    const flags = ['--src-tls-verify=false', '--dest-tls-verify=false'];
    const push = await sandbox.skopeo(
      ['copy', ...flags, '--dest-creds', `admin:${ADMIN_PASSWORD}`, `oci:${layout}:src`, `docker://${host}/team/app:v1`],
      { allowFailure: true },
    );
    assert.equal(push.code, 0, push.stderr);
    const pull = await sandbox.skopeo(
      ['copy', ...flags, '--src-creds', `admin:${ADMIN_PASSWORD}`, `docker://${host}/team/app:v1`, `oci:${sandbox.path('out')}:x`],
      { allowFailure: true },
    );
    assert.equal(pull.code, 0, pull.stderr);
    const wrong = await sandbox.skopeo(
      ['copy', ...flags, '--dest-creds', 'admin:not-the-password', `oci:${layout}:src`, `docker://${host}/team/app:v2`],
      { allowFailure: true },
    );
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /unauthorized|invalid username or password/i);
  });
});
