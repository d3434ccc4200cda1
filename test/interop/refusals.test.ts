import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, addMember, addProject, addUser, adminAuth, api, useAuthServer } from '../auth/support.js';
import { ClientSandbox, registryHost, requireTools, type RunResult } from '../helpers/clients.js';
import { createLayoutImage } from '../helpers/images.js';
import { useServer } from '../helpers/use-server.js';

/**
 * How refusals reach the user through real clients (skopeo 1.9 and podman 4.3, both on
 * containers/image): each case asserts that the client's stderr carries Berth's own message.
 *
 * What they printed before Berth shaped these answers (recorded with the same commands):
 * - anonymous push: the blob-reuse HEAD got a bodiless 401 error="insufficient_scope", shown as
 *   "denied: requested access to the resource is denied / error parsing HTTP 401 response
 *   body: unexpected end of JSON input"; now the challenge's error_description carries
 *   "anonymous may not pull repository alice/x: log in first" (the HEAD needs pull).
 * - push to a project without a role: the HEAD got a bodiless 403, shown as "failed to read
 *   from destination repository alice/x: 403 (Forbidden)"; a HEAD refusal is now a 401 with
 *   the reason in error_description: "denied: bob may not pull repository alice/x".
 * - robot without push: the HEAD passes (it may pull), the POST's 403 body already read
 *   "denied: robot$alice+reader may not push repository alice/x" (unchanged).
 * - anonymous pull of a private repository: "denied: requested access to the resource is
 *   denied / unauthorized: token lacks pull access to repository:alice/app:pull"; now
 *   "anonymous may not pull repository alice/app: log in first".
 * - a robot granted pull,push listing tags: "fetching tags list: invalid status code from
 *   registry 403 (Forbidden)" (skopeo 1.9 reads no body there); a robot's pull now includes
 *   listing tags, so it works.
 * - a policy refusal (read-only mode here; quotas refuse the same way, through deny()):
 *   "unsupported: the registry is in read-only mode … (policy: read-only)" (unchanged: every
 *   non-HEAD error answer has the spec's body).
 */

const DEST_FLAGS = ['--src-tls-verify=false', '--dest-tls-verify=false'];

function assertRefused(result: RunResult, message: RegExp): void {
  assert.notEqual(result.code, 0, `${result.command} should have failed`);
  assert.match(result.stderr, message, result.stderr);
}

