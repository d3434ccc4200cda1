import assert from 'node:assert/strict';
import type { RetentionRule, RetentionRun } from '../../src/retention/ports.js';
import { adminAuth, api, type HasUrl } from '../auth/support.js';
import { makeImage, RegistryClient, type Image } from '../helpers/registry-client.js';

/** A small image (one 64-byte layer): retention tests need many, never big ones. */
export function smallImage(): Image {
  return makeImage({ layers: 1, layerSize: 64 });
}

/** Pushes `image` (a fresh small one by default) under every tag of `tags`, a few ms apart so push times differ. */
export async function pushTagged(client: RegistryClient, repo: string, tags: string[], image: Image = smallImage()): Promise<Image> {
  await client.pushImage(repo, tags[0]!, image);
  for (const tag of tags.slice(1)) {
    const res = await client.pushManifest(repo, tag, image.manifest, image.mediaType);
    assert.equal(res.status, 201, await res.text());
  }
  await new Promise((resolve) => setTimeout(resolve, 5));
  return image;
}

export async function tagsOf(client: RegistryClient, repo: string): Promise<string[]> {
  const res = await client.fetch(`/v2/${repo}/tags/list`);
  assert.equal(res.status, 200);
  return (((await res.json()) as { tags: string[] | null }).tags ?? []).sort();
}

/** A rule over every repository and tag (untagged artifacts not included) with `extra` on top. */
export function rule(
  template: RetentionRule['template'],
  extra: Partial<RetentionRule> & { tags?: Partial<RetentionRule['tags']> } = {},
): Record<string, unknown> {
  return { template, ...extra, tags: { decoration: 'matches', pattern: '**', untagged: false, ...extra.tags } };
}

export async function setPolicy(server: HasUrl, project: string, rules: unknown[], schedule: string | null = null): Promise<void> {
  const res = await api(server, 'PUT', `/projects/${project}/retention`, adminAuth(), { rules, schedule });
  assert.equal(res.status, 200, await res.text());
}

/** POST …/retention/runs, then polls the run until it has finished (at most 30 s); asserts it finished ok. */
export async function runRetention(server: HasUrl, project: string, dryRun: boolean): Promise<RetentionRun> {
  const res = await api(server, 'POST', `/projects/${project}/retention/runs`, adminAuth(), { dryRun });
  const text = await res.text();
  assert.equal(res.status, 202, text);
  const { id } = JSON.parse(text) as { id: number };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const run = (await (await api(server, 'GET', `/projects/${project}/retention/runs/${id}`, adminAuth())).json()) as RetentionRun;
    if (run.status !== 'running') {
      assert.equal(run.status, 'ok', JSON.stringify(run.summary));
      return run;
    }
    if (Date.now() > deadline) throw new Error(`retention run ${id} still running after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
