import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { RegistryClient, makeImage } from '../helpers/registry-client.js';
import { addMember, addProject, addUser, adminAuth, api, basic, bearer, token, useAuthServer } from './support.js';

/**
 * Issue 12: `_catalog` pages are cut from what the caller may read. Before, `?n=1&last=…`
 * answered an empty page whose Link named the next repository — one the caller cannot read.
 */

const HIDDEN = ['a-private/one', 'c-private/two', 'z-private/three'];
const VISIBLE_TO_ALICE = ['b-team/one', 'b-team/two', 'p-public/one'];

interface Page {
  repositories: string[];
  link: string | null;
}

async function catalog(client: RegistryClient, query: string): Promise<Page> {
  const res = await client.fetch(`/v2/_catalog${query}`);
  assert.equal(res.status, 200);
  return { repositories: ((await res.json()) as { repositories: string[] }).repositories, link: res.headers.get('link') };
}

/** Follows the Link headers from `?n=<n>`, as a client would; returns every page. */
async function walk(client: RegistryClient, n: number): Promise<Page[]> {
  const pages: Page[] = [];
  let query = `?n=${n}`;
  for (let i = 0; i < 20; i++) {
    const page = await catalog(client, query);
    pages.push(page);
    if (!page.link) return pages;
    query = /<\/v2\/_catalog(\?[^>]*)>/.exec(page.link)![1]!;
  }
  throw new Error('the Link chain does not end');
}

describe('catalog paging shows only what the caller may read', () => {
  // A small page size makes every listing span several database pages.
  const reg = useAuthServer('token', {}, { limits: { pagesize: 2 } });
  let alice: RegistryClient;
  let robot: RegistryClient;

  before(async () => {
    for (const project of ['a-private', 'b-team', 'c-private', 'z-private']) await addProject(reg.server, project);
    await addProject(reg.server, 'p-public', true);
    await addUser(reg.server, 'alice', 'alice-password');
    await addMember(reg.server, 'b-team', 'alice', 'guest');
    const all = [...HIDDEN, ...VISIBLE_TO_ALICE];
    const admin = new RegistryClient(reg.url, {
      authorization: bearer(
        await token(
          reg.server,
          all.map((r) => `repository:${r}:pull,push`),
          adminAuth(),
        ),
      ),
    });
    for (const repo of all) await admin.pushImage(repo, 'v1', makeImage({ layers: 1, layerSize: 16 }));
    alice = new RegistryClient(reg.url, {
      authorization: bearer(await token(reg.server, ['registry:catalog:*'], basic('alice', 'alice-password'))),
    });
    const res = await api(reg.server, 'POST', '/projects/b-team/robots', adminAuth(), {
      name: 'ci',
      permissions: [{ project: 'b-team', repository: 'b-team/two', actions: ['pull'] }],
    });
    assert.equal(res.status, 201);
    const { name, secret } = (await res.json()) as { name: string; secret: string };
    robot = new RegistryClient(reg.url, { authorization: bearer(await token(reg.server, ['registry:catalog:*'], basic(name, secret))) });
  });

  it('?n=1 from a visible name: the next visible one, and a Link naming only it', async () => {
    // The reported leak: this answered [] with Link last=c-private/two.
    const page = await catalog(alice, '?n=1&last=b-team/two');
    assert.deepEqual(page.repositories, ['p-public/one']);
    for (const hidden of HIDDEN) assert.ok(!page.link?.includes(encodeURIComponent(hidden)), `Link ${page.link} names ${hidden}`);
  });

  for (const n of [1, 2, 5]) {
    it(`walking the Links with n=${n} yields exactly the readable repositories, and no Link names another`, async () => {
      const pages = await walk(alice, n);
      assert.deepEqual(
        pages.flatMap((p) => p.repositories),
        VISIBLE_TO_ALICE,
      );
      for (const page of pages) {
        assert.ok(page.repositories.length <= n);
        if (page.link) {
          const last = decodeURIComponent(/last=([^&>]*)/.exec(page.link)![1]!);
          assert.equal(last, page.repositories.at(-1), 'the Link continues after the last name shown');
        }
      }
    });
  }

  it('a robot sees the repositories its grant pattern names (and public ones), not the rest of its project', async () => {
    assert.deepEqual(
      (await walk(robot, 1)).flatMap((p) => p.repositories),
      ['b-team/two', 'p-public/one'],
    );
  });

  it('an admin pages through everything', async () => {
    const admin = new RegistryClient(reg.url, { authorization: bearer(await token(reg.server, ['registry:catalog:*'], adminAuth())) });
    assert.deepEqual(
      (await walk(admin, 2)).flatMap((p) => p.repositories),
      [...HIDDEN, ...VISIBLE_TO_ALICE].sort(),
    );
  });

  it('without n the page holds at most limits.pagesize visible names', async () => {
    const page = await catalog(alice, '');
    assert.deepEqual(page.repositories, VISIBLE_TO_ALICE.slice(0, 2));
    assert.match(page.link ?? '', /n=2&last=b-team%2Ftwo/);
  });
});
