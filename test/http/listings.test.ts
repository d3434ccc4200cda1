import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { RegistryClient, makeImage } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { expectError } from './support.js';

/** Follows `Link: <…>; rel="next"` from `path` to the end, returning every page's items and links. */
async function walk(
  client: RegistryClient,
  path: string,
  key: 'tags' | 'repositories',
): Promise<{ pages: string[][]; links: (string | null)[] }> {
  const pages: string[][] = [];
  const links: (string | null)[] = [];
  let next: string | null = path;
  while (next !== null && pages.length < 50) {
    const res = await client.fetch(next);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const link = res.headers.get('link');
    links.push(link);
    pages.push(((await res.json()) as Record<string, string[]>)[key]!);
    next = link === null ? null : /^<([^>]+)>; rel="next"$/.exec(link)![1]!;
  }
  return { pages, links };
}

describe('listings: GET /v2/<name>/tags/list', () => {
  const repo = 'list/app';
  // Byte order, as CNCF Distribution sorts: digits, then upper case, then lower case.
  const tags = ['1.0', 'A', 'B', 'a', 'b', 'latest', 'v2'];

  const reg = useServer();
  before(async () => {
    const image = makeImage({ layers: 1, layerSize: 10 });
    await reg.client.pushImage(repo, tags[0]!, image);
    for (const tag of tags.slice(1)) assert.equal((await reg.client.pushManifest(repo, tag, image.manifest)).status, 201);
  });

  it('without n answers 200 with every tag in lexical order and no Link', async () => {
    const res = await reg.client.fetch(`/v2/${repo}/tags/list`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('link'), null);
    assert.deepEqual(await res.json(), { name: repo, tags });
  });

  it('n=2 answers the first two tags with Link: </v2/<name>/tags/list?n=2&last=…>; rel="next"', async () => {
    const res = await reg.client.fetch(`/v2/${repo}/tags/list?n=2`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('link'), `</v2/${repo}/tags/list?n=2&last=A>; rel="next"`);
    assert.deepEqual(await res.json(), { name: repo, tags: ['1.0', 'A'] });
  });

  it('following Link pages through every tag exactly once, and the last page has no Link', async () => {
    const { pages, links } = await walk(reg.client, `/v2/${repo}/tags/list?n=3`, 'tags');
    assert.deepEqual(pages, [['1.0', 'A', 'B'], ['a', 'b', 'latest'], ['v2']]);
    assert.equal(links.at(-1), null);
    assert.ok(links.slice(0, -1).every((l) => l !== null));
  });

  it('when n equals the number of remaining tags, no Link is sent', async () => {
    const res = await reg.client.fetch(`/v2/${repo}/tags/list?n=${tags.length}`);
    assert.equal(res.headers.get('link'), null);
    assert.equal(((await res.json()) as { tags: string[] }).tags.length, tags.length);
  });

  it('last= answers the tags strictly after it', async () => {
    const res = await reg.client.fetch(`/v2/${repo}/tags/list?last=b`);
    assert.deepEqual(await res.json(), { name: repo, tags: ['latest', 'v2'] });
    const withN = await reg.client.fetch(`/v2/${repo}/tags/list?n=1&last=a`);
    assert.deepEqual(await withN.json(), { name: repo, tags: ['b'] });
    assert.equal(withN.headers.get('link'), `</v2/${repo}/tags/list?n=1&last=b>; rel="next"`);
  });

  it('n=0 answers an empty list without Link', async () => {
    const res = await reg.client.fetch(`/v2/${repo}/tags/list?n=0`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('link'), null);
    assert.deepEqual(await res.json(), { name: repo, tags: [] });
  });

  it('a bad n answers 400 PAGINATION_NUMBER_INVALID', async () => {
    for (const n of ['abc', '-1', '1.5', '1e3', '0x10']) {
      await expectError(await reg.client.fetch(`/v2/${repo}/tags/list?n=${n}`), 400, 'PAGINATION_NUMBER_INVALID');
    }
  });

  it('an empty n= is ignored, as in CNCF Distribution', async () => {
    const res = await reg.client.fetch(`/v2/${repo}/tags/list?n=`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { name: repo, tags });
  });

  it('an unknown repository answers 404 NAME_UNKNOWN', async () => {
    await expectError(await reg.client.fetch('/v2/list/nothing-here/tags/list'), 404, 'NAME_UNKNOWN');
  });

  it('a repository whose only manifest push failed is still unknown (404 NAME_UNKNOWN)', async () => {
    const image = makeImage();
    const res = await reg.client.pushManifest('list/ghost', 'v1', image.manifest);
    await expectError(res, 400, 'MANIFEST_BLOB_UNKNOWN');
    await expectError(await reg.client.fetch('/v2/list/ghost/tags/list'), 404, 'NAME_UNKNOWN');
  });

  it('a repository with content but no tags answers an empty list', async () => {
    const image = makeImage({ layers: 1, layerSize: 5 });
    await reg.client.pushImage('list/untagged', 'tmp', image);
    assert.equal((await reg.client.fetch('/v2/list/untagged/manifests/tmp', { method: 'DELETE' })).status, 202);
    const res = await reg.client.fetch('/v2/list/untagged/tags/list');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { name: 'list/untagged', tags: [] });
  });
});

describe('listings: GET /v2/_catalog', () => {
  const repos = ['cat/a', 'cat/b', 'cat/b/nested', 'cat/c', 'zzz'];

  const reg = useServer();
  before(async () => {
    for (const repo of repos) await reg.client.pushImage(repo, 'v1', makeImage({ layers: 1, layerSize: 5 }));
  });

  it('answers 200 with every repository in lexical order and no Link', async () => {
    const res = await reg.client.fetch('/v2/_catalog');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('link'), null);
    assert.deepEqual(await res.json(), { repositories: repos });
  });

  it('n=2 answers two repositories with a Link to the next page', async () => {
    const res = await reg.client.fetch('/v2/_catalog?n=2');
    assert.deepEqual(await res.json(), { repositories: ['cat/a', 'cat/b'] });
    assert.equal(res.headers.get('link'), `</v2/_catalog?n=2&last=${encodeURIComponent('cat/b')}>; rel="next"`);
  });

  it('following Link pages through every repository exactly once, and the last page has no Link', async () => {
    const { pages, links } = await walk(reg.client, '/v2/_catalog?n=2', 'repositories');
    assert.deepEqual(pages, [['cat/a', 'cat/b'], ['cat/b/nested', 'cat/c'], ['zzz']]);
    assert.equal(links.at(-1), null);
  });

  it('last= answers the repositories strictly after it', async () => {
    const res = await reg.client.fetch('/v2/_catalog?last=cat/b/nested');
    assert.deepEqual(await res.json(), { repositories: ['cat/c', 'zzz'] });
  });

  it('n=0 answers an empty list without Link', async () => {
    const res = await reg.client.fetch('/v2/_catalog?n=0');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('link'), null);
    assert.deepEqual(await res.json(), { repositories: [] });
  });

  it('a bad n answers 400 PAGINATION_NUMBER_INVALID', async () => {
    for (const n of ['x', '-5']) {
      await expectError(await reg.client.fetch(`/v2/_catalog?n=${n}`), 400, 'PAGINATION_NUMBER_INVALID');
    }
  });
});
