import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { QuotaService } from '../../src/quotas/service.js';
import { addProject, adminAuth, useAuthServer } from '../auth/support.js';
import { imageOver, runGc } from '../gc/support.js';
import { RegistryClient, makeBlob, type Blob } from '../helpers/registry-client.js';
import { getQuota } from './quota-support.js';

/** mulberry32: a small seeded PRNG, so a failing sequence can be replayed with its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.BERTH_QUOTA_SEED ?? 1313);
const STEPS = 60;
const PROJECTS = ['alpha', 'beta'];
const REPOSITORIES = PROJECTS.flatMap((p) => [`${p}/one`, `${p}/two`, `${p}/sub/three`]);

/**
 * The usage Berth keeps (updated in each change's transaction) equals a from-scratch recount
 * after a seeded random sequence of pushes (layers drawn from a shared pool, so content repeats
 * across repositories and projects), mounts, tag/manifest/blob deletes and GC runs.
 */
describe(`quota usage equals a recount after a random sequence (seed ${SEED})`, () => {
  const reg = useAuthServer('basic', {}, { gc: { enabled: false, graceperiod: 0 }, storage: { delete: { enabled: true } } });
  let admin: RegistryClient;

  before(async () => {
    admin = new RegistryClient(reg.url, { authorization: adminAuth() });
    for (const project of PROJECTS) await addProject(reg.server, project);
  });

  it(`${STEPS} steps of pushes, mounts, deletes and GC: shown usage == recount after every step`, async () => {
    const next = random(SEED);
    const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)]!;
    const pool: Blob[] = Array.from({ length: 8 }, (_, i) => makeBlob(100 + i * 37));
    const pushed: { repository: string; tag: string; digest: string; layers: Blob[] }[] = [];
    const quotas = new QuotaService(reg.server.stores.quotas);
    const counts: Record<string, number> = {};
    const expectRecount = async (when: string) => {
      assert.deepEqual(await quotas.verify(), [], `kept usage differs from a recount ${when} (seed ${SEED})`);
      const recounted = await reg.server.stores.quotas.recount();
      for (const project of PROJECTS) {
        const shown = (await getQuota(reg.server, project)).used;
        assert.equal(shown, recounted.find((r) => r.project === project)?.used ?? 0, `GET quota of ${project} ${when}`);
      }
    };

    for (let step = 0; step < STEPS; step++) {
      const action = pick(['push', 'push', 'push', 'mount', 'untag', 'delete-manifest', 'delete-blob', 'gc']);
      counts[action] = (counts[action] ?? 0) + 1;
      const repository = pick(REPOSITORIES);
      if (action === 'push' || pushed.length === 0) {
        const layers = [pick(pool), pick(pool)].filter((l, i, all) => all.indexOf(l) === i);
        const image = imageOver(layers);
        const tag = `t${step}`;
        await admin.pushImage(repository, tag, image).catch(async (err: Error) => {
          // GC's race rule refuses re-pushing, within 100 ms, content a run has just deleted; the client is told to push again.
          if (!/BLOB_UPLOAD_INVALID/.test(err.message)) throw err;
          await new Promise((resolve) => setTimeout(resolve, 200));
          return admin.pushImage(repository, tag, image);
        });
        pushed.push({ repository, tag, digest: image.manifest.digest, layers });
      } else if (action === 'mount') {
        const source = pick(pushed);
        const blob = pick(source.layers);
        const res = await admin.fetch(`/v2/${repository}/blobs/uploads/?mount=${blob.digest}&from=${source.repository}`, {
          method: 'POST',
        });
        assert.ok([201, 202].includes(res.status), `mount: ${res.status}`);
      } else if (action === 'untag') {
        const target = pick(pushed);
        const res = await admin.fetch(`/v2/${target.repository}/manifests/${target.tag}`, { method: 'DELETE' });
        assert.ok([202, 404].includes(res.status), `untag: ${res.status}`);
      } else if (action === 'delete-manifest') {
        const target = pick(pushed);
        const res = await admin.fetch(`/v2/${target.repository}/manifests/${target.digest}`, { method: 'DELETE' });
        assert.ok([202, 404].includes(res.status), `manifest delete: ${res.status}`);
      } else if (action === 'delete-blob') {
        const target = pick(pushed);
        const res = await admin.fetch(`/v2/${target.repository}/blobs/${pick(target.layers).digest}`, { method: 'DELETE' });
        assert.ok([202, 404].includes(res.status), `blob delete: ${res.status}`);
      } else {
        await runGc(reg.server);
      }
      await expectRecount(`after step ${step} (${action})`);
    }
    await runGc(reg.server);
    await expectRecount('at the end');
    // The sequence exercised every kind of change (else the seed proves less than it claims).
    for (const action of ['push', 'mount', 'untag', 'delete-manifest', 'delete-blob', 'gc'])
      assert.ok(counts[action]! > 0, `no ${action} in the sequence`);
    assert.ok(
      (await getQuota(reg.server, 'alpha')).used > 0 || (await getQuota(reg.server, 'beta')).used > 0,
      'something is left to count',
    );
  });
});
