import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { OCI_INDEX, OCI_MANIFEST, RegistryClient, jsonBlob, makeBlob, makeImage, type Blob } from '../helpers/registry-client.js';
import { ADMIN_PASSWORD, addMember, addProject, addUser, adminAuth, api, basic, useAuthServer } from '../auth/support.js';
import { signIn, ui } from './support.js';
import {
  cosignKeys,
  cosignSign,
  pushCosignReferrer,
  pushCosignTag,
  simpleSigningPayload,
  trust,
  type Target,
} from '../signatures/support.js';

const alice = basic('alice', 'alice-password');
const bob = basic('bob', 'bob-password');

interface TagItem {
  tag: string;
  digest: string;
  kind: string;
  size: number;
  platforms: { os: string; architecture: string; variant?: string }[];
  signatures: { count: number; verified: number | null };
  sbom: boolean;
  scan: unknown;
  pushedAt: string;
}
interface TagPage {
  items: TagItem[];
  next: string | null;
  total: number;
}

async function json<T>(res: Response, status = 200): Promise<T> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  return JSON.parse(text) as T;
}

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  return ((await res.json()) as { errors: { code: string; message: string }[] }).errors[0]!;
}

/** Pushes `manifest` (with its config and layers) under `tag`; returns its digest. */
async function pushArtifact(
  client: RegistryClient,
  repo: string,
  tag: string,
  manifest: Record<string, unknown>,
  blobs: Blob[],
  mediaType = OCI_MANIFEST,
): Promise<Blob> {
  for (const blob of blobs) assert.equal((await client.pushBlob(repo, blob)).status, 201);
  const body = jsonBlob({ schemaVersion: 2, mediaType, ...manifest });
  const res = await client.pushManifest(repo, tag, body, mediaType);
  assert.equal(res.status, 201, await res.text());
  return body;
}

function artifact(configMediaType: string, layerMediaType: string, extra: Record<string, unknown> = {}) {
  const config =
    configMediaType === 'application/vnd.oci.empty.v1+json'
      ? { data: Buffer.from('{}'), digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 }
      : jsonBlob({ kind: configMediaType, nonce: Math.random() });
  const layer = makeBlob(64);
  return {
    blobs: [config as Blob, layer],
    manifest: {
      config: { mediaType: configMediaType, digest: config.digest, size: config.size },
      layers: [{ mediaType: layerMediaType, digest: layer.digest, size: layer.size }],
      ...extra,
    },
  };
}

