import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { ROOT, startTestServer, type TestServer } from '../helpers/server.js';
import { families, scrape } from './support.js';

const PROMETHEUS = path.join(ROOT, 'examples/prometheus');
const rules = (
  YAML.parse(readFileSync(path.join(PROMETHEUS, 'alerts.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }
).groups.flatMap((g) => g.rules);

function promtool(...args: string[]): void {
  const run = spawnSync('promtool', args, { cwd: PROMETHEUS, encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.error, undefined, `promtool could not run (scripts/install-system-deps.sh installs it): ${run.error?.message}`);
  assert.equal(run.status, 0, `promtool ${args.join(' ')} failed:\n${run.stdout}${run.stderr}`);
}

describe('examples/prometheus/alerts.yml', () => {
  it('passes promtool check rules', () => {
    promtool('check', 'rules', 'alerts.yml');
  });

  it('passes its unit tests on synthetic series (promtool test rules alerts.test.yml)', () => {
    promtool('test', 'rules', 'alerts.test.yml');
  });

  it('has a unit test in which each alert fires, and a line in docs/observability.md', () => {
    const tests = YAML.parse(readFileSync(path.join(PROMETHEUS, 'alerts.test.yml'), 'utf8')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const fired = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname)));
    const docs = readFileSync(path.join(ROOT, 'docs/observability.md'), 'utf8');
    for (const { alert } of rules) {
      assert.ok(fired.has(alert), `${alert} never fires in alerts.test.yml`);
      assert.ok(docs.includes(`\`${alert}\``), `${alert} is not described in docs/observability.md`);
    }
  });
});

describe('examples/grafana/berth.json', () => {
  let server: TestServer;
  let known: Set<string>;
  const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'examples/grafana/berth.json'), 'utf8')) as {
    uid: string;
    title: string;
    panels: { id: number; type: string; title: string; targets?: { expr: string }[] }[];
  };

  before(async () => {
    server = await startTestServer();
    known = new Set([
      'up',
      ...families(await scrape(`${server.url}/metrics`)),
      ...featureMetricNames(),
      ...rules.flatMap((r) => metricNames(r.expr)),
    ]);
    for (const name of [...known]) for (const suffix of ['_bucket', '_sum', '_count']) known.add(name + suffix);
  });
  after(async () => server?.destroy());

  it('is a dashboard Grafana imports: a uid, a title, panels with unique ids, every query on the datasource variable', () => {
    assert.equal(dashboard.uid, 'berth-registry');
    assert.equal(dashboard.title, 'Berth');
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids repeat');
    assert.ok(dashboard.panels.filter((p) => p.type !== 'row').every((p) => (p.targets ?? []).length > 0));
  });

  it('queries only metrics Berth exports', () => {
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets ?? []) {
        for (const name of metricNames(expr))
          assert.ok(known.has(name), `panel "${panel.title}" queries ${name}, which Berth does not export`);
      }
    }
  });

  it('covers requests, latency, errors, bytes, storage by project, jobs and webhooks', () => {
    const queried = dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr)));
    for (const name of [
      'berth_http_requests_total',
      'registry_http_request_duration_seconds_bucket',
      'berth_registry_blob_bytes_sent_total',
      'berth_project_usage_bytes',
      'berth_job_runs_total',
      'berth_webhook_attempts_total',
    ]) {
      assert.ok(queried.includes(name), `no panel shows ${name}`);
    }
  });
});

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/** The metric names a PromQL expression selects: identifiers outside label matchers, strings, ranges and grouping clauses, not called as functions. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ');
  return [...stripped.matchAll(/(?<![\w.])([a-zA-Z_:][\w:]*)(?!\s*\()/g)]
    .map((m) => m[1]!)
    .filter((w) => !PROMQL_WORDS.has(w.toLowerCase()));
}

/** Series features register through core's MetricsRegistry (src/<feature>/*.ts): exported once the feature is configured. */
function featureMetricNames(): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(path.join(ROOT, 'src'), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const text = readFileSync(path.join(entry.parentPath, entry.name), 'utf8');
    for (const m of text.matchAll(/name: '((?:berth|registry|harbor)_\w+)'/g)) names.push(m[1]!);
  }
  return names;
}
