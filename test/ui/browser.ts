// The web UI's browser tests: Debian chromium driven by playwright-core, axe-core checks, the
// built SPA (dist/ui), and a fast seed of many repositories and tags through the registry API.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from '../helpers/server.js';
import { jsonBlob, type RegistryClient } from '../helpers/registry-client.js';
import type { Registry } from '../../src/core/registry.js';

export const CHROMIUM = process.env.BERTH_TEST_CHROMIUM ?? '/usr/bin/chromium';
export const UI_DIST = path.join(ROOT, 'dist', 'ui');
export const SCREENSHOTS = process.env.BERTH_UI_SCREENSHOTS === '1' ? path.join(ROOT, 'docs', 'ui') : null;

/**
 * Starts headless chromium. No skip when it is missing or cannot start: the browser tests are
 * part of the suite (scripts/install-system-deps.sh installs chromium), so that is a failure.
 */
export async function launchChromium(): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-system-deps.sh as root (apt-get install chromium)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
}

function newest(dir: string): number {
  let max = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) max = Math.max(max, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return max;
}

/** Builds the SPA into dist/ui when it is missing or older than a file under ui/ (about 2 s). */
export function ensureUiBuilt(): void {
  const index = path.join(UI_DIST, 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= newest(path.join(ROOT, 'ui'))) return;
  const vite = path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const result = spawnSync(process.execPath, [vite, 'build', '--config', path.join(ROOT, 'ui', 'vite.config.ts'), '--logLevel', 'warn'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  assert.equal(result.status, 0, 'vite build of ui/ failed');
}

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

const AXE_SOURCE = () => readFileSync(path.join(ROOT, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

/**
 * Runs axe-core on the page (WCAG 2.1 A/AA rules) and fails on serious or critical violations.
 * axe is evaluated through the DevTools protocol, which the page's CSP (no inline scripts) does
 * not govern. Returns every violation's id and impact for the report.
 */
export async function checkAxe(page: Page, view: string): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE());
  const violations = (await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document, options: unknown): Promise<{ violations: unknown[] }> } }).axe;
    const result = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      resultTypes: ['violations'],
    });
    return result.violations;
  })) as AxeViolation[];
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help} at ${v.nodes
          .slice(0, 3)
          .map((n) => n.target.join(' '))
          .join(', ')}`,
    ),
    [],
    `axe found serious/critical violations on the ${view} view`,
  );
  return violations.map((v) => `${v.id}:${v.impact}`);
}

/** Saves a 1280x800 PNG of the page as docs/ui/<name>.png when BERTH_UI_SCREENSHOTS=1. */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: false });
}

/** Runs `work` over `items` with `limit` in flight. */
export async function pool<T>(items: T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i]!, i);
      }
    }),
  );
}

const EMPTY = jsonBlob({});

/** The smallest artifact: config and one layer both the 2-byte `{}` blob; one manifest digest for every repository. */
export function tinyManifest(): ReturnType<typeof jsonBlob> {
  return jsonBlob({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: 'application/vnd.example.seed',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY.digest, size: EMPTY.size },
    layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY.digest, size: EMPTY.size }],
  });
}

/**
 * `count` repositories `<prefix>-<n>` each with one tag. With `registry` (the server's core
 * Registry, in process): the first repository gets the blob over HTTP, every other one a
 * cross-repository mount of it and the manifest through core's putManifest, the same rules and
 * transactions as /v2 without a socket and auth per call (several times faster on a busy
 * machine; BERTH_UI_SEED=http seeds every repository over HTTP instead).
 */
export async function seedRepositories(client: RegistryClient, prefix: string, count: number, registry?: Registry): Promise<void> {
  const manifest = tinyManifest();
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`);
  if (registry && process.env.BERTH_UI_SEED !== 'http') {
    const first = names.shift()!;
    assert.equal((await client.pushBlob(first, EMPTY)).status, 201);
    assert.equal((await client.pushManifest(first, 'v1', manifest)).status, 201);
    await pool(names, 8, async (name) => {
      assert.ok(await registry.mountBlob(name, EMPTY.digest, first, async () => true), `mount into ${name}`);
      await registry.putManifest(name, 'v1', manifest.data, 'application/vnd.oci.image.manifest.v1+json');
    });
    return;
  }
  await pool(names, 16, async (name) => {
    const blob = await client.pushBlob(name, EMPTY);
    assert.equal(blob.status, 201, `blob push to ${name}: ${blob.status}`);
    const put = await client.pushManifest(name, 'v1', manifest);
    assert.equal(put.status, 201, `manifest push to ${name}: ${put.status} ${await put.text()}`);
  });
}

/** `count` tags on one manifest of `repository`, 250 per PUT …/manifests/<digest>?tag=…&tag=… (OCI 1.1). */
export async function seedTags(client: RegistryClient, repository: string, count: number): Promise<void> {
  const manifest = tinyManifest();
  assert.equal((await client.pushBlob(repository, EMPTY)).status, 201);
  const batches: string[][] = [];
  for (let i = 0; i < count; i += 250)
    batches.push(Array.from({ length: Math.min(250, count - i) }, (_, j) => `t${String(i + j).padStart(5, '0')}`));
  await pool(batches, 4, async (tags) => {
    const query = tags.map((t) => `tag=${t}`).join('&');
    const res = await client.fetch(`/v2/${repository}/manifests/${manifest.digest}?${query}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest.data as unknown as BodyInit,
    });
    assert.equal(res.status, 201, `tag batch: ${res.status} ${await res.text()}`);
  });
}