describe('web UI browse endpoints', () => {
  const reg = useAuthServer('basic');
  let admin: RegistryClient;
  let image: ReturnType<typeof makeImage>;
  const subject = () => ({ mediaType: OCI_MANIFEST, digest: image.manifest.digest, size: image.manifest.size });

  before(async () => {
    admin = new RegistryClient(reg.url, { authorization: adminAuth() });
    await addUser(reg.server, 'alice', 'alice-password');
    await addUser(reg.server, 'bob', 'bob-password');
    await addProject(reg.server, 'alpha');
    await addProject(reg.server, 'beta');
    await addMember(reg.server, 'alpha', 'alice', 'developer');
    await addMember(reg.server, 'beta', 'bob', 'maintainer');

    image = makeImage({ layers: 2, layerSize: 1000 });
    assert.equal((await admin.pushImage('alpha/app', 'v1', image)).status, 201);
    // A two-platform index.
    const arm = makeImage();
    const amd = makeImage();
    assert.equal((await admin.pushImage('alpha/app', 'arm', arm)).status, 201);
    assert.equal((await admin.pushImage('alpha/app', 'amd', amd)).status, 201);
    await pushArtifact(
      admin,
      'alpha/app',
      'multi',
      {
        manifests: [
          {
            mediaType: OCI_MANIFEST,
            digest: amd.manifest.digest,
            size: amd.manifest.size,
            platform: { os: 'linux', architecture: 'amd64' },
          },
          {
            mediaType: OCI_MANIFEST,
            digest: arm.manifest.digest,
            size: arm.manifest.size,
            platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
          },
        ],
      },
      [],
      OCI_INDEX,
    );
    const helm = artifact('application/vnd.cncf.helm.config.v1+json', 'application/vnd.cncf.helm.chart.content.v1.tar+gzip');
    await pushArtifact(admin, 'alpha/app', 'chart', helm.manifest, helm.blobs);
    const sbom = artifact('application/vnd.oci.empty.v1+json', 'application/spdx+json', {
      artifactType: 'application/spdx+json',
      subject: subject(),
    });
    await pushArtifact(admin, 'alpha/app', 'sbom-tag', sbom.manifest, sbom.blobs);
    const sig = artifact('application/vnd.oci.empty.v1+json', 'application/vnd.dev.cosign.simplesigning.v1+json', {
      artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
      subject: subject(),
    });
    await pushArtifact(admin, 'alpha/app', 'sig-tag', sig.manifest, sig.blobs);
    const att = artifact('application/vnd.oci.empty.v1+json', 'application/vnd.dsse.envelope.v1+json', {
      artifactType: 'application/vnd.dev.cosign.artifact.att.v1+json',
    });
    await pushArtifact(admin, 'alpha/app', 'att-tag', att.manifest, att.blobs);
    const model = artifact('application/vnd.cncf.model.config.v1+json', 'application/vnd.cncf.model.weight.v1.tar', {
      artifactType: 'application/vnd.cncf.model.manifest.v1+json',
    });
    await pushArtifact(admin, 'alpha/app', 'model', model.manifest, model.blobs);
    const wasm = artifact('application/vnd.wasm.config.v0+json', 'application/vnd.wasm.content.layer.v1+wasm');
    await pushArtifact(admin, 'alpha/app', 'wasm', wasm.manifest, wasm.blobs);
    const other = artifact('application/vnd.example.thing.v1+json', 'application/octet-stream');
    await pushArtifact(admin, 'alpha/app', 'thing', other.manifest, other.blobs);

    for (const [repo, tag] of [
      ['alpha/other', 'latest'],
      ['alpha/zeta', 'latest'],
      ['alpha/tmp', 'x'],
      ['beta/secret', 'v1'],
      ['beta/secret', 'topsecret-tag'],
    ]) {
      assert.equal((await admin.pushImage(repo!, tag!, makeImage())).status, 201);
    }
  });

  it('tags carry their kind from media types: image, index, helm, sbom, signature, attestation, model, wasm, artifact', async () => {
    const page = await json<TagPage>(await api(reg.server, 'GET', '/repositories/alpha%2Fapp/tags?n=100', alice));
    const kinds = Object.fromEntries(page.items.map((t) => [t.tag, t.kind]));
    assert.deepEqual(kinds, {
      amd: 'image',
      arm: 'image',
      'att-tag': 'attestation',
      chart: 'helm',
      model: 'model',
      multi: 'index',
      'sbom-tag': 'sbom',
      'sig-tag': 'signature',
      thing: 'artifact',
      v1: 'image',
      wasm: 'wasm',
    });
    assert.equal(page.total, 11);
    assert.equal(page.next, null);
    const v1 = page.items.find((t) => t.tag === 'v1')!;
    assert.deepEqual(v1.signatures, { count: 1, verified: null });
    assert.equal(v1.sbom, true);
    assert.equal(v1.scan, null);
    assert.equal(v1.size, image.manifest.size + image.config.size + 2000);
    const multi = page.items.find((t) => t.tag === 'multi')!;
    assert.deepEqual(multi.platforms, [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    assert.ok(multi.size > 2 * 2048, `index size ${multi.size} counts its children's layers`);
    assert.equal(page.items.find((t) => t.tag === 'amd')!.sbom, false);
  });

  it('tags: keyset pages by name and by push time, search, bad arguments', async () => {
    const first = await json<TagPage>(await api(reg.server, 'GET', '/repositories/alpha%2Fapp/tags?n=4', alice));
    assert.deepEqual(
      first.items.map((t) => t.tag),
      ['amd', 'arm', 'att-tag', 'chart'],
    );
    assert.ok(first.next);
    const second = await json<TagPage>(await api(reg.server, 'GET', `/repositories/alpha%2Fapp/tags?n=4&last=${first.next}`, alice));
    assert.deepEqual(
      second.items.map((t) => t.tag),
      ['model', 'multi', 'sbom-tag', 'sig-tag'],
    );
    const byPush = await json<TagPage>(await api(reg.server, 'GET', '/repositories/alpha%2Fapp/tags?sort=pushed&n=3', alice));
    assert.equal(byPush.items[0]!.tag, 'thing', 'newest first');
    const rest = await json<TagPage>(
      await api(reg.server, 'GET', `/repositories/alpha%2Fapp/tags?sort=pushed&n=100&last=${byPush.next}`, alice),
    );
    assert.equal(byPush.items.length + rest.items.length, 11);
    assert.equal(new Set([...byPush.items, ...rest.items].map((t) => t.tag)).size, 11);
    const found = await json<TagPage>(await api(reg.server, 'GET', '/repositories/alpha%2Fapp/tags?q=TAG', alice));
    assert.deepEqual(
      found.items.map((t) => t.tag),
      ['att-tag', 'sbom-tag', 'sig-tag'],
    );
    assert.equal(found.total, 3);
    const underscore = await json<TagPage>(await api(reg.server, 'GET', '/repositories/alpha%2Fapp/tags?q=_', alice));
    assert.equal(underscore.total, 0, '_ is matched literally');
    for (const bad of ['sort=size', 'order=up', 'n=0', 'n=x', 'last=garbage']) {
      const res = await api(reg.server, 'GET', `/repositories/alpha%2Fapp/tags?${bad}`, alice);
      assert.equal(res.status, 400, bad);
      assert.equal((await errorOf(res)).code, 'INVALID_ARGUMENT');
    }
  });

  it('repositories of a project: counts, sizes, sorting, keyset pages and the total', async () => {
    type RepoPage = {
      items: { name: string; tagCount: number; pushedAt: string; pulls: number; size: number }[];
      next: string | null;
      total: number;
    };
    const all = await json<RepoPage>(await api(reg.server, 'GET', '/projects/alpha/repositories', alice));
    assert.deepEqual(
      all.items.map((r) => r.name),
      ['alpha/app', 'alpha/other', 'alpha/tmp', 'alpha/zeta'],
    );
    assert.equal(all.total, 4);
    const app = all.items[0]!;
    assert.equal(app.tagCount, 11);
    assert.ok(app.size > 2000);
    assert.ok(Date.parse(app.pushedAt) > 0);
    const p1 = await json<RepoPage>(await api(reg.server, 'GET', '/projects/alpha/repositories?n=3&order=desc', alice));
    assert.deepEqual(
      p1.items.map((r) => r.name),
      ['alpha/zeta', 'alpha/tmp', 'alpha/other'],
    );
    const p2 = await json<RepoPage>(await api(reg.server, 'GET', `/projects/alpha/repositories?n=3&order=desc&last=${p1.next}`, alice));
    assert.deepEqual(
      p2.items.map((r) => r.name),
      ['alpha/app'],
    );
    assert.equal(p2.next, null);
    const pushed = await json<RepoPage>(await api(reg.server, 'GET', '/projects/alpha/repositories?sort=pushed&n=2', alice));
    assert.deepEqual(
      pushed.items.map((r) => r.name),
      ['alpha/tmp', 'alpha/zeta'],
    );
    const pushed2 = await json<RepoPage>(
      await api(reg.server, 'GET', `/projects/alpha/repositories?sort=pushed&n=2&last=${pushed.next}`, alice),
    );
    assert.deepEqual(
      pushed2.items.map((r) => r.name),
      ['alpha/other', 'alpha/app'],
    );
    const q = await json<RepoPage>(await api(reg.server, 'GET', '/projects/alpha/repositories?q=ZE', alice));
    assert.deepEqual(
      q.items.map((r) => r.name),
      ['alpha/zeta'],
    );
    assert.equal(q.total, 1);
    // Pulls sort: pull alpha/other twice; counts are flushed every 10 s, so only check the order is valid.
    const pulls = await json<RepoPage>(await api(reg.server, 'GET', '/projects/alpha/repositories?sort=pulls', alice));
    assert.equal(pulls.items.length, 4);
  });

  it("a user cannot see, list or search another project's private repositories", async () => {
    const repos = await api(reg.server, 'GET', '/projects/beta/repositories', alice);
    assert.equal(repos.status, 404);
    assert.equal((await errorOf(repos)).code, 'NOT_FOUND');
    for (const path of ['/repositories/beta%2Fsecret/tags', '/repositories/beta%2Fsecret/artifacts/v1']) {
      const res = await api(reg.server, 'GET', path, alice);
      assert.equal(res.status, 404, path);
      assert.doesNotMatch(JSON.stringify(await errorOf(res)), /topsecret/);
    }
    for (const [method, path, body] of [
      ['DELETE', '/repositories/beta%2Fsecret', undefined],
      ['POST', '/repositories/beta%2Fsecret/tags/delete', { tags: ['v1'] }],
    ] as const) {
      assert.equal((await api(reg.server, method, path, alice, body)).status, 404, `${method} ${path}`);
    }
    const search = await json<{ repositories: { name: string }[]; tags: { repository: string; tag: string }[] }>(
      await api(reg.server, 'GET', '/search?q=secret', alice),
    );
    assert.deepEqual(search, { repositories: [], tags: [] });
    const bobSearch = await json<{ repositories: { name: string; project: string }[]; tags: { repository: string; tag: string }[] }>(
      await api(reg.server, 'GET', '/search?q=SECRET', bob),
    );
    assert.deepEqual(bobSearch.repositories, [{ name: 'beta/secret', project: 'beta' }]);
    assert.deepEqual(
      bobSearch.tags.map((t) => `${t.repository}:${t.tag}`),
      ['beta/secret:topsecret-tag'],
    );
    const mine = await json<{ repositories: { name: string }[]; tags: { repository: string; tag: string }[] }>(
      await api(reg.server, 'GET', '/search?q=app', alice),
    );
    assert.deepEqual(
      mine.repositories.map((r) => r.name),
      ['alpha/app'],
    );
    assert.equal((await api(reg.server, 'GET', '/search', alice)).status, 400);
    assert.equal((await fetch(`${reg.url}/api/v1/search?q=secret`)).status, 401);
  });

  it('artifact detail by tag and by digest: manifest, parsed config, layers, referrers with kinds, tags', async () => {
    type Detail = {
      digest: string;
      kind: string;
      config: { os: string } | null;
      layers: { digest: string; size: number }[];
      referrers: { kind: string; digest: string }[];
      tags: string[];
      manifest: { schemaVersion: number };
      pushedAt: string;
      size: number;
    };
    const byTag = await json<Detail>(await api(reg.server, 'GET', '/repositories/alpha%2Fapp/artifacts/v1', alice));
    assert.equal(byTag.digest, image.manifest.digest);
    assert.equal(byTag.kind, 'image');
    assert.equal(byTag.config?.os, 'linux');
    assert.equal(byTag.layers.length, 2);
    assert.deepEqual(byTag.referrers.map((r) => r.kind).sort(), ['sbom', 'signature']);
    assert.deepEqual(byTag.tags, ['v1']);
    assert.equal(byTag.manifest.schemaVersion, 2);
    const byDigest = await json<Detail>(
      await api(reg.server, 'GET', `/repositories/alpha%2Fapp/artifacts/${image.manifest.digest}`, alice),
    );
    assert.equal(byDigest.digest, image.manifest.digest);
    const multi = await json<Detail & { platforms: { os: string; architecture: string; digest: string }[] }>(
      await api(reg.server, 'GET', '/repositories/alpha%2Fapp/artifacts/multi', alice),
    );
    assert.equal(multi.kind, 'index');
    assert.equal(multi.platforms.length, 2);
    assert.equal(multi.config, null);
    assert.equal((await api(reg.server, 'GET', '/repositories/alpha%2Fapp/artifacts/nope', alice)).status, 404);
    assert.equal((await api(reg.server, 'GET', `/repositories/alpha%2Fapp/artifacts/sha256:${'0'.repeat(64)}`, alice)).status, 404);
  });

  it('batch tag delete: through core (immutable rule refuses one tag, the others go), delete permission needed', async () => {
    const rule = await api(reg.server, 'POST', '/projects/alpha/immutable-rules', adminAuth(), { tag: { pattern: 'keep-*' } });
    assert.equal(rule.status, 201, await rule.text());
    for (const tag of ['keep-1', 'del-1', 'del-2']) assert.equal((await admin.pushImage('alpha/batch', tag, makeImage())).status, 201);
    const denied = await api(reg.server, 'POST', '/repositories/alpha%2Fbatch/tags/delete', alice, { tags: ['del-1'] });
    assert.equal(denied.status, 403, 'a developer may not delete');
    assert.match((await errorOf(denied)).message, /delete permission/);
    const browser = await signIn(reg.server, 'admin', ADMIN_PASSWORD);
    assert.equal(
      (await ui(reg.server, browser, 'POST', '/repositories/alpha%2Fbatch/tags/delete', { tags: ['del-1'] }, false)).status,
      403,
      'CSRF',
    );
    const res = await ui(reg.server, browser, 'POST', '/repositories/alpha%2Fbatch/tags/delete', {
      tags: ['keep-1', 'del-1', 'del-2', 'missing'],
    });
    const body = await json<{ deleted: string[]; failed: { tag: string; code: string; message: string }[] }>(res);
    assert.deepEqual(body.deleted, ['del-1', 'del-2']);
    assert.deepEqual(
      body.failed.map((f) => `${f.tag}:${f.code}`),
      ['keep-1:DENIED', 'missing:MANIFEST_UNKNOWN'],
    );
    assert.match(body.failed[0]!.message, /immutable/);
    const left = await json<TagPage>(await api(reg.server, 'GET', '/repositories/alpha%2Fbatch/tags', adminAuth()));
    assert.deepEqual(
      left.items.map((t) => t.tag),
      ['keep-1'],
    );
    assert.equal((await api(reg.server, 'POST', '/repositories/alpha%2Fbatch/tags/delete', adminAuth(), { tags: [] })).status, 400);
    // The deletes are audited like /v2 deletes (events → audit consumer) — at least the tag is gone from /v2.
    assert.equal((await admin.fetch('/v2/alpha/batch/manifests/del-1')).status, 404);
  });

  it('repository delete: 403 without delete, 200 {deleted, untagged, failed} for an admin, then gone from listings', async () => {
    const denied = await api(reg.server, 'DELETE', '/repositories/alpha%2Ftmp', alice);
    assert.equal(denied.status, 403);
    assert.match((await errorOf(denied)).message, /delete permission/);
    const done = await json<{ deleted: string[]; untagged: string[]; failed: unknown[] }>(
      await api(reg.server, 'DELETE', '/repositories/alpha%2Ftmp', adminAuth()),
    );
    assert.ok(done.deleted.length > 0);
    assert.deepEqual(done.untagged, []);
    assert.deepEqual(done.failed, []);
    assert.equal((await api(reg.server, 'GET', '/repositories/alpha%2Ftmp/tags', adminAuth())).status, 200);
    const repos = await json<{ items: { name: string }[] }>(await api(reg.server, 'GET', '/projects/alpha/repositories', alice));
    assert.ok(!repos.items.some((r) => r.name === 'alpha/tmp'));
    assert.equal((await admin.fetch('/v2/alpha/tmp/manifests/x')).status, 404);
  });

  it('repository delete goes on past a refusal: deletes what may go (other manifests, mutable tags) and answers what stayed and why', async () => {
    // alpha has the immutable rule keep-* (batch tag delete test): `kept` cannot be deleted by digest.
    const kept = makeImage();
    const other = makeImage();
    assert.equal((await admin.pushImage('alpha/mixed', 'keep-9', kept)).status, 201);
    assert.equal((await admin.pushManifest('alpha/mixed', 'also-kept', kept.manifest)).status, 201);
    assert.equal((await admin.pushImage('alpha/mixed', 'other', other)).status, 201);
    const sig = artifact('application/vnd.oci.empty.v1+json', 'application/vnd.dev.cosign.simplesigning.v1+json', {
      artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
      subject: { mediaType: OCI_MANIFEST, digest: kept.manifest.digest, size: kept.manifest.size },
    });
    const referrer = await pushArtifact(admin, 'alpha/mixed', 'sig-of-kept', sig.manifest, sig.blobs);
    const browser = await signIn(reg.server, 'admin', ADMIN_PASSWORD);
    const body = await json<{
      deleted: string[];
      untagged: string[];
      failed: { digest: string; code: string; message: string; tags: { tag: string; code: string; message: string }[] }[];
    }>(await ui(reg.server, browser, 'DELETE', '/repositories/alpha%2Fmixed'));
    assert.deepEqual(new Set(body.deleted), new Set([other.manifest.digest, referrer.digest]));
    assert.deepEqual(body.untagged, ['also-kept']);
    assert.equal(body.failed.length, 1);
    assert.equal(body.failed[0]!.digest, kept.manifest.digest);
    assert.equal(body.failed[0]!.code, 'DENIED');
    assert.match(body.failed[0]!.message, /immutable/);
    assert.deepEqual(
      body.failed[0]!.tags.map((t) => `${t.tag}:${t.code}`),
      ['keep-9:DENIED'],
    );
    const left = await json<TagPage>(await api(reg.server, 'GET', '/repositories/alpha%2Fmixed/tags', adminAuth()));
    assert.deepEqual(
      left.items.map((t) => t.tag),
      ['keep-9'],
    );
    assert.equal((await admin.fetch(`/v2/alpha/mixed/manifests/${other.manifest.digest}`)).status, 404);
  });

  it('system info for any signed-in user; job run now for admins only', async () => {
    const info = await json<{ version: string; registryHost: string; features: Record<string, boolean>; oidcProviders: unknown[] }>(
      await api(reg.server, 'GET', '/system/info', alice),
    );
    assert.match(info.version, /^\d+\.\d+\.\d+/);
    assert.equal(info.registryHost, new URL(reg.url).host);
    assert.equal(info.features.signatures, true);
    assert.deepEqual(info.oidcProviders, []);
    assert.equal((await fetch(`${reg.url}/api/v1/system/info`)).status, 401);
    assert.equal((await api(reg.server, 'POST', '/jobs/events-prune/run', alice)).status, 403);
    const run = await api(reg.server, 'POST', '/jobs/events-prune/run', adminAuth());
    const body = await json<{ run: { job: string } }>(run, 202);
    assert.equal(body.run.job, 'events-prune');
    assert.equal((await api(reg.server, 'POST', '/jobs/nope/run', adminAuth())).status, 404);
  });
});

describe("web UI tag listing: signatures verified with the project's trust policy keys", () => {
  const reg = useAuthServer('basic');

  it('verified is null without keys, then the count of valid signatures per tag (tag and referrer forms), following key changes', async () => {
    await addProject(reg.server, 'signed');
    const admin = new RegistryClient(reg.url, { authorization: adminAuth() });
    const trusted = cosignKeys();
    const other = cosignKeys();
    const targets: Record<string, Target> = {};
    for (const tag of ['by-tag', 'by-referrer', 'by-other', 'unsigned']) {
      const image = makeImage();
      assert.equal((await admin.pushImage('signed/app', tag, image)).status, 201);
      targets[tag] = { repository: 'signed/app', digest: image.manifest.digest, mediaType: OCI_MANIFEST, size: image.manifest.size };
    }
    const layer = (key: typeof trusted, target: Target) => {
      const payload = simpleSigningPayload(`127.0.0.1/${target.repository}`, target.digest);
      return { payload, signature: cosignSign(key.privateKey, payload) };
    };
    await pushCosignTag(admin, targets['by-tag']!, [layer(trusted, targets['by-tag']!)]);
    await pushCosignReferrer(admin, targets['by-referrer']!, [layer(trusted, targets['by-referrer']!)]);
    await pushCosignReferrer(admin, targets['by-other']!, [layer(other, targets['by-other']!)]);
    const badges = async () => {
      const page = await json<TagPage>(await api(reg.server, 'GET', '/repositories/signed%2Fapp/tags', adminAuth()));
      return Object.fromEntries(
        page.items.filter((t) => !t.tag.endsWith('.sig')).map((t) => [t.tag, `${t.signatures.count}/${t.signatures.verified}`]),
      );
    };
    assert.deepEqual(
      await badges(),
      { 'by-other': '1/null', 'by-referrer': '1/null', 'by-tag': '1/null', unsigned: '0/null' },
      'no keys: nothing to verify with',
    );
    await trust(reg.server, adminAuth(), 'signed', 'release', trusted.publicPem);
    assert.deepEqual(await badges(), { 'by-other': '1/0', 'by-referrer': '1/1', 'by-tag': '1/1', unsigned: '0/0' });
    assert.deepEqual(
      await badges(),
      { 'by-other': '1/0', 'by-referrer': '1/1', 'by-tag': '1/1', unsigned: '0/0' },
      'cached verdicts answer the same',
    );
    await trust(reg.server, adminAuth(), 'signed', 'other', other.publicPem);
    assert.deepEqual(
      await badges(),
      { 'by-other': '1/1', 'by-referrer': '1/1', 'by-tag': '1/1', unsigned: '0/0' },
      'a new key applies at once',
    );
  });
});
