import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, adminAuth, api, auditLog, useAuthServer } from '../auth/support.js';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { createLayoutImage } from '../helpers/images.js';
import { runGc } from '../gc/support.js';
import { addRule, clientAs, refusal, seedTeam, smallImage, USERS, variant } from './tags-support.js';

/**
 * Immutable tags over HTTP (auth.mode basic): rule CRUD and who may do it, the refusals of a
 * move, a tag delete and a manifest delete with the rule named, an idempotent re-push, rules
 * changed on another replica applying within a second, GC, and what skopeo prints.
 */
describe('immutable tags', () => {
  const reg = useAuthServer('basic', {}, { gc: { enabled: false, graceperiod: 0 } }, { setup: seedTeam });
  const image = smallImage();
  const other = variant(image, 'b');
  let ruleId: number;

  before(async () => {
    ruleId = await addRule(reg.server, USERS.owner, 'team', { repository: { pattern: '**' }, tag: { pattern: 'v*' } });
    const dev = clientAs(reg.server, USERS.dev);
    await dev.pushImage('team/app', 'v1', image);
    await dev.pushImage('team/app', 'latest', image);
  });

  it('lists the rule to project members, with its selectors and creator', async () => {
    const res = await api(reg.server, 'GET', '/projects/team/immutable-rules', USERS.guest);
    assert.equal(res.status, 200);
    const [rule] = (await res.json()) as { id: number; repository: unknown; tag: unknown; disabled: boolean; createdBy: string }[];
    assert.deepEqual(
      { ...rule, createdAt: undefined },
      {
        id: ruleId,
        project: 'team',
        repository: { pattern: '**', decoration: 'matches' },
        tag: { pattern: 'v*', decoration: 'matches' },
        disabled: false,
        createdBy: 'owner',
        createdAt: undefined,
      },
    );
  });

  it('refuses moving an immutable tag with 403 DENIED naming the tag and the rule; the tag stays', async () => {
    const dev = clientAs(reg.server, USERS.dev);
    const error = await refusal(await dev.pushManifest('team/app', 'v1', other.manifest));
    assert.equal(error.status, 403);
    assert.equal(error.code, 'DENIED');
    assert.match(
      error.message,
      new RegExp(`'team/app:v1' configured as immutable by rule ${ruleId} \\(repository matches \\*\\*, tag matches v\\*\\)`),
    );
    assert.match(error.message, /policy: immutable-tags/);
    const head = await dev.fetch('/v2/team/app/manifests/v1', { method: 'HEAD' });
    assert.equal(head.headers.get('docker-content-digest'), image.manifest.digest);
  });

  it('allows pushing the same digest again (an idempotent CI retry) and moving tags no rule matches', async () => {
    const dev = clientAs(reg.server, USERS.dev);
    assert.equal((await dev.pushManifest('team/app', 'v1', image.manifest)).status, 201);
    assert.equal((await dev.pushManifest('team/app', 'latest', other.manifest)).status, 201);
    assert.equal((await dev.pushManifest('team/app', 'latest', image.manifest)).status, 201);
  });

  it('refuses deleting the tag and deleting the manifest it points to', async () => {
    const admin = clientAs(reg.server, adminAuth());
    const tagDelete = await refusal(await admin.fetch('/v2/team/app/manifests/v1', { method: 'DELETE' }));
    assert.equal(tagDelete.status, 403);
    assert.match(tagDelete.message, /'team\/app:v1' configured as immutable .*it cannot be deleted/);
    const manifestDelete = await refusal(await admin.fetch(`/v2/team/app/manifests/${image.manifest.digest}`, { method: 'DELETE' }));
    assert.equal(manifestDelete.status, 403);
    assert.match(
      manifestDelete.message,
      new RegExp(`'team/app:v1' configured as immutable .*manifest ${image.manifest.digest} cannot be deleted`),
    );
    assert.equal((await admin.fetch('/v2/team/app/manifests/v1', { method: 'HEAD' })).status, 200);
  });

  it('GC keeps the manifest an immutable tag points to', async () => {
    await runGc(reg.server);
    assert.equal(
      (await clientAs(reg.server, USERS.dev).fetch(`/v2/team/app/manifests/${image.manifest.digest}`, { method: 'HEAD' })).status,
      200,
    );
  });

  it('a rule that excludes the repository frees the tag at once; changes are audited', async () => {
    const put = await api(reg.server, 'PUT', `/projects/team/immutable-rules/${ruleId}`, USERS.owner, {
      repository: { pattern: 'app', decoration: 'excludes' },
      tag: { pattern: 'v*' },
    });
    assert.equal(put.status, 204, await put.clone().text());
    const dev = clientAs(reg.server, USERS.dev);
    assert.equal((await dev.pushManifest('team/app', 'v1', other.manifest)).status, 201, 'team/app is excluded now');
    assert.equal((await dev.pushImage('team/tools', 'v1', image)).status, 201);
    assert.equal((await refusal(await dev.pushManifest('team/tools', 'v1', other.manifest))).status, 403, 'team/tools still matches');
    const entries = (await auditLog(reg.server)).filter((e) => e.action.startsWith('immutable-rule.'));
    assert.deepEqual(
      entries.map((e) => [e.actor, e.action, e.target]),
      [
        ['owner', 'immutable-rule.create', `team/immutable-rules/${ruleId}`],
        ['owner', 'immutable-rule.update', `team/immutable-rules/${ruleId}`],
      ],
    );
  });

  it('a rule written by another replica applies within a second (version row, no restart)', async () => {
    const { server } = reg;
    // Written straight through the store, as another replica's service would: this process's cache is not told.
    await server.stores.metadata.transaction((tx) =>
      server.stores.tags
        .within(tx)
        .addRule(
          'team',
          { repository: { pattern: 'app', decoration: 'matches' }, tag: { pattern: 'pinned', decoration: 'matches' }, disabled: false },
          'elsewhere',
          new Date(),
        ),
    );
    const dev = clientAs(server, USERS.dev);
    await dev.pushManifest('team/app', 'pinned', image.manifest);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal((await refusal(await dev.pushManifest('team/app', 'pinned', other.manifest))).status, 403);
  });

  describe('who may change rules', () => {
    const rule = { tag: { pattern: 'x*' } };
    it("another project's admin gets 404 for this project, reading or writing", async () => {
      for (const [method, path, body] of [
        ['GET', '/projects/team/immutable-rules', undefined],
        ['POST', '/projects/team/immutable-rules', rule],
        ['DELETE', `/projects/team/immutable-rules/${ruleId}`, undefined],
      ] as const) {
        const res = await api(reg.server, method, path, USERS.outsider, body);
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.equal((await refusal(res)).code, 'NOT_FOUND');
      }
    });
    it('a developer may read but not change them (403); anonymous gets 401', async () => {
      assert.equal((await api(reg.server, 'POST', '/projects/team/immutable-rules', USERS.dev, rule)).status, 403);
      assert.equal((await api(reg.server, 'PUT', `/projects/team/immutable-rules/${ruleId}`, USERS.dev, rule)).status, 403);
      assert.equal((await api(reg.server, 'DELETE', `/projects/team/immutable-rules/${ruleId}`, USERS.guest)).status, 403);
      assert.equal((await fetch(`${reg.url}/api/v1/projects/team/immutable-rules`)).status, 401);
    });
    it('a malformed rule is 400, an unknown rule 404', async () => {
      const bad = await refusal(
        await api(reg.server, 'POST', '/projects/team/immutable-rules', USERS.owner, { tag: { pattern: 'v*', decoration: 'sometimes' } }),
      );
      assert.equal(bad.status, 400);
      assert.equal(bad.code, 'INVALID_ARGUMENT');
      assert.equal((await api(reg.server, 'DELETE', '/projects/team/immutable-rules/999999', USERS.owner)).status, 404);
      assert.equal((await api(reg.server, 'PUT', '/projects/team/immutable-rules/abc', USERS.owner, rule)).status, 404);
    });
    it('the project admin deletes a rule, audited', async () => {
      const id = await addRule(reg.server, USERS.owner, 'team', rule);
      assert.equal((await api(reg.server, 'DELETE', `/projects/team/immutable-rules/${id}`, USERS.owner)).status, 204);
      const entry = (await auditLog(reg.server)).find((e) => e.action === 'immutable-rule.delete');
      assert.equal(entry?.target, `team/immutable-rules/${id}`);
    });
  });

  describe('as skopeo prints it', () => {
    let sandbox: ClientSandbox;
    before(async () => {
      requireTools(['skopeo']);
      sandbox = ClientSandbox.create();
      await createLayoutImage(sandbox.path('a'), 'a', [512]);
      await createLayoutImage(sandbox.path('b'), 'b', [512]);
    });
    after(() => sandbox?.destroy());

    it("overwriting an immutable tag fails with Berth's message; copying the same image again succeeds", async () => {
      const copy = (from: string) =>
        sandbox.skopeo(
          [
            'copy',
            '--dest-tls-verify=false',
            '--dest-creds',
            `admin:${ADMIN_PASSWORD}`,
            `oci:${sandbox.path(from)}:${from}`,
            `docker://${registryHost(reg.url)}/team/cli:v9`,
          ],
          { allowFailure: true },
        );
      const first = await copy('a');
      assert.equal(first.code, 0, first.stderr);
      assert.equal((await copy('a')).code, 0, 'the same digest again');
      const refused = await copy('b');
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /'team\/cli:v9' configured as immutable by rule \d+/, refused.stderr);
    });
  });
});
