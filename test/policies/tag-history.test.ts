import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { adminAuth, api, useAuthServer, type HasUrl } from '../auth/support.js';
import { runGc } from '../gc/support.js';
import type { Image } from '../helpers/registry-client.js';
import { ROOT, type TestServer } from '../helpers/server.js';
import { tagHistoryPruneJob } from '../../src/tags/index.js';
import { addRule, clientAs, refusal, seedDeveloper, seedTeam, smallImage, USERS, variant } from './tags-support.js';

const exec = promisify(execFile);

interface Entry {
  tag: string;
  oldDigest: string | null;
  newDigest: string | null;
  actor: string | null;
  via: string;
}
interface Page {
  entries: Entry[];
  next: number | null;
}

const REPO = encodeURIComponent('team/app');

async function history(server: HasUrl, query = '', authorization = adminAuth()): Promise<Page> {
  const res = await api(server, 'GET', `/repositories/${REPO}/tag-history${query}`, authorization);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Page;
}

const restore = (server: HasUrl, tag: string, digest: string, authorization = USERS.dev) =>
  api(server, 'POST', `/repositories/${REPO}/tags/${tag}/restore`, authorization, { digest });
const manifestStatus = async (server: HasUrl, image: Image) =>
  (await clientAs(server, adminAuth()).fetch(`/v2/team/app/manifests/${image.manifest.digest}`, { method: 'HEAD' })).status;
const headDigest = async (server: HasUrl, tag: string) =>
  (await clientAs(server, adminAuth()).fetch(`/v2/team/app/manifests/${tag}`, { method: 'HEAD' })).headers.get('docker-content-digest');

/** Pushes `a` as team/app:v1, then moves v1 to `b` (both as the developer). */
async function pushThenMove(server: HasUrl, a: Image, b: Image): Promise<void> {
  const dev = clientAs(server, USERS.dev);
  await dev.pushImage('team/app', 'v1', a);
  assert.equal((await dev.pushManifest('team/app', 'v1', b.manifest)).status, 201);
}