describe('refusals as skopeo and podman print them (auth.mode token)', () => {
  const reg = useAuthServer('token');
  let sandbox: ClientSandbox;
  let host: string;
  let layout: string;
  let imageId: string;
  let reader: { name: string; secret: string };
  let ci: { name: string; secret: string; permissions: { actions: string[]; gives: string[] }[] };

  before(async () => {
    requireTools(['skopeo', 'podman']);
    sandbox = ClientSandbox.create();
    host = registryHost(reg.url);
    layout = sandbox.path('layout');
    await createLayoutImage(layout, 'src', [1024]);
    await addUser(reg.server, 'alice', 'alice-password');
    await addUser(reg.server, 'bob', 'bob-password');
    await addProject(reg.server, 'alice');
    await addMember(reg.server, 'alice', 'alice', 'developer');
    const robot = async (name: string, actions: string[]) => {
      const res = await api(reg.server, 'POST', '/projects/alice/robots', adminAuth(), {
        name,
        permissions: [{ project: 'alice', repository: '*', actions }],
      });
      assert.equal(res.status, 201, await res.clone().text());
      return res.json() as Promise<never>;
    };
    reader = await robot('reader', ['pull']);
    ci = await robot('ci', ['pull', 'push']);
    imageId = (await sandbox.podman(['pull', '--quiet', `oci:${layout}:src`])).stdout.trim();
    const seed = await sandbox.skopeo(
      ['copy', ...DEST_FLAGS, '--dest-creds', `admin:${ADMIN_PASSWORD}`, `oci:${layout}:src`, `docker://${host}/alice/app:v1`],
      { allowFailure: true },
    );
    assert.equal(seed.code, 0, seed.stderr);
  });
  after(() => sandbox?.destroy());

  const skopeoPush = (creds: string[], repo: string) =>
    sandbox.skopeo(['copy', ...DEST_FLAGS, ...creds, `oci:${layout}:src`, `docker://${host}/${repo}:v1`], { allowFailure: true });
  const podmanPush = (creds: string[], repo: string) =>
    sandbox.podman(['push', '--tls-verify=false', ...creds, imageId, `docker://${host}/${repo}:v1`], { allowFailure: true });

  // A push starts with a HEAD on the blob (may it be reused?), which needs pull: that is the
  // refusal the user sees, with the HEAD's scope in its message.
  it('anonymous push: both clients print "anonymous may not pull repository …: log in first", not only "requested access to the resource is denied"', async () => {
    const message = /denied: anonymous may not pull repository alice\/x: log in first/;
    assertRefused(await skopeoPush(['--dest-no-creds'], 'alice/x'), message);
    assertRefused(await podmanPush([], 'alice/x'), message);
  });

  it('push to a project without a role: both clients print "bob may not pull repository …" instead of "403 (Forbidden)"', async () => {
    const message = /denied: bob may not pull repository alice\/x/;
    const skopeo = await skopeoPush(['--dest-creds', 'bob:bob-password'], 'alice/x');
    assertRefused(skopeo, message);
    assert.doesNotMatch(skopeo.stderr, /403 \(Forbidden\)/);
    assertRefused(await podmanPush(['--creds', 'bob:bob-password'], 'alice/x'), message);
  });

  it('a robot without push: both clients print "robot$… may not push repository …"', async () => {
    const message = /denied: robot\$alice\+reader may not push repository alice\/x/;
    assertRefused(await skopeoPush(['--dest-creds', `${reader.name}:${reader.secret}`], 'alice/x'), message);
    assertRefused(await podmanPush(['--creds', `${reader.name}:${reader.secret}`], 'alice/x'), message);
  });

  it('pull of a private repository: anonymous is told to log in, a stranger that it may not pull', async () => {
    const anonymous = await sandbox.skopeo(['inspect', '--tls-verify=false', '--no-creds', `docker://${host}/alice/app:v1`], {
      allowFailure: true,
    });
    assertRefused(anonymous, /anonymous may not pull repository alice\/app: log in first/);
    const anonymousPodman = await sandbox.podman(['pull', '--tls-verify=false', `${host}/alice/app:v1`], {
      allowFailure: true,
      store: 'pull',
    });
    assertRefused(anonymousPodman, /anonymous may not pull repository alice\/app: log in first/);
    const stranger = await sandbox.podman(['pull', '--tls-verify=false', '--creds', 'bob:bob-password', `${host}/alice/app:v1`], {
      allowFailure: true,
      store: 'pull',
    });
    assertRefused(stranger, /denied: bob may not pull repository alice\/app/);
  });

  it('a robot granted pull,push lists tags with skopeo list-tags (pull includes listing tags), and the robot API says so in "gives"', async () => {
    assert.deepEqual(ci.permissions[0]!.actions, ['pull', 'push']);
    assert.deepEqual(ci.permissions[0]!.gives, ['pull', 'list-tags', 'push']);
    const listed = await sandbox.skopeo(
      ['list-tags', '--tls-verify=false', '--creds', `${ci.name}:${ci.secret}`, `docker://${host}/alice/app`],
      { allowFailure: true },
    );
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual((JSON.parse(listed.stdout) as { Tags: string[] }).Tags, ['v1']);
    // A pull-only robot too; a stranger still may not.
    const pullOnly = await sandbox.skopeo(
      ['list-tags', '--tls-verify=false', '--creds', `${reader.name}:${reader.secret}`, `docker://${host}/alice/app`],
      { allowFailure: true },
    );
    assert.equal(pullOnly.code, 0, pullOnly.stderr);
    const stranger = await sandbox.skopeo(
      ['list-tags', '--tls-verify=false', '--creds', 'bob:bob-password', `docker://${host}/alice/app`],
      { allowFailure: true },
    );
    assert.notEqual(stranger.code, 0);
  });
});

describe('a policy refusal (read-only mode; quotas refuse through the same deny()) as skopeo and podman print it', () => {
  const reg = useServer({ storage: { maintenance: { readonly: { enabled: true } } } });
  let sandbox: ClientSandbox;
  before(() => {
    requireTools(['skopeo', 'podman']);
    sandbox = ClientSandbox.create();
  });
  after(() => sandbox?.destroy());

  it("both clients print the policy's message and name", async () => {
    const host = registryHost(reg.url);
    const layout = sandbox.path('layout');
    await createLayoutImage(layout, 'src', [512]);
    const message = /the registry is in read-only mode .*\(policy: read-only\)/;
    assertRefused(
      await sandbox.skopeo(['copy', ...DEST_FLAGS, `oci:${layout}:src`, `docker://${host}/ro/app:v1`], { allowFailure: true }),
      message,
    );
    const id = (await sandbox.podman(['pull', '--quiet', `oci:${layout}:src`])).stdout.trim();
    assertRefused(await sandbox.podman(['push', '--tls-verify=false', id, `docker://${host}/ro/app:v1`], { allowFailure: true }), message);
  });
});
