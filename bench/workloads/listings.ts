import { BenchClient, runPool, smallImage } from '../client.js';
import type { BenchOptions } from '../options.js';
import { median } from '../rss.js';
import type { Workload, WorkloadContext } from '../workload.js';

const TAG_REPO = 'bench/tags';

const pad = (i: number) => String(i).padStart(6, '0');

interface Names {
  tags: string[];
  /** Repositories with one tag each, besides TAG_REPO. */
  repositories: string[];
}

function names(options: BenchOptions): Names {
  return {
    tags: Array.from({ length: options.tags }, (_, i) => `tag-${pad(i)}`),
    repositories: Array.from({ length: options.repositories }, (_, i) => `bench/catalog/repo-${pad(i)}`),
  };
}

/** One repository with every tag and the other repositories with one tag each, through the API. */
async function seed(client: BenchClient, options: BenchOptions): Promise<void> {
  const { tags, repositories } = names(options);
  const image = smallImage('listings');
  await client.uploadBlob(TAG_REPO, image.config);
  await client.uploadBlob(TAG_REPO, image.layer);
  await runPool(tags, options.seedConcurrency, (tag) => client.putManifest(TAG_REPO, tag, image.manifest));
  await runPool(repositories, options.seedConcurrency, async (repo) => {
    await client.mountOrUpload(repo, TAG_REPO, image.config);
    await client.mountOrUpload(repo, TAG_REPO, image.layer);
    await client.putManifest(repo, 'latest', image.manifest);
  });
}

/** Median wall time of `repeats` sequential requests, in ms; each result is verified untimed. */
async function timeMedian<T>(repeats: number, request: () => Promise<T>, verify: (result: T) => void): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    const result = await request();
    times.push(performance.now() - started);
    verify(result);
  }
  return median(times);
}

function sameSet(a: string[], b: string[]): boolean {
  const set = new Set(a);
  return a.length === b.length && set.size === a.length && b.every((x) => set.has(x));
}

/**
 * A page after `last` must be the next `n` names in lexical order. Distribution 2.8 ignores
 * n/last on tags/list and answers the full list; that still contains the page, so it passes
 * (and pays for the full list in its latency, as its clients do).
 */
function checkPage(ctx: WorkloadContext, what: string, got: string[], all: string[], last: string, n: number): void {
  const expected = all.slice(all.indexOf(last) + 1, all.indexOf(last) + 1 + n);
  const ignoredN = got.length > n;
  const ok = ignoredN ? expected.every((x) => got.includes(x)) : got.join() === expected.join();
  ctx.check(ok, `${what} page lists the next ${n} names after last=`, `after ${last}: got ${got.slice(0, 5).join(', ')}…`);
  if (ignoredN) ctx.note(`${ctx.server.kind} ignores n on ${what}: a page request for ${n} answered ${got.length} names.`);
}

/** Follows the Link headers from the first page to the last. */
async function walkCatalog(client: BenchClient, n: number): Promise<string[]> {
  const seen: string[] = [];
  for (let next: string | null = `/v2/_catalog?n=${n}`; next !== null;) {
    const page: { body: { repositories: string[] }; next: string | null } = await client.getJson(next);
    seen.push(...page.body.repositories);
    next = page.next;
  }
  return seen;
}

export function listingsWorkload(options: BenchOptions): Workload {
  const n = options.pageSize;
  return {
    id: 'listings',
    title: `tags/list over ${options.tags} tags and _catalog over ${options.repositories + 1} repositories (median of sequential requests)`,
    figures: [
      { id: 'tags-full', label: `tags/list, all ${options.tags} tags`, unit: 'ms', better: 'lower' },
      { id: 'tags-page', label: `tags/list page (n=${n}&last=…)`, unit: 'ms', better: 'lower', target: { ratioAtMost: 0.5 } },
      { id: 'catalog-page', label: `_catalog page (n=${n}&last=…)`, unit: 'ms', better: 'lower', target: { ratioAtMost: 0.5 } },
      { id: 'catalog-walk', label: `_catalog full walk (n=${n}, follow Link)`, unit: 'ms', better: 'lower', target: { ratioAtMost: 0.2 } },
    ],
    seed: (server) => seed(new BenchClient(server.url), options),
    async run(ctx) {
      const client = new BenchClient(ctx.server.url);
      const { tags } = names(options);
      const repositories = [...names(options).repositories, TAG_REPO].sort();
      ctx.startMeasuring();
      const midTag = tags[tags.length >> 1]!;
      const midRepo = repositories[repositories.length >> 1]!;
      type TagList = { tags: string[] };
      type Catalog = { repositories: string[] };

      const tagsFull = await timeMedian(
        options.listingRepeats,
        () => client.getJson<TagList>(`/v2/${TAG_REPO}/tags/list`),
        ({ body }) => ctx.check(sameSet(body.tags, tags), `tags/list lists all ${tags.length} tags once`),
      );
      const tagsPage = await timeMedian(
        options.listingRepeats,
        () => client.getJson<TagList>(`/v2/${TAG_REPO}/tags/list?n=${n}&last=${midTag}`),
        ({ body }) => checkPage(ctx, 'tags/list', body.tags, tags, midTag, n),
      );
      const catalogPage = await timeMedian(
        options.listingRepeats,
        () => client.getJson<Catalog>(`/v2/_catalog?n=${n}&last=${encodeURIComponent(midRepo)}`),
        ({ body }) => checkPage(ctx, '_catalog', body.repositories, repositories, midRepo, n),
      );
      const catalogWalk = await timeMedian(
        options.catalogWalkRepeats,
        () => walkCatalog(client, n),
        (seen) => ctx.check(sameSet(seen, repositories), `_catalog walk lists all ${repositories.length} repositories once`),
      );
      return { 'tags-full': tagsFull, 'tags-page': tagsPage, 'catalog-page': catalogPage, 'catalog-walk': catalogWalk };
    },
  };
}
