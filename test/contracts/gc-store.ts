import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Candidate, ReviewRequest } from '../../src/gc/ports.js';
import type { Stores } from '../../src/stores.js';
import { byteOrder, deploy, type Backend, type Deployment } from './deployment.js';
import { child, config, layer, randomDigest, rows, unique } from './fixtures.js';

/**
 * The GC metadata port contract (GcMetadata, GcTxQueries, GcQueries and StorageUsageQueries
 * in src/gc/ports.ts), run on every metadata back end by test/contracts/gc-store-<backend>.test.ts
 * through the composition root's `stores.gc`. Rows are written through `stores.metadata`.
 * The tests share one database and run in order; those that read the whole review queue
 * empty it first.
 */
export function gcStoreContract(backend: Backend): void {
  describe(`GC metadata port contract: ${backend}`, () => {
    let deployment: Deployment;
    let stores: Stores;
    let write: ReturnType<typeof rows>;
    before(async () => {
      deployment = await deploy(backend);
      stores = deployment.stores;
      write = rows(stores.metadata);
    });
    after(async () => deployment?.destroy());

    const enqueue = (requests: ReviewRequest[], queuedAt: number) =>
      stores.metadata.transaction((tx) => stores.gc.within(tx).enqueue(requests, queuedAt));
    const queue = () => stores.gc.transaction((q) => q.dueCandidates(Number.MAX_SAFE_INTEGER, 100_000));
    const drain = () =>
      stores.gc.transaction(async (q) => {
        for (const c of await q.dueCandidates(Number.MAX_SAFE_INTEGER, 100_000)) await q.dequeue(c);
      });
    const key = (c: Pick<Candidate, 'kind' | 'repositoryId' | 'digest'>) => `${c.kind} ${c.repositoryId} ${c.digest}`;

    describe('storage usage', () => {
      it('per repository and per project (first path segment) counts each referenced blob once; the total counts every blob row once', async () => {
        const before = await stores.usage.storageUsage();
        const p = unique('usage');
        const [appA, libA, appB, solo, upper] = [`${p}-a/app`, `${p}-a/team/lib`, `${p}-b/app`, `${p}-solo`, `${p.toUpperCase()}-Z/app`];
        const [c1, l1, l2, l3, orphan, unlinked] = [
          randomDigest(),
          randomDigest(),
          randomDigest(),
          randomDigest(),
          randomDigest(),
          randomDigest(),
        ];
        await write.commitBlob(appA, c1, 100);
        await write.commitBlob(appA, l1, 1000);
        await write.commitBlob(appA, l2, 2000);
        await write.commitBlob(appA, orphan, 7); // linked, referenced by no manifest
        await write.commitBlob(libA, c1, 100);
        await write.commitBlob(libA, l1, 1000);
        await write.commitBlob(appB, c1, 100);
        await write.commitBlob(appB, l3, 4000);
        await write.commitBlob(solo, l2, 2000);
        await write.commitBlob(upper, l3, 4000);
        await write.recordBlob(unlinked, 13);
        const m1 = await write.putManifest(appA, { references: [config(c1), layer(l1)], tags: ['v1'] });
        const m2 = await write.putManifest(appA, { references: [config(c1), layer(l2)] }); // untagged: still counted
        await write.putManifest(appA, { references: [child(m1), child(m2)], tags: ['latest'] }); // an index: children are no blobs
        await write.putManifest(appA, { references: [config(c1)], subject: m1 });
        await write.putManifest(libA, { references: [config(c1), layer(l1)] });
        await write.putManifest(appB, { references: [config(c1), layer(l3)] });
        await write.putManifest(solo, { references: [layer(l2)] });
        await write.putManifest(upper, { references: [layer(l3)] });
        await write.repositoryId(`${p}-empty/none`); // a repository without manifests

        const usage = await stores.usage.storageUsage();
        const mine = usage.repositories.filter((r) => r.repository.toLowerCase().startsWith(p.toLowerCase()));
        assert.deepEqual(
          mine,
          [
            { repository: upper, blobs: 1, bytes: 4000 },
            { repository: appA, blobs: 3, bytes: 3100 },
            { repository: libA, blobs: 2, bytes: 1100 },
            { repository: appB, blobs: 2, bytes: 4100 },
            { repository: solo, blobs: 1, bytes: 2000 },
          ],
          'in byte order; repositories without manifests are not listed',
        );
        assert.deepEqual(
          usage.repositories.map((r) => r.repository),
          byteOrder(usage.repositories.map((r) => r.repository)),
        );
        const projects = usage.projects.filter((r) => r.project.toLowerCase().startsWith(p.toLowerCase()));
        assert.deepEqual(projects, [
          { project: `${p.toUpperCase()}-Z`, blobs: 1, bytes: 4000 },
          { project: `${p}-a`, blobs: 3, bytes: 3100 },
          { project: `${p}-b`, blobs: 2, bytes: 4100 },
          { project: `${p}-solo`, blobs: 1, bytes: 2000 },
        ]);
        assert.deepEqual(
          usage.projects.map((r) => r.project),
          byteOrder(usage.projects.map((r) => r.project)),
        );
        assert.deepEqual(
          usage.total,
          { blobs: before.total.blobs + 6, bytes: before.total.bytes + 7120 },
          'every blob row once, linked or not',
        );
        for (const r of [...usage.repositories, ...usage.projects]) {
          assert.equal(typeof r.blobs, 'number');
          assert.equal(typeof r.bytes, 'number');
        }

        assert.deepEqual(await stores.usage.repositoryUsage(appA), { repository: appA, blobs: 3, bytes: 3100 });
        assert.deepEqual(await stores.usage.repositoryUsage(upper), { repository: upper, blobs: 1, bytes: 4000 });
        assert.deepEqual(await stores.usage.repositoryUsage(`${p}-empty/none`), { repository: `${p}-empty/none`, blobs: 0, bytes: 0 });
        assert.equal(await stores.usage.repositoryUsage(`${p}-no/such`), null);
        assert.equal(await stores.usage.repositoryUsage(appA.toUpperCase()), null, 'repository names compare byte-wise');
      });
    });

    describe('review queue', () => {
      it('enqueue is idempotent per (kind, repository, digest) and moves queued_at; dueCandidates lists due rows oldest first with the repository name', async () => {
        await drain();
        const repository = unique('queue/a');
        const id = await write.repositoryId(repository);
        const [d1, d2, d3] = [randomDigest(), randomDigest(), randomDigest()];
        await enqueue(
          [
            { kind: 'manifest', repositoryId: id, digest: d1 },
            { kind: 'manifest', repositoryId: id, digest: d1 }, // twice in one call
            { kind: 'link', repositoryId: id, digest: d1 }, // another kind: another row
            { kind: 'blob', repositoryId: 0, digest: d1 },
          ],
          1000,
        );
        await enqueue([{ kind: 'link', repositoryId: id, digest: d2 }], 2000);
        await enqueue([{ kind: 'link', repositoryId: id, digest: d3 }], 3000);
        assert.deepEqual(await stores.gc.queueSize(1500), { total: 5, due: 3 });

        await enqueue([{ kind: 'manifest', repositoryId: id, digest: d1 }], 2500); // again, later: moved
        assert.deepEqual(await stores.gc.queueSize(1500), { total: 5, due: 2 });
        const all = await queue();
        assert.deepEqual(
          all.map((c) => [c.kind, c.digest, c.queuedAt]),
          [
            ['blob', d1, 1000],
            ['link', d1, 1000],
            ['link', d2, 2000],
            ['manifest', d1, 2500],
            ['link', d3, 3000],
          ].sort((a, b) => (a[2] as number) - (b[2] as number) || String(a[0]).localeCompare(String(b[0]))),
        );
        for (const c of all) {
          assert.equal(c.repository, c.kind === 'blob' ? '' : repository);
          assert.equal(c.repositoryId, c.kind === 'blob' ? 0 : id);
        }

        await enqueue([{ kind: 'manifest', repositoryId: id, digest: d1 }], 500); // to an earlier time too
        const due = await stores.gc.transaction((q) => q.dueCandidates(2000, 100));
        assert.deepEqual(
          due.map((c) => [c.kind, c.digest, c.queuedAt]),
          [
            ['manifest', d1, 500],
            ['blob', d1, 1000],
            ['link', d1, 1000],
            ['link', d2, 2000],
          ],
          'queued_at <= cutoff, oldest first',
        );
        assert.deepEqual(await stores.gc.transaction((q) => q.dueCandidates(2000, 2)), due.slice(0, 2), 'limit keeps the oldest');
        assert.deepEqual(await stores.gc.transaction((q) => q.dueCandidates(499, 100)), []);
        assert.deepEqual(await stores.gc.queueSize(0), { total: 5, due: 0 });
        assert.deepEqual(await stores.gc.queueSize(Number.MAX_SAFE_INTEGER), { total: 5, due: 5 });
        // What a run leaves for later: rows queued after the cutoff, with the oldest and newest queue time.
        assert.deepEqual(await stores.gc.transaction((q) => q.waiting(1000)), { count: 2, oldestQueuedAt: 2000, newestQueuedAt: 3000 });
        assert.deepEqual(await stores.gc.transaction((q) => q.waiting(0)), { count: 5, oldestQueuedAt: 500, newestQueuedAt: 3000 });
        assert.deepEqual(await stores.gc.transaction((q) => q.waiting(3000)), { count: 0, oldestQueuedAt: null, newestQueuedAt: null });
      });

      it('dequeue removes one row; requeue moves it; both only touch their own row', async () => {
        await drain();
        const id = await write.repositoryId(unique('queue/b'));
        const d = randomDigest();
        await enqueue(
          [
            { kind: 'manifest', repositoryId: id, digest: d },
            { kind: 'link', repositoryId: id, digest: d },
            { kind: 'blob', repositoryId: 0, digest: d },
          ],
          100,
        );
        const [blob, link, manifest] = await queue();
        assert.equal(blob!.kind, 'blob');
        await stores.gc.transaction((q) => q.dequeue(link!));
        assert.deepEqual((await queue()).map(key), [key(blob!), key(manifest!)]);
        await stores.gc.transaction((q) => q.requeue(blob!, 5000));
        assert.deepEqual(
          (await queue()).map((c) => [key(c), c.queuedAt]),
          [
            [key(manifest!), 100],
            [key(blob!), 5000],
          ],
        );
        await stores.gc.transaction((q) => q.requeue(link!, 50)); // a dequeued candidate comes back
        assert.deepEqual((await queue()).map(key), [key(link!), key(manifest!), key(blob!)]);
        await stores.gc.transaction(async (q) => {
          await q.dequeue(link!);
          await q.dequeue(link!); // twice: a no-op
        });
        assert.deepEqual(await stores.gc.queueSize(Number.MAX_SAFE_INTEGER), { total: 2, due: 2 });
        await drain();
        assert.deepEqual(await stores.gc.queueSize(Number.MAX_SAFE_INTEGER), { total: 0, due: 0 });
      });

      it("enqueue joins the caller's transaction: rolled back with it", async () => {
        await drain();
        const id = await write.repositoryId(unique('queue/c'));
        await assert.rejects(
          stores.metadata.transaction(async (tx) => {
            await stores.gc.within(tx).enqueue([{ kind: 'manifest', repositoryId: id, digest: randomDigest() }], 1);
            throw new Error('the change failed');
          }),
          /the change failed/,
        );
        assert.deepEqual(await stores.gc.queueSize(Number.MAX_SAFE_INTEGER), { total: 0, due: 0 });
        await enqueue([], 1);
        assert.deepEqual(await stores.gc.queueSize(Number.MAX_SAFE_INTEGER), { total: 0, due: 0 }, 'nothing to enqueue is fine');
      });

      it('within(tx).referrersOf lists the manifests whose subject is the digest, in that repository only', async () => {
        const repository = unique('queue/ref');
        const other = unique('queue/ref-other');
        const subject = await write.putManifest(repository, { tags: ['v1'] });
        const r1 = await write.putManifest(repository, { subject });
        const r2 = await write.putManifest(repository, { subject });
        await write.putManifest(other, { subject });
        const id = await write.repositoryId(repository);
        const referrers = await stores.metadata.transaction((tx) => stores.gc.within(tx).referrersOf(id, subject));
        assert.deepEqual([...referrers].sort(), [r1, r2].sort());
        assert.deepEqual(await stores.metadata.transaction((tx) => stores.gc.within(tx).referrersOf(id, randomDigest())), []);
      });
    });

    describe('facts and deletions', () => {
      it('lockManifest: tagged, child of an index, subject and whether it is stored, all within the repository', async () => {
        const repository = unique('facts/m');
        const other = unique('facts/m-other');
        const [c1, l1] = [randomDigest(), randomDigest()];
        await write.commitBlob(repository, c1, 10);
        await write.commitBlob(repository, l1, 20);
        const started = Date.now();
        const tagged = await write.putManifest(repository, { references: [config(c1), layer(l1)], tags: ['v1'] });
        const loose = await write.putManifest(repository, { references: [config(c1)] });
        const inIndex = await write.putManifest(repository, { references: [layer(l1)] });
        await write.putManifest(repository, { references: [child(inIndex)], tags: ['multi'] });
        const referrer = await write.putManifest(repository, { subject: tagged });
        const dangling = randomDigest();
        const danglingReferrer = await write.putManifest(repository, { subject: dangling });
        // In another repository: tags, indexes and subjects there say nothing about this one.
        const payloadOfLoose = (await stores.metadata.manifests.get(repository, loose))!.payload;
        await write.putManifest(other, { payload: payloadOfLoose, tags: ['v1'] });
        await write.putManifest(other, { references: [child(loose)] });
        const otherSubject = await write.putManifest(other, {});
        const crossReferrer = await write.putManifest(repository, { subject: otherSubject });
        const id = await write.repositoryId(repository);

        const facts = await stores.gc.transaction(async (q) => ({
          tagged: await q.lockManifest(id, tagged),
          loose: await q.lockManifest(id, loose),
          inIndex: await q.lockManifest(id, inIndex),
          referrer: await q.lockManifest(id, referrer),
          danglingReferrer: await q.lockManifest(id, danglingReferrer),
          crossReferrer: await q.lockManifest(id, crossReferrer),
          unknown: await q.lockManifest(id, randomDigest()),
          otherRepository: await q.lockManifest(id, otherSubject),
        }));
        const plain = { tagged: false, childOfManifest: false, subjectDigest: null, subjectExists: false, retainedUntil: null };
        const drop = (f: typeof facts.tagged) => (f ? { ...f, createdAt: undefined } : f);
        assert.deepEqual(drop(facts.tagged), { ...plain, tagged: true, createdAt: undefined });
        assert.deepEqual(drop(facts.loose), { ...plain, createdAt: undefined }, 'a tag or an index in another repository does not count');
        assert.deepEqual(drop(facts.inIndex), { ...plain, childOfManifest: true, createdAt: undefined });
        assert.deepEqual(drop(facts.referrer), { ...plain, subjectDigest: tagged, subjectExists: true, createdAt: undefined });
        assert.deepEqual(drop(facts.danglingReferrer), { ...plain, subjectDigest: dangling, createdAt: undefined });
        assert.deepEqual(
          drop(facts.crossReferrer),
          { ...plain, subjectDigest: otherSubject, createdAt: undefined },
          'the subject is stored in another repository only',
        );
        assert.equal(facts.unknown, null);
        assert.equal(facts.otherRepository, null);
        assert.ok(facts.tagged!.createdAt >= started - 1000 && facts.tagged!.createdAt <= Date.now() + 1000, 'epoch milliseconds');
        assert.equal(typeof facts.tagged!.createdAt, 'number');
      });

      it('lockLink: link time and whether a manifest of the repository references it; lockBlob: size and whether any repository links it', async () => {
        const repository = unique('facts/l');
        const other = unique('facts/l-other');
        const [used, unused, usedElsewhere, unlinked] = [randomDigest(), randomDigest(), randomDigest(), randomDigest()];
        const started = Date.now();
        await write.commitBlob(repository, used, 111);
        await write.commitBlob(repository, unused, 222);
        await write.commitBlob(repository, usedElsewhere, 333);
        await write.commitBlob(other, usedElsewhere, 333);
        await write.recordBlob(unlinked, 444);
        await write.putManifest(repository, { references: [layer(used)] });
        await write.putManifest(other, { references: [layer(usedElsewhere)] });
        const id = await write.repositoryId(repository);
        const facts = await stores.gc.transaction(async (q) => ({
          used: await q.lockLink(id, used),
          unused: await q.lockLink(id, unused),
          usedElsewhere: await q.lockLink(id, usedElsewhere),
          notLinked: await q.lockLink(id, unlinked),
          blobUsed: await q.lockBlob(used),
          blobUnlinked: await q.lockBlob(unlinked),
          blobUnknown: await q.lockBlob(randomDigest()),
        }));
        assert.equal(facts.used?.referenced, true);
        assert.equal(facts.unused?.referenced, false);
        assert.equal(facts.usedElsewhere?.referenced, false, 'a reference in another repository does not count');
        assert.equal(facts.notLinked, null);
        assert.ok(facts.unused!.createdAt >= started - 1000 && facts.unused!.createdAt <= Date.now() + 1000);
        assert.equal(typeof facts.unused!.createdAt, 'number');
        assert.deepEqual(facts.blobUsed, { size: 111, linked: true });
        assert.deepEqual(facts.blobUnlinked, { size: 444, linked: false });
        assert.equal(facts.blobUnknown, null);

        // A link refreshed by a later upload or mount moves its time.
        const first = facts.unused!.createdAt;
        await new Promise((r) => setTimeout(r, 5));
        await write.commitBlob(repository, unused, 222);
        const refreshed = await stores.gc.transaction((q) => q.lockLink(id, unused));
        assert.ok(refreshed!.createdAt > first, `${refreshed!.createdAt} > ${first}`);
      });

      it('deleteManifest removes the manifest and its references and enqueues its blobs, child manifests and referrers', async () => {
        await drain();
        const repository = unique('delete/m');
        const [c1, l1] = [randomDigest(), randomDigest()];
        await write.commitBlob(repository, c1, 10);
        await write.commitBlob(repository, l1, 20);
        const kid = await write.putManifest(repository, { references: [layer(l1)] });
        const index = await write.putManifest(repository, { references: [config(c1), child(kid)] });
        const referrer = await write.putManifest(repository, { subject: index });
        const id = await write.repositoryId(repository);
        await stores.gc.transaction((q) => q.deleteManifest(id, index, 7000));
        assert.equal(await stores.metadata.manifests.get(repository, index), null);
        assert.ok(await stores.metadata.manifests.get(repository, kid), 'the child stays (it is only enqueued)');
        assert.ok(await stores.metadata.manifests.get(repository, referrer));
        const facts = await stores.gc.transaction(async (q) => ({ kid: await q.lockManifest(id, kid), c1: await q.lockLink(id, c1) }));
        assert.equal(facts.kid?.childOfManifest, false, 'its references went with it');
        assert.equal(facts.c1?.referenced, false);
        assert.deepEqual(
          (await queue()).map((c) => [c.kind, c.repositoryId, c.repository, c.digest, c.queuedAt]).sort(),
          [
            ['link', id, repository, c1, 7000],
            ['manifest', id, repository, kid, 7000],
            ['manifest', id, repository, referrer, 7000],
          ].sort(),
        );
        await stores.gc.transaction((q) => q.deleteManifest(id, randomDigest(), 7000)); // unknown: a no-op
      });

      it('deleteLink removes the link and enqueues the blob (repository 0, name "")', async () => {
        await drain();
        const repository = unique('delete/l');
        const d = randomDigest();
        const id = await write.commitBlob(repository, d, 99);
        await stores.gc.transaction((q) => q.deleteLink(id, d, 8000));
        assert.equal(await stores.metadata.repositories.linkedBlob(repository, d), null);
        assert.deepEqual(await stores.metadata.repositories.blob(d), { size: 99 }, 'the blob row stays');
        assert.deepEqual(await queue(), [{ kind: 'blob', repositoryId: 0, repository: '', digest: d, queuedAt: 8000 }]);
        assert.deepEqual(await stores.gc.transaction((q) => q.lockBlob(d)), { size: 99, linked: false });
      });

      it('transaction rolls back when its work throws; rolledBack always rolls back and returns the value', async () => {
        await drain();
        const repository = unique('delete/rb');
        const d = randomDigest();
        const manifest = await write.putManifest(repository, {});
        const id = await write.commitBlob(repository, d, 5);
        await assert.rejects(
          stores.gc.transaction(async (q) => {
            await q.deleteManifest(id, manifest, 1);
            await q.deleteLink(id, d, 1);
            throw new Error('crash');
          }),
          /crash/,
        );
        assert.ok(await stores.metadata.manifests.get(repository, manifest));
        assert.ok(await stores.metadata.repositories.linkedBlob(repository, d));
        const value = await stores.gc.rolledBack(async (q) => {
          await q.deleteManifest(id, manifest, 1);
          await q.deleteLink(id, d, 1);
          assert.equal(await q.lockManifest(id, manifest), null, 'deleted inside the transaction');
          return { reviewed: 2 };
        });
        assert.deepEqual(value, { reviewed: 2 });
        assert.ok(await stores.metadata.manifests.get(repository, manifest), 'a dry run deletes nothing');
        assert.ok(await stores.metadata.repositories.linkedBlob(repository, d));
        assert.deepEqual(await stores.gc.queueSize(Number.MAX_SAFE_INTEGER), { total: 0, due: 0 }, 'and enqueues nothing');
        await assert.rejects(
          stores.gc.rolledBack(async () => {
            throw new Error('dry run failed');
          }),
          /dry run failed/,
        );
      });
    });

    describe('blob deletion journal', () => {
      it('deleteBlobRow deletes the row and journals a pending deletion; finish, re-delete, prune; blobRowExists', async () => {
        // The journal is global: start from a known state.
        await stores.gc.finishBlobDeletions(
          (await stores.gc.pendingBlobDeletions(100_000)).map((d) => d.digest),
          1,
        );
        await stores.gc.pruneBlobDeletions(Number.MAX_SAFE_INTEGER);
        const [a, b, c] = [randomDigest(), randomDigest(), randomDigest()];
        for (const [d, size] of [
          [a, 10],
          [b, 20],
          [c, 30],
        ] as const)
          await write.recordBlob(d, size);
        assert.equal(await stores.gc.blobRowExists(a), true);
        await stores.gc.transaction(async (q) => {
          await q.deleteBlobRow(b, 20, 2000);
          await q.deleteBlobRow(a, 10, 1000);
          await q.deleteBlobRow(c, 30, 3000);
        });
        assert.equal(await stores.gc.blobRowExists(a), false);
        assert.equal(await stores.metadata.repositories.blob(a), null);
        assert.deepEqual(
          await stores.gc.pendingBlobDeletions(10),
          [
            { digest: a, size: 10 },
            { digest: b, size: 20 },
            { digest: c, size: 30 },
          ],
          'oldest first',
        );
        assert.deepEqual(await stores.gc.pendingBlobDeletions(2), [
          { digest: a, size: 10 },
          { digest: b, size: 20 },
        ]);

        await stores.gc.finishBlobDeletions([a, b], 5000);
        await stores.gc.finishBlobDeletions([], 5000);
        assert.deepEqual(await stores.gc.pendingBlobDeletions(10), [{ digest: c, size: 30 }]);

        // The content is pushed again, then deleted again: the journal row is pending again.
        await write.recordBlob(a, 10);
        assert.equal(await stores.gc.blobRowExists(a), true);
        await stores.gc.transaction((q) => q.deleteBlobRow(a, 11, 6000));
        assert.deepEqual(await stores.gc.pendingBlobDeletions(10), [
          { digest: c, size: 30 },
          { digest: a, size: 11 },
        ]);

        await stores.gc.finishBlobDeletions([c], 4000);
        assert.equal(await stores.gc.pruneBlobDeletions(4000), 0, 'strictly older than `before`');
        await stores.gc.finishBlobDeletions([a], 9000);
        assert.equal(await stores.gc.pruneBlobDeletions(5001), 2, 'b (5000) and c (4000)');
        assert.equal(await stores.gc.pruneBlobDeletions(5001), 0);
        assert.deepEqual(await stores.gc.pendingBlobDeletions(10), []);
        assert.equal(await stores.gc.pruneBlobDeletions(9001), 1);
      });

      it('within(tx).deletionOverlaps: an unfinished deletion, or one finished after the last append (less the clock-skew margin)', async () => {
        const [pending, finished, never] = [randomDigest(), randomDigest(), randomDigest()];
        await write.recordBlob(pending, 1);
        await write.recordBlob(finished, 1);
        await stores.gc.transaction(async (q) => {
          await q.deleteBlobRow(pending, 1, 1000);
          await q.deleteBlobRow(finished, 1, 1000);
        });
        await stores.gc.finishBlobDeletions([finished], 10_000);
        const overlaps = (digest: string, lastAppendAt: number) =>
          stores.metadata.transaction((tx) => stores.gc.within(tx).deletionOverlaps(digest, lastAppendAt));
        assert.equal(await overlaps(never, 0), false);
        assert.equal(await overlaps(pending, Number.MAX_SAFE_INTEGER), true, 'unfinished: whatever the upload time');
        assert.equal(await overlaps(finished, 5_000), true, 'finished after the last append');
        assert.equal(await overlaps(finished, 10_000), true);
        assert.equal(await overlaps(finished, 10_050), true, 'within the clock-skew margin');
        assert.equal(await overlaps(finished, 20_000), false, 'the upload came well after the deletion');
      });
    });

    describe('transactions', () => {
      it('batchTransactions is true on SQLite only', () => {
        assert.equal(stores.gc.batchTransactions, backend === 'sqlite');
      });
    });
  });
}