describe('tag history and rollback (default window, GC protection on)', () => {
  const reg = useAuthServer('basic', {}, { gc: { enabled: false, graceperiod: 0 } }, { setup: seedTeam });
  const a = smallImage();
  const b = variant(a, 'b');
  const c = variant(a, 'c');

  it('records pushes, moves, tag deletes and manifest deletes with who and how, newest first', async () => {
    await pushThenMove(reg.server, a, b);
    const dev = clientAs(reg.server, USERS.dev);
    const admin = clientAs(reg.server, adminAuth());
    await dev.pushManifest('team/app', 'tmp', c.manifest);
    await dev.pushManifest('team/app', 'tmp2', c.manifest);
    assert.equal((await admin.fetch('/v2/team/app/manifests/tmp2', { method: 'DELETE' })).status, 202);
    assert.equal((await admin.fetch(`/v2/team/app/manifests/${c.manifest.digest}`, { method: 'DELETE' })).status, 202);
    const { entries } = await history(reg.server);
    assert.deepEqual(
      entries.map(({ tag, oldDigest, newDigest, actor, via }) => ({ tag, oldDigest, newDigest, actor, via })),
      [
        { tag: 'tmp', oldDigest: c.manifest.digest, newDigest: null, actor: 'admin', via: 'delete' },
        { tag: 'tmp2', oldDigest: c.manifest.digest, newDigest: null, actor: 'admin', via: 'delete' },
        { tag: 'tmp2', oldDigest: null, newDigest: c.manifest.digest, actor: 'dev', via: 'push' },
        { tag: 'tmp', oldDigest: null, newDigest: c.manifest.digest, actor: 'dev', via: 'push' },
        { tag: 'v1', oldDigest: a.manifest.digest, newDigest: b.manifest.digest, actor: 'dev', via: 'push' },
        { tag: 'v1', oldDigest: null, newDigest: a.manifest.digest, actor: 'dev', via: 'push' },
      ],
    );
  });

  it('pages with n and last, and filters by tag', async () => {
    const first = await history(reg.server, '?n=3');
    assert.equal(first.entries.length, 3);
    assert.notEqual(first.next, null);
    const second = await history(reg.server, `?n=3&last=${first.next}`);
    assert.deepEqual(
      second.entries.map((e) => [e.tag, e.via]),
      [
        ['tmp', 'push'],
        ['v1', 'push'],
        ['v1', 'push'],
      ],
    );
    assert.equal(second.entries.at(-1)!.newDigest, a.manifest.digest, 'the oldest entry last');
    assert.equal(second.next, null);
    assert.deepEqual(
      (await history(reg.server, '?tag=tmp')).entries.map((e) => e.via),
      ['delete', 'push'],
    );
    assert.equal((await api(reg.server, 'GET', `/repositories/${REPO}/tag-history?n=x`, adminAuth())).status, 400);
  });

  it("pages through one tag's changes (?tag= with n and last, as the web UI asks) and declares the three in openapi.json", async () => {
    const first = await history(reg.server, '?tag=v1&n=1');
    assert.deepEqual(
      first.entries.map((e) => [e.tag, e.newDigest]),
      [['v1', b.manifest.digest]],
    );
    assert.notEqual(first.next, null);
    const second = await history(reg.server, `?tag=v1&n=1&last=${first.next}`);
    assert.deepEqual(
      second.entries.map((e) => [e.tag, e.newDigest]),
      [['v1', a.manifest.digest]],
    );
    assert.equal(second.next, null, 'the tag has no older change');
    const bad = await api(reg.server, 'GET', `/repositories/${REPO}/tag-history?tag=${encodeURIComponent('-not a tag')}`, adminAuth());
    assert.equal(bad.status, 400);
    assert.ok(((await bad.json()) as { errors: { code: string }[] }).errors[0]!.code, 'a registry JSON error');
    const doc = (await (await api(reg.server, 'GET', '/openapi.json', adminAuth())).json()) as {
      paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>;
    };
    const params = doc.paths['/api/v1/repositories/{name}/tag-history']?.get?.parameters ?? [];
    assert.deepEqual(
      params
        .filter((p) => p.in === 'query')
        .map((p) => p.name)
        .sort(),
      ['last', 'n', 'tag'],
    );
  });

  it('GC keeps the manifest v1 pointed to before the move (within the window)', async () => {
    const report = await runGc(reg.server);
    assert.equal(await manifestStatus(reg.server, a), 200, JSON.stringify(report.counts));
  });

  it('restores v1 to its earlier digest through the API, recorded as a restore', async () => {
    const res = await restore(reg.server, 'v1', a.manifest.digest);
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(await res.json(), { repository: 'team/app', tag: 'v1', digest: a.manifest.digest, previous: b.manifest.digest });
    assert.equal(await headDigest(reg.server, 'v1'), a.manifest.digest);
    const [latest] = (await history(reg.server, '?tag=v1')).entries;
    assert.deepEqual(latest, { ...latest, oldDigest: b.manifest.digest, newDigest: a.manifest.digest, actor: 'dev', via: 'restore' });
  });

  it('refuses a digest the tag never pointed to (409) and a restore an immutable rule forbids (403)', async () => {
    const never = await refusal(await restore(reg.server, 'v1', c.manifest.digest));
    assert.equal(never.status, 409);
    assert.match(never.message, /did not point to .* within the tag history window/);
    const rule = await addRule(reg.server, USERS.owner, 'team', { tag: { pattern: 'v1' } });
    const immutable = await refusal(await restore(reg.server, 'v1', b.manifest.digest));
    assert.equal(immutable.status, 403);
    assert.match(immutable.message, /'team\/app:v1' configured as immutable/);
    assert.equal(await headDigest(reg.server, 'v1'), a.manifest.digest);
    assert.equal((await api(reg.server, 'DELETE', `/projects/team/immutable-rules/${rule}`, USERS.owner)).status, 204);
  });

  it('refuses callers without access: other tenant 404, pull-only member 403 on restore, anonymous 401', async () => {
    for (const res of [
      await api(reg.server, 'GET', `/repositories/${REPO}/tag-history`, USERS.outsider),
      await restore(reg.server, 'v1', b.manifest.digest, USERS.outsider),
    ]) {
      assert.equal(res.status, 404);
      assert.equal((await refusal(res)).code, 'NOT_FOUND');
    }
    assert.equal((await history(reg.server, '', USERS.guest)).entries.length > 0, true, 'a guest may read the history');
    const guest = await refusal(await restore(reg.server, 'v1', b.manifest.digest, USERS.guest));
    assert.equal(guest.status, 403);
    assert.match(guest.message, /needs the push permission/);
    assert.equal((await fetch(`${reg.url}/api/v1/repositories/${REPO}/tag-history`)).status, 401);
  });

  it("npx berth tag restore works on the server's data, recorded with the CLI user", async () => {
    const { driver, url } = reg.server.config.metadata;
    const env = {
      ...process.env,
      BERTH_DATA_DIR: reg.server.dataDir,
      BERTH_AUTH_MODE: 'basic',
      BERTH_METADATA_DRIVER: driver,
      ...(url ? { BERTH_METADATA_URL: url } : {}),
    };
    const berth = async (args: string[]) =>
      (await exec(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], { cwd: ROOT, env })).stdout;
    assert.match(
      await berth(['tag', 'restore', 'team/app:v1', b.manifest.digest]),
      new RegExp(`team/app:v1 now points to ${b.manifest.digest}`),
    );
    assert.equal(await headDigest(reg.server, 'v1'), b.manifest.digest);
    const [latest] = (await history(reg.server, '?tag=v1')).entries;
    assert.equal(latest!.via, 'restore');
    assert.match(latest!.actor!, /^cli:/);
  });
});

describe('tag history with GC protection off, and with a window that has passed', () => {
  const off = useAuthServer(
    'basic',
    {},
    { gc: { enabled: false, graceperiod: 0 }, tags: { history: { protectgc: false } } },
    { setup: seedDeveloper },
  );
  const short = useAuthServer(
    'basic',
    {},
    { gc: { enabled: false, graceperiod: 0 }, tags: { history: { retention: '1s' } } },
    { setup: seedDeveloper },
  );
  const a = smallImage();
  const b = variant(a, 'b');

  it('protection off: GC collects the old digest at once, and restoring to it answers 404 MANIFEST_UNKNOWN', async () => {
    await pushThenMove(off.server, a, b);
    await runGc(off.server);
    assert.equal(await manifestStatus(off.server, a), 404);
    const gone = await refusal(await restore(off.server, 'v1', a.manifest.digest));
    assert.equal(gone.status, 404);
    assert.equal(gone.code, 'MANIFEST_UNKNOWN');
    assert.match(gone.message, /no longer stored .*garbage-collected/);
  });

  it('a 1 s window: kept by the first run, collected once the window passed; the prune job forgets the entries', async () => {
    const server: TestServer = short.server;
    await pushThenMove(server, a, b);
    await runGc(server);
    assert.equal(await manifestStatus(server, a), 200, 'within the window');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await runGc(server);
    assert.equal(await manifestStatus(server, a), 404, 'the window passed');
    const pruned = await tagHistoryPruneJob(server.stores.tags, 1000).run(new AbortController().signal);
    assert.deepEqual(pruned, { summary: { pruned: 2 }, idle: false });
    assert.deepEqual((await history(server)).entries, []);
  });
});
