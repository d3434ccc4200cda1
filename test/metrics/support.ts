import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

/** GET /metrics: the exposition text (asserts a 200 in Prometheus' text format). */
export async function scrape(url: string, authorization?: string): Promise<string> {
  const res = await fetch(url, { headers: authorization ? { authorization } : {}, signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200, `GET ${url} answered ${res.status}`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

/**
 * The value of the sample `name` whose labels include `labels` (undefined when none matches;
 * several matching samples are summed, so `{}` reads a total over every label set).
 */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let found: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const present = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => present[k] === v)) found = (found ?? 0) + Number(m[3]);
  }
  return found;
}

/** Runs Prometheus' own linter on an exposition; asserts it passes (promtool comes from scripts/install-system-deps.sh). */
export function promtoolCheckMetrics(text: string): void {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.error, undefined, `promtool could not run (scripts/install-system-deps.sh installs it): ${run.error?.message}`);
  assert.equal(run.status, 0, `promtool check metrics failed:\n${run.stdout}${run.stderr}`);
}

/** Every metric family an exposition defines (its # TYPE lines). */
export function families(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
}
