import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { addProject, adminAuth, useAuthServer } from '../auth/support.js';
import { RegistryClient, makeBlob } from '../helpers/registry-client.js';
import { getQuota, setQuota } from './quota-support.js';

/**
 * The boundary under concurrency: pushes into one project lock its usage row in the commit's
 * transaction, so however many arrive at once, exactly as many fit as the limit allows — no
 * overshoot at all (the brief allows the blobs in flight; Berth allows none). Run by CI on
 * SQLite, PostgreSQL and MySQL (test/policies).
 */
describe('storage quota at the boundary under concurrent pushes', () => {
  const reg = useAuthServer('basic', {}, { gc: { enabled: false } });
  const BLOB = 1000;
  const FITS = 5;
  const PUSHES = 16;

  before(async () => {
    await addProject(reg.server, 'race');
    await setQuota(reg.server, 'race', FITS * BLOB);
  });

  it(`${PUSHES} concurrent blob pushes into a project with room for ${FITS}: exactly ${FITS} succeed, the rest get 403 DENIED, usage ends at the limit`, async () => {
    const admin = new RegistryClient(reg.url, { authorization: adminAuth() });
    const blobs = Array.from({ length: PUSHES }, () => makeBlob(BLOB));
    // Spread over repositories of the project, each blob uploaded in two requests (POST, then PUT).
    const statuses = await Promise.all(
      blobs.map((blob, i) => admin.pushBlobChunked(`race/r${i % 4}`, blob, BLOB).then((res) => res.status)),
    );
    assert.equal(statuses.filter((s) => s === 201).length, FITS, `statuses: ${statuses.join(' ')}`);
    assert.equal(statuses.filter((s) => s === 403).length, PUSHES - FITS, `statuses: ${statuses.join(' ')}`);
    assert.deepEqual(await getQuota(reg.server, 'race'), { project: 'race', used: FITS * BLOB, limit: FITS * BLOB, percent: 100 });
  });

  it('concurrent pushes of the same content count it once', async () => {
    await setQuota(reg.server, 'race', null);
    const admin = new RegistryClient(reg.url, { authorization: adminAuth() });
    const before = (await getQuota(reg.server, 'race')).used;
    const shared = makeBlob(BLOB);
    const statuses = await Promise.all(
      Array.from({ length: 8 }, (_, i) => admin.pushBlob(`race/same${i}`, shared).then((res) => res.status)),
    );
    assert.deepEqual(statuses, Array(8).fill(201));
    assert.equal((await getQuota(reg.server, 'race')).used, before + BLOB);
  });
});
