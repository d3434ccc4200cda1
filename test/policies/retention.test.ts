import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deny } from '../../src/core/policies.js';
import type { RetentionRun } from '../../src/retention/ports.js';
import { addProject, adminAuth, api, useAuthServer } from '../auth/support.js';
import { imageOver, manifestStatus, pushIndex, runGc } from '../gc/support.js';
import { makeImage, RegistryClient } from '../helpers/registry-client.js';
import { pushTagged, rule, runRetention, setPolicy, smallImage, tagsOf } from './retention-support.js';

const PULL_FLUSH_MS = 100;

/** The reasons the report gives for keeping `tag` in `repository`. */
function reasons(run: RetentionRun, repository: string, tag: string): string[] | undefined {
  return run.report?.repositories.find((r) => r.repository === repository)?.kept.find((k) => k.tag === tag)?.reasons;
}

function removed(run: RetentionRun, repository: string): string[] {
  return (run.report?.repositories.find((r) => r.repository === repository)?.removed ?? []).map((r) => r.tag).sort();
}

describe('retention policies over HTTP: rules, tag-level removal, referrers, indexes, dry runs', () => {
  // GC collects as soon as an artifact is untagged (not after the tag-history window), so tests can see what it frees.
  const reg = useAuthServer(
    'basic',
    {},
    {
      gc: { enabled: false, graceperiod: 0 },
      events: { pullflushinterval: `${PULL_FLUSH_MS}ms` },
      tags: { history: { protectgc: false } },
    },
  );
  const admin = () => new RegistryClient(reg.url, { authorization: adminAuth() });

  it('latestPushedK keeps the K most recently pushed artifacts and untags the rest', async () => {
    await addProject(reg.server, 'pushed');
    for (const tag of ['v1', 'v2', 'v3', 'v4']) await pushTagged(admin(), 'pushed/app', [tag]);
    await setPolicy(reg.server, 'pushed', [rule('latestPushedK', { count: 2 })]);
    const run = await runRetention(reg.server, 'pushed', false);
    assert.deepEqual(await tagsOf(admin(), 'pushed/app'), ['v3', 'v4']);
    assert.deepEqual(removed(run, 'pushed/app'), ['v1', 'v2']);
    assert.deepEqual(reasons(run, 'pushed/app', 'v4'), ['rule 1: latestPushedK 2']);
    assert.equal(run.report?.totals.manifestsUntagged, 2);
  });

  it('nDaysSinceLastPush keeps what was pushed within N days', async () => {
    await addProject(reg.server, 'days');
    await pushTagged(admin(), 'days/app', ['old']);
    await pushTagged(admin(), 'days/app', ['new']);
    // Ten days ago, as far as the metadata knows.
    const tenDaysAgo = Date.now() - 10 * 86_400_000;
    const db = reg.server.stores.metadata.db;
    await db.updateTable('tags').set({ updated_at: tenDaysAgo }).where('name', '=', 'old').execute();
    const oldDigest = (await db.selectFrom('tags').select('manifest_digest').where('name', '=', 'old').executeTakeFirstOrThrow())
      .manifest_digest;
    await db.updateTable('manifests').set({ created_at: tenDaysAgo }).where('digest', '=', oldDigest).execute();
    await setPolicy(reg.server, 'days', [rule('nDaysSinceLastPush', { days: 5 })]);
    const run = await runRetention(reg.server, 'days', false);
    assert.deepEqual(await tagsOf(admin(), 'days/app'), ['new']);
    assert.deepEqual(reasons(run, 'days/app', 'new'), ['rule 1: nDaysSinceLastPush 5']);
  });

  it('latestPulledN and nDaysSinceLastPull see a pull within one flush interval', async () => {
    await addProject(reg.server, 'pulled');
    for (const tag of ['a', 'b', 'c']) await pushTagged(admin(), 'pulled/app', [tag]);
    await pushTagged(admin(), 'pulled/other', ['x']);
    await pushTagged(admin(), 'pulled/other', ['y']);
    for (const [repo, tag] of [
      ['pulled/app', 'b'],
      ['pulled/other', 'x'],
    ] as const) {
      const res = await admin().fetch(`/v2/${repo}/manifests/${tag}`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    // One flush interval and a margin for the timer.
    await new Promise((resolve) => setTimeout(resolve, PULL_FLUSH_MS * 3));
    await setPolicy(reg.server, 'pulled', [
      rule('latestPulledN', { count: 1, repositories: { decoration: 'matches', pattern: 'app' } }),
      rule('nDaysSinceLastPull', { days: 1, repositories: { decoration: 'excludes', pattern: 'app' } }),
    ]);
    const run = await runRetention(reg.server, 'pulled', false);
    assert.deepEqual(await tagsOf(admin(), 'pulled/app'), ['b']);
    assert.deepEqual(await tagsOf(admin(), 'pulled/other'), ['x']);
    assert.deepEqual(reasons(run, 'pulled/app', 'b'), ['rule 1: latestPulledN 1']);
    assert.deepEqual(reasons(run, 'pulled/other', 'x'), ['rule 2: nDaysSinceLastPull 1']);
  });

  it('the union of the rules is kept; a tag no rule keeps goes even when another tag of its digest stays', async () => {
    await addProject(reg.server, 'union');
    const shared = await pushTagged(admin(), 'union/app', ['v1.0', 'nightly-1']);
    await pushTagged(admin(), 'union/app', ['nightly-2']);
    await pushTagged(admin(), 'union/app', ['nightly-3']);
    await setPolicy(reg.server, 'union', [
      rule('always', { tags: { decoration: 'matches', pattern: 'v*' } }),
      rule('latestPushedK', { count: 1, tags: { decoration: 'matches', pattern: 'nightly-*' } }),
    ]);
    const run = await runRetention(reg.server, 'union', false);
    assert.deepEqual(await tagsOf(admin(), 'union/app'), ['nightly-3', 'v1.0']);
    assert.deepEqual(removed(run, 'union/app'), ['nightly-1', 'nightly-2']);
    assert.equal(await manifestStatus(admin(), 'union/app', shared.manifest.digest), 200, 'v1.0 still names the digest nightly-1 lost');
    const repo = run.report!.repositories.find((r) => r.repository === 'union/app')!;
    assert.equal(repo.untagged.length, 1, 'only nightly-2 lost its artifact its last tag');
    assert.ok(!repo.untagged.includes(shared.manifest.digest));
  });

  it('untagged artifacts a rule selects (tags.untagged) are deleted unless kept; tags no rule selects are left alone', async () => {
    await addProject(reg.server, 'untagged');
    const loose = smallImage();
    await admin().pushImage('untagged/app', loose.manifest.digest, loose);
    await pushTagged(admin(), 'untagged/app', ['keep-me']);
    await setPolicy(reg.server, 'untagged', [
      rule('latestPushedK', { count: 0, tags: { decoration: 'excludes', pattern: 'keep-*', untagged: true } }),
    ]);
    const run = await runRetention(reg.server, 'untagged', false);
    assert.deepEqual(await tagsOf(admin(), 'untagged/app'), ['keep-me']);
    assert.deepEqual(run.report?.repositories[0]?.deleted, [loose.manifest.digest]);
    assert.equal(await manifestStatus(admin(), 'untagged/app', loose.manifest.digest), 404);
  });

  it('referrers of kept artifacts stay (subject referrers and sha256-….sig tags); index children of kept indexes stay; GC agrees', async () => {
    await addProject(reg.server, 'graph');
    const client = admin();
    const signed = await pushTagged(client, 'graph/app', ['v1']);
    const subject = { digest: signed.manifest.digest, size: signed.manifest.size, mediaType: signed.mediaType };
    const sbom = makeImage({ layers: 1, layerSize: 32, subject, artifactType: 'application/spdx+json' });
    await client.pushImage('graph/app', sbom.manifest.digest, sbom);
    const sigTag = `${signed.manifest.digest.replace(':', '-')}.sig`;
    await pushTagged(client, 'graph/app', [sigTag]);
    const dev = await pushTagged(client, 'graph/app', ['dev']);
    const devSbom = makeImage({
      layers: 1,
      layerSize: 32,
      subject: { digest: dev.manifest.digest, size: dev.manifest.size, mediaType: dev.mediaType },
    });
    await client.pushImage('graph/app', devSbom.manifest.digest, devSbom);
    const oldChildren = [makeImage({ layers: 1, layerSize: 32 }), makeImage({ layers: 1, layerSize: 32 })];
    await pushIndex(client, 'graph/multi', 'v0', oldChildren);
    const newChildren = [makeImage({ layers: 1, layerSize: 32 }), makeImage({ layers: 1, layerSize: 32 })];
    await pushIndex(client, 'graph/multi', 'v1', newChildren);

    // Keep v* tags, select everything else to go.
    await setPolicy(reg.server, 'graph', [
      rule('always', { tags: { decoration: 'matches', pattern: 'v1' } }),
      rule('latestPushedK', { count: 0 }),
    ]);
    const run = await runRetention(reg.server, 'graph', false);
    assert.deepEqual(await tagsOf(client, 'graph/app'), [sigTag, 'v1'].sort());
    assert.deepEqual(reasons(run, 'graph/app', sigTag), [`referrer of kept ${signed.manifest.digest}`]);
    assert.deepEqual(await tagsOf(client, 'graph/multi'), ['v1']);

    await runGc(reg.server);
    assert.equal(await manifestStatus(client, 'graph/app', sbom.manifest.digest), 200, "the kept artifact's SBOM stays");
    assert.equal(await manifestStatus(client, 'graph/app', dev.manifest.digest), 404, 'the untagged dev image is collected');
    assert.equal(await manifestStatus(client, 'graph/app', devSbom.manifest.digest), 404, 'and with it its SBOM');
    for (const child of newChildren)
      assert.equal(await manifestStatus(client, 'graph/multi', child.manifest.digest), 200, 'children of the kept index stay');
    for (const child of oldChildren)
      assert.equal(await manifestStatus(client, 'graph/multi', child.manifest.digest), 404, 'children of the removed index go');
  });

  it('a policy hook that refuses a tag delete keeps the tag and the report names the policy; the others go', async () => {
    await addProject(reg.server, 'refuse');
    await pushTagged(admin(), 'refuse/app', ['protected']);
    await pushTagged(admin(), 'refuse/app', ['plain']);
    await pushTagged(admin(), 'refuse/app', ['newest']);
    reg.server.composition.policies.register({
      name: 'guard',
      hooks: {
        'tag.delete': ({ repository, tag }) => {
          if (repository === 'refuse/app' && tag === 'protected')
            throw deny('guard', 'PRECONDITION_FAILED', `'${repository}:${tag}' is protected`);
        },
      },
    });
    await setPolicy(reg.server, 'refuse', [rule('latestPushedK', { count: 1 })]);
    const dry = await runRetention(reg.server, 'refuse', true);
    const run = await runRetention(reg.server, 'refuse', false);
    assert.deepEqual(dry.report, run.report, 'the dry run met the same refusal');
    assert.deepEqual(await tagsOf(admin(), 'refuse/app'), ['newest', 'protected']);
    const repo = run.report!.repositories[0]!;
    assert.deepEqual(
      repo.refused.map((r) => [r.tag, r.policy]),
      [['protected', 'guard']],
    );
    assert.match(reasons(run, 'refuse/app', 'protected')![0]!, /is protected \(policy: guard\)/);
    assert.deepEqual(removed(run, 'refuse/app'), ['plain']);
    assert.equal(run.report?.totals.tagsRefused, 1);
  });

  it('an immutable tag rule (src/tags) refuses retention like any delete: the tag stays and the report names immutable-tags', async () => {
    await addProject(reg.server, 'frozen');
    await pushTagged(admin(), 'frozen/app', ['v1']);
    await pushTagged(admin(), 'frozen/app', ['v2']);
    await pushTagged(admin(), 'frozen/app', ['dev']);
    const res = await api(reg.server, 'POST', '/projects/frozen/immutable-rules', adminAuth(), {
      repository: { pattern: '**' },
      tag: { pattern: 'v*' },
    });
    assert.equal(res.status, 201, await res.clone().text());
    await setPolicy(reg.server, 'frozen', [rule('latestPushedK', { count: 0 })]);
    const run = await runRetention(reg.server, 'frozen', false);
    assert.deepEqual(await tagsOf(admin(), 'frozen/app'), ['v1', 'v2']);
    assert.deepEqual(removed(run, 'frozen/app'), ['dev']);
    assert.deepEqual(
      run.report!.repositories[0]!.refused.map((r) => [r.tag, r.policy]),
      [
        ['v1', 'immutable-tags'],
        ['v2', 'immutable-tags'],
      ],
    );
    assert.match(reasons(run, 'frozen/app', 'v1')![0]!, /'frozen\/app:v1' configured as immutable/);
  });

  it('a dry run changes nothing and reports exactly what the real run then does; bytes equal what GC frees', async () => {
    await addProject(reg.server, 'dry');
    const client = admin();
    // Two repositories; a layer shared by a removed image (dry/api:v1) and a kept one (dry/web:v4) is not freed.
    const layer = makeImage({ layers: 1, layerSize: 100 }).layers[0]!;
    for (const repo of ['dry/api', 'dry/web']) {
      for (let i = 1; i <= 4; i++) {
        const sharesLayer = (repo === 'dry/api' && i === 1) || (repo === 'dry/web' && i === 4);
        await pushTagged(client, repo, [`v${i}`], sharesLayer ? imageOver([layer]) : undefined);
      }
    }
    await setPolicy(reg.server, 'dry', [rule('latestPushedK', { count: 2 })]);
    await runGc(reg.server);
    const eventsBefore = await deletedTagEvents();

    const dry = await runRetention(reg.server, 'dry', true);
    assert.equal(dry.dryRun, true);
    assert.deepEqual(await tagsOf(client, 'dry/api'), ['v1', 'v2', 'v3', 'v4'], 'the dry run removed nothing');
    assert.equal(await deletedTagEvents(), eventsBefore, 'and appended no tag.deleted event');

    const real = await runRetention(reg.server, 'dry', false);
    assert.deepEqual(real.report, dry.report, 'dry-run report == real-run report');
    assert.equal(real.report?.totals.tagsRemoved, 4);
    assert.deepEqual(await tagsOf(client, 'dry/api'), ['v3', 'v4']);
    assert.equal(await deletedTagEvents(), eventsBefore + 4);

    const gc = await runGc(reg.server);
    assert.ok(real.report!.totals.bytes > 0);
    assert.equal(gc.counts.bytesFreed, real.report!.totals.bytes, 'the bytes the report announced are the bytes GC freed');
  });

  /** tag.deleted events in the outbox so far. */
  async function deletedTagEvents(): Promise<number> {
    const db = reg.server.stores.metadata.db as unknown as {
      selectFrom(t: 'events'): { select(c: string): { where(c: string, op: string, v: string): { execute(): Promise<unknown[]> } } };
    };
    return (await db.selectFrom('events').select('id').where('type', '=', 'tag.deleted').execute()).length;
  }

  it('each run is stored and readable, and appends a retention.finished event', async () => {
    const list = (await (
      await fetch(`${reg.url}/api/v1/projects/dry/retention/runs`, { headers: { authorization: adminAuth() } })
    ).json()) as RetentionRun[];
    assert.deepEqual(
      list.map((r) => r.dryRun),
      [false, true],
    );
    assert.equal(list[0]!.report, undefined, 'the list carries totals, not reports');
    assert.deepEqual(
      list[0]!.summary,
      (
        (await (
          await fetch(`${reg.url}/api/v1/projects/dry/retention/runs/${list[0]!.id}`, { headers: { authorization: adminAuth() } })
        ).json()) as RetentionRun
      ).report!.totals,
    );
    await reg.server.stores.outbox.sequence(10_000);
    const events = (await reg.server.stores.outbox.read(0, 100_000)).map((e) => e.event).filter((e) => e.type === 'retention.finished');
    const forDry = events.filter((e) => e.type === 'retention.finished' && e.project === 'dry');
    assert.deepEqual(
      forDry.map((e) => e.type === 'retention.finished' && [e.runId, e.dryRun, e.tagsRemoved, e.manifestsUntagged]),
      [
        [list[1]!.id, true, 4, 4],
        [list[0]!.id, false, 4, 4],
      ],
    );
  });
});
