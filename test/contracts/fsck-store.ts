import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { BrokenReference, FsckMetadata, ManifestRow } from '../../src/fsck/types.js';
import type { Stores } from '../../src/stores.js';
import { byteOrder, deploy, type Backend, type Deployment } from './deployment.js';
import { child, config, layer, randomDigest, rows } from './fixtures.js';

/**
 * The FsckMetadata contract (src/fsck/types.ts), run on every metadata back end by
 * test/contracts/fsck-store-<backend>.test.ts through the composition root's `stores.fsck`,
 * on a small known data set written through `stores.metadata` before the tests. The reading
 * tests come first; the deleting tests use rows of their own.
 */
export function fsckStoreContract(backend: Backend): void {
  describe(`FsckMetadata contract: ${backend}`, () => {
    let deployment: Deployment;
    let stores: Stores;
    let fsck: FsckMetadata;

    // Repository names whose byte order differs from a linguistic one: 'T' < 't', '-' < '.' < '/'.
    const repos = { upper: 'Team/app', app: 'team/app', dash: 'team/app-x', dot: 'team/app.x', nested: 'team/app/x' };
    const shared = randomDigest(); // linked into every repository, referenced by a manifest in each
    const lonely = randomDigest(); // linked into team/app, referenced by nothing
    const unlinked = randomDigest(); // a row, linked nowhere; referenced by a manifest of team/app (broken)
    const missing = randomDigest(); // no row at all; referenced by a manifest of team/app (broken)
    const missingChild = randomDigest(); // a child manifest that is not stored
    const samePayload = Buffer.from(JSON.stringify({ schemaVersion: 2, shared: 'payload' }));
    const manifests: Array<{ repository: string; digest: string; payload: Buffer }> = [];
    const m: Record<string, string> = {};
    const uploads: Array<{ id: string; repository: string; size: number; updatedAt: Date }> = [];
    let started = 0;

    before(async () => {
      deployment = await deploy(backend);
      stores = deployment.stores;
      fsck = stores.fsck;
      const write = rows(stores.metadata);
      started = Date.now();
      for (const repository of Object.values(repos)) await write.commitBlob(repository, shared, 100);
      await write.commitBlob(repos.app, lonely, 200);
      await write.recordBlob(unlinked, 300);
      m.image = await write.putManifest(repos.app, { references: [config(shared)], tags: ['v1'] });
      m.index = await write.putManifest(repos.app, { references: [child(m.image)], tags: ['multi'] });
      m.brokenBlob = await write.putManifest(repos.app, { references: [config(shared), layer(unlinked), layer(missing)] });
      m.brokenIndex = await write.putManifest(repos.app, { references: [child(m.image), child(missingChild)] });
      m.upper = await write.putManifest(repos.upper, { references: [config(shared)] });
      m.dash = await write.putManifest(repos.dash, { references: [config(shared)], payload: samePayload });
      m.dot = await write.putManifest(repos.dot, { references: [config(shared)], payload: samePayload });
      m.nested = await write.putManifest(repos.nested, { references: [config(shared)] });
      const where: Record<string, string> = {
        image: repos.app,
        index: repos.app,
        brokenBlob: repos.app,
        brokenIndex: repos.app,
        upper: repos.upper,
        dash: repos.dash,
        dot: repos.dot,
        nested: repos.nested,
      };
      for (const [name, repository] of Object.entries(where)) {
        const stored = await stores.metadata.manifests.get(repository, m[name]!);
        manifests.push({ repository, digest: m[name]!, payload: stored!.payload });
      }
      for (let i = 0; i < 5; i++) {
        const upload = { id: randomUUID(), repository: i % 2 ? repos.app : repos.upper, size: 0, staging: { n: i }, createdAt: new Date() };
        await stores.metadata.uploads.create(upload);
        uploads.push({ id: upload.id, repository: upload.repository, size: 0, updatedAt: new Date() });
      }
      await stores.metadata.uploads.update(uploads[0]!.id, 0, 4096, { n: 'grown' });
      uploads[0]!.size = 4096;
    });
    after(async () => deployment?.destroy());

    it('orphanRepositories: repositories whose project has no row, in byte order, paged strictly after `after`', async () => {
      const all = [repos.upper, repos.app, repos.dash, repos.dot, repos.nested];
      assert.deepEqual(await fsck.orphanRepositories(undefined, 100), all, "'T' < 't', '-' < '.' < '/'");
      assert.deepEqual(await fsck.orphanRepositories(undefined, 2), all.slice(0, 2));
      assert.deepEqual(await fsck.orphanRepositories(repos.app, 2), all.slice(2, 4));
      // The project is the first path component, compared byte-wise: project "team" is not "Team".
      assert.equal(await stores.auth.createProject({ name: 'team', public: false, createdBy: null }), true);
      try {
        assert.deepEqual(await fsck.orphanRepositories(undefined, 100), [repos.upper]);
      } finally {
        assert.equal(await stores.auth.deleteProject('team'), true);
      }
    });

    it('blobRows: every row in digest order, paged strictly after `after`', async () => {
      const expected = [
        { digest: shared, size: 100 },
        { digest: lonely, size: 200 },
        { digest: unlinked, size: 300 },
      ].sort((a, b) => Buffer.compare(Buffer.from(a.digest), Buffer.from(b.digest)));
      assert.deepEqual(await fsck.blobRows(undefined, 100), expected);
      assert.deepEqual(await fsck.blobRows(undefined, 2), expected.slice(0, 2));
      assert.deepEqual(await fsck.blobRows(expected[0]!.digest, 100), expected.slice(1));
      assert.deepEqual(await fsck.blobRows(expected[1]!.digest, 1), expected.slice(2));
      assert.deepEqual(await fsck.blobRows(expected[2]!.digest, 100), []);
      assert.deepEqual(await fsck.blobRows('sha256:', 100), expected, '`after` need not be a stored digest');
    });

    it('knownBlobs: which digests have a row', async () => {
      assert.deepEqual(await fsck.knownBlobs([shared, missing, unlinked, shared.toUpperCase()]), new Set([shared, unlinked]));
      assert.deepEqual(await fsck.knownBlobs([]), new Set());
    });

    it('linkingRepositories: the repositories linking a digest, in byte order', async () => {
      assert.deepEqual(await fsck.linkingRepositories(shared), byteOrder(Object.values(repos)));
      assert.deepEqual(await fsck.linkingRepositories(shared), ['Team/app', 'team/app', 'team/app-x', 'team/app.x', 'team/app/x']);
      assert.deepEqual(await fsck.linkingRepositories(lonely), [repos.app]);
      assert.deepEqual(await fsck.linkingRepositories(unlinked), []);
      assert.deepEqual(await fsck.linkingRepositories(missing), []);
    });

    it('manifestsUsing: the manifests referencing a digest, in any repository, by (repository, manifest)', async () => {
      const byRepoThenDigest = (a: { repository: string; manifest: string }, b: { repository: string; manifest: string }) =>
        Buffer.compare(Buffer.from(a.repository), Buffer.from(b.repository)) ||
        Buffer.compare(Buffer.from(a.manifest), Buffer.from(b.manifest));
      assert.deepEqual(
        await fsck.manifestsUsing(shared),
        [
          { repository: repos.app, manifest: m.image! },
          { repository: repos.app, manifest: m.brokenBlob! },
          { repository: repos.upper, manifest: m.upper! },
          { repository: repos.dash, manifest: m.dash! },
          { repository: repos.dot, manifest: m.dot! },
          { repository: repos.nested, manifest: m.nested! },
        ].sort(byRepoThenDigest),
      );
      assert.deepEqual(
        await fsck.manifestsUsing(m.image!),
        [
          { repository: repos.app, manifest: m.brokenIndex! },
          { repository: repos.app, manifest: m.index! },
        ].sort(byRepoThenDigest),
        'child manifests too',
      );
      assert.deepEqual(await fsck.manifestsUsing(missing), [{ repository: repos.app, manifest: m.brokenBlob! }]);
      assert.deepEqual(await fsck.manifestsUsing(lonely), []);
    });

    it('brokenReferences: blobs not linked (or not recorded) and child manifests not stored; at most `limit`', async () => {
      const key = (r: BrokenReference) => `${r.repository} ${r.manifest} ${r.child} ${r.kind}`;
      const expected = [
        { repository: repos.app, manifest: m.brokenBlob!, child: unlinked, kind: 'layer' },
        { repository: repos.app, manifest: m.brokenBlob!, child: missing, kind: 'layer' },
        { repository: repos.app, manifest: m.brokenIndex!, child: missingChild, kind: 'manifest' },
      ];
      const all = await fsck.brokenReferences(100);
      assert.deepEqual(all.map(key).sort(), expected.map(key).sort());
      for (const limit of [1, 2, 3]) {
        const some = await fsck.brokenReferences(limit);
        assert.equal(some.length, limit);
        for (const r of some) assert.ok(all.map(key).includes(key(r)));
      }
    });

    it('manifests: (repository, digest) keyset pages in byte order, with payloads; countManifests', async () => {
      const expected: ManifestRow[] = [...manifests].sort(
        (a, b) =>
          Buffer.compare(Buffer.from(a.repository), Buffer.from(b.repository)) ||
          Buffer.compare(Buffer.from(a.digest), Buffer.from(b.digest)),
      );
      assert.equal(expected.length, 8);
      assert.equal(await fsck.countManifests(), 8);
      assert.deepEqual(await fsck.manifests(undefined, 100), expected);
      const paged: ManifestRow[] = [];
      let afterKey: { repository: string; digest: string } | undefined;
      for (;;) {
        const page = await fsck.manifests(afterKey, 3);
        assert.ok(page.length <= 3);
        paged.push(...page);
        if (page.length < 3) break;
        afterKey = { repository: page.at(-1)!.repository, digest: page.at(-1)!.digest };
      }
      assert.deepEqual(paged, expected, 'every manifest exactly once, including two with the same digest in different repositories');
      const dash = expected.findIndex((r) => r.repository === repos.dash);
      assert.deepEqual(
        await fsck.manifests({ repository: repos.dash, digest: m.dash! }, 100),
        expected.slice(dash + 1),
        'the same digest in the next repository is not skipped',
      );
      for (const row of expected) assert.ok(Buffer.isBuffer(row.payload));
      assert.deepEqual(expected.find((r) => r.repository === repos.dot)?.payload, samePayload, 'payloads round-trip byte for byte');
    });

    it('uploadRows: id order, paged strictly after `after`, with repository, size and update time; knownUploads', async () => {
      const expected = [...uploads].sort((a, b) => Buffer.compare(Buffer.from(a.id), Buffer.from(b.id)));
      const listed = await fsck.uploadRows(undefined, 100);
      assert.deepEqual(
        listed.map((u) => ({ ...u, updatedAt: undefined })),
        expected.map((u) => ({ ...u, updatedAt: undefined })),
      );
      for (const u of listed)
        assert.ok(u.updatedAt instanceof Date && u.updatedAt.getTime() >= started - 1000 && u.updatedAt.getTime() <= Date.now() + 1000);
      assert.deepEqual(
        (await fsck.uploadRows(expected[1]!.id, 2)).map((u) => u.id),
        expected.slice(2, 4).map((u) => u.id),
      );
      assert.deepEqual(await fsck.uploadRows(expected.at(-1)!.id, 100), []);
      const unknown = randomUUID();
      assert.deepEqual(await fsck.knownUploads([expected[0]!.id, unknown, expected[3]!.id]), new Set([expected[0]!.id, expected[3]!.id]));
      assert.deepEqual(await fsck.knownUploads([]), new Set());
    });

    it('deleteUnreferencedBlobRow: deletes an unreferenced row with its links, refuses a referenced one', async () => {
      const write = rows(stores.metadata);
      const extra = randomDigest();
      await write.commitBlob(repos.app, extra, 50);
      await write.commitBlob(repos.dash, extra, 50);
      assert.equal(await fsck.deleteUnreferencedBlobRow(extra), true);
      assert.deepEqual(await fsck.knownBlobs([extra]), new Set());
      assert.deepEqual(await fsck.linkingRepositories(extra), [], 'the links went with it');
      assert.equal(await fsck.deleteUnreferencedBlobRow(extra), false, 'no row any more');
      assert.equal(await fsck.deleteUnreferencedBlobRow(shared), false, 'referenced');
      assert.deepEqual(await fsck.knownBlobs([shared]), new Set([shared]));
      assert.equal((await fsck.linkingRepositories(shared)).length, 5, 'its links are kept');
      assert.equal(await fsck.deleteUnreferencedBlobRow(unlinked), false, 'referenced (by a broken manifest) counts too');
      assert.equal(await fsck.deleteUnreferencedBlobRow(lonely), true, 'linked but unreferenced');
      assert.deepEqual(await fsck.linkingRepositories(lonely), []);
    });

    it('deleteUploadRow', async () => {
      const id = uploads[2]!.id;
      assert.equal(await fsck.deleteUploadRow(id), true);
      assert.deepEqual(await fsck.knownUploads([id]), new Set());
      assert.equal(await stores.metadata.uploads.get(id), null);
      assert.equal(await fsck.deleteUploadRow(id), false);
      assert.equal((await fsck.uploadRows(undefined, 100)).length, 4);
    });
  });
}
