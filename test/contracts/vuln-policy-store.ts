import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ScanRecord, VulnPolicySettings } from '../../src/scanning/ports.js';
import type { Stores } from '../../src/stores.js';
import { deploy, type Backend, type Deployment } from './deployment.js';
import { unique } from './fixtures.js';

const IMAGE = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';

/**
 * The vulnerability-policy port (VulnPolicyStore in src/scanning/ports.ts) on every metadata back
 * end, through the composition root's `stores.vulnPolicies`: policies with their settings, the
 * counters caches compare with (version on policy changes; scans on a scan stored for an artifact
 * a project holds — in the scan's own transaction — and on removals), push times and index parents.
 */
export function vulnPolicyStoreContract(backend: Backend): void {
  describe(`vulnerability policy store contract: ${backend}`, () => {
    let deployment: Deployment;
    let stores: Stores;
    before(async () => {
      deployment = await deploy(backend);
      stores = deployment.stores;
    });
    after(async () => deployment?.destroy());

    const project = async () => {
      const name = unique('vp');
      await stores.auth.createProject({ name, public: false, createdBy: 'test' });
      return name;
    };
    const inTx = <T>(work: (q: ReturnType<Stores['vulnPolicies']['within']>) => Promise<T>) =>
      stores.metadata.transaction((tx) => work(stores.vulnPolicies.within(tx)));
    const settings = (extra: Partial<VulnPolicySettings> = {}): VulnPolicySettings => ({
      mode: 'enforce',
      severity: 'high',
      allowlist: ['CVE-2099-0001', 'GHSA-ü✓'],
      unscanned: 'grace',
      graceSeconds: 86_400,
      inheritIndex: false,
      ...extra,
    });
    const scan = (digest: string, findings: unknown[] = []): ScanRecord => ({
      digest,
      status: 'complete',
      scannedAt: 1234,
      source: 'request',
      databaseImport: null,
      packages: 1,
      summary: { High: findings.length, total: findings.length },
      findings,
      error: null,
    });
    const putManifest = (repository: string, digest: string, mediaType = IMAGE, children: string[] = []) =>
      stores.metadata.transaction(async (tx) => {
        const { id } = await tx.repositories.ensure(repository);
        await tx.manifests.put(
          {
            repositoryId: id,
            digest,
            mediaType,
            artifactType: null,
            subjectDigest: null,
            annotations: null,
            size: 2,
            payload: Buffer.from('{}'),
          },
          children.map((c) => ({ digest: c, kind: 'manifest' as const })),
        );
      });
    const digest = (c: string) => `sha256:${c.repeat(64)}`;

    it('a project without a policy: no state, an empty snapshot; the counters move nothing that does not exist', async () => {
      const p = await project();
      assert.equal(await stores.vulnPolicies.state(p), null);
      await inTx((q) => q.contentRemoved(p));
      assert.equal(await stores.vulnPolicies.state(p), null);
      assert.deepEqual(await stores.vulnPolicies.snapshot(p), { policy: null, version: 0, scans: 0 });
    });

    it('setPolicy stores every setting and moves version; a second one replaces them', async () => {
      const p = await project();
      await inTx((q) => q.setPolicy(p, settings(), 'alice', new Date(1000)));
      const first = (await stores.vulnPolicies.state(p))!;
      assert.deepEqual((await stores.vulnPolicies.snapshot(p)).policy, {
        project: p,
        ...settings(),
        updatedAt: new Date(1000),
        updatedBy: 'alice',
      });
      await inTx((q) =>
        q.setPolicy(
          p,
          settings({ mode: 'audit', severity: 'low', allowlist: [], unscanned: 'deny', graceSeconds: 0, inheritIndex: true }),
          null,
          new Date(2000),
        ),
      );
      const snapshot = await stores.vulnPolicies.snapshot(p);
      assert.deepEqual(snapshot.policy, {
        project: p,
        mode: 'audit',
        severity: 'low',
        allowlist: [],
        unscanned: 'deny',
        graceSeconds: 0,
        inheritIndex: true,
        updatedAt: new Date(2000),
        updatedBy: null,
      });
      assert.deepEqual([snapshot.version, snapshot.scans], [first.version + 1, first.scans]);
    });

    it('a scan saved with scanChanged in one transaction stores the result and moves scans of exactly the projects holding the digest', async () => {
      const [a, b, c] = [await project(), await project(), await project()];
      for (const p of [a, b, c]) await inTx((q) => q.setPolicy(p, settings(), null, new Date()));
      const d = digest('3');
      await putManifest(`${a}/one`, d);
      await putManifest(`${a}/two`, d);
      await putManifest(`${b}/nested/repo`, d);
      const before = await Promise.all([a, b, c].map(async (p) => (await stores.vulnPolicies.state(p))!.scans));
      await inTx(async (q) => {
        await q.saveScan(scan(d, [{ id: 'X-1' }]));
        await q.scanChanged(d);
      });
      const after = await Promise.all([a, b, c].map(async (p) => (await stores.vulnPolicies.state(p))!.scans));
      assert.deepEqual(after, [before[0]! + 1, before[1]! + 1, before[2]!], 'once per project, not per repository; c holds nothing');
      const stored = await stores.vulndb.scanOf(d);
      assert.deepEqual([stored?.status, stored?.findings], ['complete', [{ id: 'X-1' }]]);
      await inTx((q) => q.scanChanged(digest('4')));
      assert.deepEqual(
        await Promise.all([a, b, c].map(async (p) => (await stores.vulnPolicies.state(p))!.scans)),
        after,
        'an artifact nobody holds',
      );
    });

    it('a failing transaction keeps neither the scan nor the counter', async () => {
      const p = await project();
      await inTx((q) => q.setPolicy(p, settings(), null, new Date()));
      const d = digest('5');
      await putManifest(`${p}/app`, d);
      const was = (await stores.vulnPolicies.state(p))!.scans;
      await assert.rejects(
        inTx(async (q) => {
          await q.saveScan(scan(d));
          await q.scanChanged(d);
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(await stores.vulndb.scanOf(d), null);
      assert.equal((await stores.vulnPolicies.state(p))!.scans, was);
    });

    it('contentRemoved moves scans; pushedAt and parents read the manifests; deleting the project deletes its policy', async () => {
      const p = await project();
      await inTx((q) => q.setPolicy(p, settings(), null, new Date()));
      const was = (await stores.vulnPolicies.state(p))!.scans;
      await inTx((q) => q.contentRemoved(p));
      assert.equal((await stores.vulnPolicies.state(p))!.scans, was + 1);

      const child = digest('6');
      const index = digest('7');
      const t0 = Date.now();
      await putManifest(`${p}/multi`, child);
      await putManifest(`${p}/multi`, index, INDEX, [child]);
      const pushed = await stores.vulnPolicies.pushedAt(`${p}/multi`, child);
      assert.ok(pushed !== null && pushed >= t0 - 1000 && pushed <= Date.now() + 1000, String(pushed));
      assert.equal(await stores.vulnPolicies.pushedAt(`${p}/other`, child), null);
      assert.deepEqual(await stores.vulnPolicies.parents(`${p}/multi`, child, 8), [index]);
      assert.deepEqual(await stores.vulnPolicies.parents(`${p}/multi`, index, 8), []);

      await stores.auth.deleteProject(p);
      assert.equal(await stores.vulnPolicies.state(p), null);
    });
  });
}
