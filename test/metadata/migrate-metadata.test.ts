import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { topologicalOrder } from '../../src/metadata/copy.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { OCI_INDEX, RegistryClient, jsonBlob, makeBlob, makeImage, type Blob, type Image } from '../helpers/registry-client.js';
import { ROOT, startTestServer, tempDir, type TestServer } from '../helpers/server.js';

/**
 * `berth migrate-metadata`: images pushed to a server on SQLite are all pullable,
 * byte-identical, from a server on PostgreSQL over the same blob storage after the copy.
 */
interface Pushed {
  repo: string;
  tag: string;
  manifest: Blob;
  mediaType: string;
  blobs: Blob[];
}

function runMigrate(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'migrate-metadata', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('berth migrate-metadata --from sqlite:… --to postgres://…', () => {
  const dataDir = tempDir('berth-migrate-');
  const sqliteFile = path.join(dataDir, 'berth.db');
  let database: TestDatabase;
  let sqliteServer: TestServer | undefined;
  let pgServer: TestServer | undefined;
  const pushed: Pushed[] = [];
  const half = makeBlob(64 * 1024);
  let uploadLocation = '';
  let catalogBefore: string[] = [];
  let referrersBefore = '';
  let subject: Image;

  before(async () => {
    database = await createTestDatabase();
    sqliteServer = await startTestServer({ data: { dir: dataDir }, metadata: { driver: 'sqlite' } });
    const client = new RegistryClient(sqliteServer.url);
    // Several repositories and tags, a multi-platform index, a referrer, a cross-repository mount.
    for (const [repo, tags] of [
      ['library/alpine', ['3.19', 'latest']],
      ['team-a/api', ['v1', 'v2']],
      ['team-a/web', ['main']],
    ] as const) {
      for (const tag of tags) {
        const image = makeImage({ layers: 2, layerSize: 4096 });
        await client.pushImage(repo, tag, image);
        pushed.push({ repo, tag, manifest: image.manifest, mediaType: image.mediaType, blobs: [image.config, ...image.layers] });
      }
    }
    const children = [makeImage(), makeImage()];
    for (const [i, child] of children.entries()) await client.pushImage('multi/arch', `child-${i}`, child);
    const index = jsonBlob({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children.map((c, i) => ({
        mediaType: c.mediaType,
        digest: c.manifest.digest,
        size: c.manifest.size,
        platform: { os: 'linux', architecture: ['amd64', 'arm64'][i] },
      })),
    });
    assert.equal((await client.pushManifest('multi/arch', 'latest', index, OCI_INDEX)).status, 201);
    pushed.push({ repo: 'multi/arch', tag: 'latest', manifest: index, mediaType: OCI_INDEX, blobs: [] });
    subject = makeImage();
    await client.pushImage('signed/app', 'v1', subject);
    const signature = makeImage({
      layers: 1,
      artifactType: 'application/vnd.example.signature',
      subject: { digest: subject.manifest.digest, size: subject.manifest.size, mediaType: subject.mediaType },
    });
    await client.pushImage('signed/app', 'sig', signature);
    pushed.push({
      repo: 'signed/app',
      tag: 'sig',
      manifest: signature.manifest,
      mediaType: signature.mediaType,
      blobs: [signature.config, ...signature.layers],
    });
    const mount = await client.fetch(`/v2/mounted/copy/blobs/uploads/?mount=${pushed[0]!.blobs[1]!.digest}&from=library/alpine`, {
      method: 'POST',
    });
    assert.equal(mount.status, 201);
    // An upload left half-way: it must be resumable on the PostgreSQL server.
    const started = await client.fetch('/v2/resume/me/blobs/uploads/', { method: 'POST' });
    const patched = await client.fetch(started.headers.get('location')!, {
      method: 'PATCH',
      body: new Uint8Array(half.data.subarray(0, 32 * 1024)),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${32 * 1024 - 1}` },
    });
    assert.equal(patched.status, 202);
    uploadLocation = patched.headers.get('location')!;

    catalogBefore = ((await (await client.fetch('/v2/_catalog?n=1000')).json()) as { repositories: string[] }).repositories;
    referrersBefore = await (await client.fetch(`/v2/signed/app/referrers/${subject.manifest.digest}`)).text();
    await sqliteServer.close();
    sqliteServer = undefined;
  });

  after(async () => {
    await sqliteServer?.close();
    await pgServer?.close();
    rmSync(dataDir, { recursive: true, force: true });
    await database?.drop();
  });

  it('copies every table into an empty PostgreSQL database', async () => {
    const result = await runMigrate(['--from', `sqlite:${sqliteFile}`, '--to', database.url, '--batch-size', '3']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    for (const table of ['repositories', 'blobs', 'repository_blobs', 'manifests', 'manifest_references', 'tags', 'uploads']) {
      assert.match(result.stdout, new RegExp(`\\b${table}: [1-9]\\d* rows`), `${table} copied`);
    }
    assert.match(result.stdout, /sequence .*repositories_id_seq now starts at \d+/);
  });

  it('refuses to copy into a database that already holds metadata, unless --force', async () => {
    const result = await runMigrate(['--from', `sqlite:${sqliteFile}`, '--to', database.url]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /already holds metadata.*--force/);
  });

  it('a server on PostgreSQL over the same blob storage serves every image byte-identically', async () => {
    pgServer = await startTestServer({ data: { dir: dataDir }, metadata: { driver: 'postgres', url: database.url } });
    const client = new RegistryClient(pgServer.url);
    for (const image of pushed) {
      for (const ref of [image.tag, image.manifest.digest]) {
        const res = await client.fetch(`/v2/${image.repo}/manifests/${ref}`, { headers: { accept: image.mediaType } });
        assert.equal(res.status, 200, `${image.repo}:${ref}`);
        assert.equal(res.headers.get('content-type'), image.mediaType);
        assert.equal(res.headers.get('docker-content-digest'), image.manifest.digest);
        assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.manifest.data);
      }
      for (const blob of image.blobs) {
        const res = await client.fetch(`/v2/${image.repo}/blobs/${blob.digest}`);
        assert.equal(res.status, 200, `${image.repo}@${blob.digest}`);
        assert.deepEqual(Buffer.from(await res.arrayBuffer()), blob.data);
      }
    }
    const mounted = await client.fetch(`/v2/mounted/copy/blobs/${pushed[0]!.blobs[1]!.digest}`);
    assert.deepEqual(Buffer.from(await mounted.arrayBuffer()), pushed[0]!.blobs[1]!.data);
    const catalog = (await (await client.fetch('/v2/_catalog?n=1000')).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, catalogBefore);
    const tags = (await (await client.fetch('/v2/team-a/api/tags/list')).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, ['v1', 'v2']);
    assert.equal(await (await client.fetch(`/v2/signed/app/referrers/${subject.manifest.digest}`)).text(), referrersBefore);
  });

  it('the copied upload session resumes and completes on PostgreSQL', async () => {
    const client = new RegistryClient(pgServer!.url);
    const rest = await client.fetch(uploadLocation, {
      method: 'PATCH',
      body: new Uint8Array(half.data.subarray(32 * 1024)),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${32 * 1024}-${half.size - 1}` },
    });
    assert.equal(rest.status, 202, await rest.clone().text());
    const location = rest.headers.get('location')!;
    const done = await client.fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${half.digest}`, { method: 'PUT' });
    assert.equal(done.status, 201, await done.clone().text());
    assert.deepEqual(Buffer.from(await (await client.fetch(`/v2/resume/me/blobs/${half.digest}`)).arrayBuffer()), half.data);
  });

  it('new repositories get fresh ids after the copy (sequences were moved past the copied rows)', async () => {
    const client = new RegistryClient(pgServer!.url);
    for (const repo of ['new/one', 'new/two']) {
      const res = await client.pushImage(repo, 'v1', makeImage());
      assert.equal(res.status, 201);
    }
    const catalog = (await (await client.fetch('/v2/_catalog?n=1000')).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, [...catalogBefore, 'new/one', 'new/two', 'resume/me'].sort());
  });

  it('--force replaces the target contents with the SQLite contents', async () => {
    await pgServer!.close();
    pgServer = undefined;
    const result = await runMigrate(['--from', `sqlite:${sqliteFile}`, '--to', database.url, '--force']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /--force: emptying/);
    pgServer = await startTestServer({ data: { dir: dataDir }, metadata: { driver: 'postgres', url: database.url } });
    const client = new RegistryClient(pgServer.url);
    const catalog = (await (await client.fetch('/v2/_catalog?n=1000')).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, catalogBefore);
  });

  it('usage errors: a missing SQLite file or a non-postgres target exit 2 or 1 with a message', async () => {
    const missing = await runMigrate(['--from', `sqlite:${path.join(dataDir, 'nope.db')}`, '--to', database.url]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no SQLite metadata database at/);
    const badTarget = await runMigrate(['--from', `sqlite:${sqliteFile}`, '--to', 'mysql://x']);
    assert.equal(badTarget.code, 2);
    assert.match(badTarget.stderr, /--to must be a postgres:\/\/ URL/);
  });
});

describe('copy order', () => {
  it('puts parents before the tables that reference them, and detects cycles', () => {
    const order = topologicalOrder(
      ['tags', 'manifests', 'repositories', 'blobs', 'repository_blobs'],
      [
        { child: 'tags', parent: 'manifests' },
        { child: 'manifests', parent: 'repositories' },
        { child: 'repository_blobs', parent: 'repositories' },
        { child: 'repository_blobs', parent: 'blobs' },
      ],
    );
    for (const [child, parent] of [
      ['tags', 'manifests'],
      ['manifests', 'repositories'],
      ['repository_blobs', 'blobs'],
    ] as const) {
      assert.ok(order.indexOf(parent) < order.indexOf(child), `${parent} before ${child}: ${order.join(', ')}`);
    }
    assert.throws(
      () =>
        topologicalOrder(
          ['a', 'b'],
          [
            { child: 'a', parent: 'b' },
            { child: 'b', parent: 'a' },
          ],
        ),
      /cycle/,
    );
  });
});
