import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { addMember, addProject, addUser, adminAuth, api, basic, useAuthServer } from '../auth/support.js';
import { runGc } from '../gc/support.js';
import { RegistryClient, makeBlob, makeImage, type Image } from '../helpers/registry-client.js';
import { QuotaService } from '../../src/quotas/service.js';
import { eventually, getQuota, outboxEvents, setQuota } from './quota-support.js';

/** Bytes an image adds to a project that holds none of it: config, layers and manifest. */
function imageBytes(image: Image): number {
  return image.config.size + image.layers.reduce((sum, l) => sum + l.size, 0) + image.manifest.size;
}

async function refusal(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { errors: { code: string; message: string }[] };
  return { status: res.status, code: body.errors[0]!.code, message: body.errors[0]!.message };
}

/** Berth's refusal text for sizes under 1 KiB (larger ones add a readable size in parentheses). */
function exceeded(project: string, requested: number, used: number, limit: number): string {
  return `storage quota of project ${project} exceeded: adding ${requested} bytes to the current usage of ${used} bytes would exceed the limit of ${limit} bytes (policy: quota)`;
}

describe('storage quotas (over HTTP)', () => {
  const reg = useAuthServer('basic', {}, { gc: { enabled: false, graceperiod: 0 }, storage: { delete: { enabled: true } } });
  let admin: RegistryClient;

  before(async () => {
    admin = new RegistryClient(reg.url, { authorization: adminAuth() });
    for (const project of ['team', 'other', 'full', 'events', 'api']) await addProject(reg.server, project);
    await addUser(reg.server, 'dev', 'dev-password-1');
    await addUser(reg.server, 'stranger', 'stranger-password-1');
    await addMember(reg.server, 'api', 'dev', 'developer');
    await addMember(reg.server, 'other', 'stranger', 'project-admin');
  });

  it('counts a digest once per project however many repositories hold it, and in each project that holds it', async () => {
    const image = makeImage({ layers: 2, layerSize: 300 });
    await admin.pushImage('team/a', 'v1', image);
    assert.equal((await getQuota(reg.server, 'team')).used, imageBytes(image));
    await admin.pushImage('team/b', 'v1', image);
    await admin.pushImage('team/a', 'v2', image);
    assert.equal(
      (await getQuota(reg.server, 'team')).used,
      imageBytes(image),
      'the same digests in a second repository and under a second tag count nothing more',
    );
    await admin.pushImage('other/x', 'v1', image);
    assert.equal((await getQuota(reg.server, 'other')).used, imageBytes(image));
    assert.deepEqual(await getQuota(reg.server, 'team'), { project: 'team', used: imageBytes(image), limit: null, percent: null });
  });

  it('refuses a blob upload, a mount and a manifest PUT that would exceed the limit with 403 DENIED naming project, bytes requested, used and limit', async () => {
    const image = makeImage({ layers: 1, layerSize: 200 });
    for (const blob of [image.config, ...image.layers]) assert.equal((await admin.pushBlob('full/app', blob)).status, 201);
    const used = image.config.size + 200;
    await setQuota(reg.server, 'full', used + 50);

    const big = makeBlob(100);
    assert.deepEqual(await refusal(await admin.pushBlob('full/app', big)), {
      status: 403,
      code: 'DENIED',
      message: exceeded('full', 100, used, used + 50),
    });
    // Chunked: refused at the final PUT, before the bytes move.
    assert.deepEqual(await refusal(await admin.pushBlobChunked('full/app', big, 40)), {
      status: 403,
      code: 'DENIED',
      message: exceeded('full', 100, used, used + 50),
    });

    const elsewhere = makeBlob(120);
    assert.equal((await admin.pushBlob('other/src', elsewhere)).status, 201);
    const mount = await admin.fetch(`/v2/full/app/blobs/uploads/?mount=${elsewhere.digest}&from=other/src`, { method: 'POST' });
    assert.deepEqual(await refusal(mount), { status: 403, code: 'DENIED', message: exceeded('full', 120, used, used + 50) });

    assert.ok(image.manifest.size > 50, 'the manifest is larger than the room left');
    const manifest = await admin.pushManifest('full/app', 'v1', image.manifest);
    assert.deepEqual(await refusal(manifest), {
      status: 403,
      code: 'DENIED',
      message: exceeded('full', image.manifest.size, used, used + 50),
    });

    // Content the project already holds costs nothing: a mount of it into another repository passes at the limit.
    await setQuota(reg.server, 'full', used);
    const remount = await admin.fetch(`/v2/full/copy/blobs/uploads/?mount=${image.layers[0]!.digest}&from=full/app`, { method: 'POST' });
    assert.equal(remount.status, 201);
    assert.equal((await getQuota(reg.server, 'full')).used, used);

    // With room for the manifest the push goes through.
    await setQuota(reg.server, 'full', used + image.manifest.size);
    assert.equal((await admin.pushManifest('full/app', 'v1', image.manifest)).status, 201);
    assert.deepEqual(await getQuota(reg.server, 'full'), {
      project: 'full',
      used: used + image.manifest.size,
      limit: used + image.manifest.size,
      percent: 100,
    });
  });

  it('frees quota on manifest delete, blob delete and garbage collection', async () => {
    const image = makeImage({ layers: 2, layerSize: 150 });
    await admin.pushImage('team/del', 'v1', image);
    const before = (await getQuota(reg.server, 'team')).used;
    const extra = makeBlob(77);
    assert.equal((await admin.pushBlob('team/del', extra)).status, 201);
    assert.equal((await getQuota(reg.server, 'team')).used, before + 77);
    assert.equal((await admin.fetch(`/v2/team/del/blobs/${extra.digest}`, { method: 'DELETE' })).status, 202);
    assert.equal((await getQuota(reg.server, 'team')).used, before, 'a blob delete frees its bytes');

    assert.equal((await admin.fetch(`/v2/team/del/manifests/${image.manifest.digest}`, { method: 'DELETE' })).status, 202);
    assert.equal((await getQuota(reg.server, 'team')).used, before - image.manifest.size, 'a manifest delete frees the manifest');
    await runGc(reg.server);
    assert.equal((await getQuota(reg.server, 'team')).used, before - imageBytes(image), 'GC unlinking the unreferenced layers frees them');
    assert.deepEqual(await new QuotaService(reg.server.stores.quotas).verify(), [], 'kept usage equals a recount');
  });

  it('appends quota.warning when a push crosses 85 % and quota.exceeded when one is refused', async () => {
    await setQuota(reg.server, 'events', 1000);
    const warnings = async () =>
      (await outboxEvents<{ project: string }>(reg.server, 'quota.warning')).filter((e) => e.project === 'events');
    assert.equal((await admin.pushBlob('events/app', makeBlob(800))).status, 201);
    assert.deepEqual(await warnings(), []);
    assert.equal((await admin.pushBlob('events/app', makeBlob(60))).status, 201);
    assert.deepEqual(await warnings(), [{ type: 'quota.warning', project: 'events', used: 860, limit: 1000, threshold: 85 }]);
    assert.equal((await admin.pushBlob('events/app', makeBlob(10))).status, 201);
    assert.equal((await warnings()).length, 1, 'only the crossing warns');

    assert.equal((await admin.pushBlob('events/app', makeBlob(500))).status, 403);
    const exceededEvents = await eventually(async () => {
      const found = (await outboxEvents<{ project: string }>(reg.server, 'quota.exceeded')).filter((e) => e.project === 'events');
      return found.length > 0 && found;
    }, 'the quota.exceeded event');
    assert.deepEqual(exceededEvents, [
      { type: 'quota.exceeded', project: 'events', repository: 'events/app', requested: 500, used: 870, limit: 1000 },
    ]);
  });

  it('admin API: a member reads its project quota; only a system admin sets one; other tenants get 404; bad input 400', async () => {
    const dev = basic('dev', 'dev-password-1');
    const stranger = basic('stranger', 'stranger-password-1');
    assert.deepEqual(await getQuota(reg.server, 'api', dev), { project: 'api', used: 0, limit: null, percent: null });
    const project = (await (await api(reg.server, 'GET', '/projects/api', dev)).json()) as { quota: unknown };
    assert.deepEqual(project.quota, { project: 'api', used: 0, limit: null, percent: null }, 'GET /projects/:project shows the quota too');
    assert.equal((await api(reg.server, 'PUT', '/projects/api/quota', dev, { limit: 10 })).status, 403, 'a developer may not set a quota');
    assert.equal(
      (await api(reg.server, 'PUT', '/projects/other/quota', stranger, { limit: 10 })).status,
      403,
      'a project-admin may not set its own quota',
    );
    assert.equal(
      (await api(reg.server, 'GET', '/projects/api/quota', stranger)).status,
      404,
      'another tenant does not learn the project exists',
    );
    assert.equal((await api(reg.server, 'GET', '/projects/nope/quota', adminAuth())).status, 404);
    assert.equal((await api(reg.server, 'PUT', '/projects/nope/quota', adminAuth(), { limit: 10 })).status, 404);
    assert.equal((await api(reg.server, 'GET', '/projects/api/quota', '')).status, 401);
    assert.equal((await api(reg.server, 'PUT', '/projects/api/quota', adminAuth(), { limit: 'ten gigs' })).status, 400);
    assert.equal((await api(reg.server, 'PUT', '/projects/api/quota', adminAuth(), { limit: -1 })).status, 400);
    assert.equal((await api(reg.server, 'PUT', '/projects/api/quota', adminAuth(), { size: 1 })).status, 400);
    assert.deepEqual(await setQuota(reg.server, 'api', '2GiB'), { project: 'api', used: 0, limit: 2 * 1024 ** 3, percent: 0 });
    assert.deepEqual(await setQuota(reg.server, 'api', null), { project: 'api', used: 0, limit: null, percent: null });

    const listed = async (authorization: string) => {
      const res = await api(reg.server, 'GET', '/quotas', authorization);
      assert.equal(res.status, 200);
      return ((await res.json()) as { project: string }[]).map((q) => q.project);
    };
    await setQuota(reg.server, 'other', null);
    assert.deepEqual(await listed(stranger), ['other'], 'the list shows only projects the caller may read');
    assert.deepEqual(
      (await listed(adminAuth())).filter((p) => p === 'api' || p === 'other'),
      ['api', 'other'],
      'an admin sees every project',
    );
  });
});
