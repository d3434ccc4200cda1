import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, addUser, adminAuth, basic } from '../auth/support.js';
import { makeBlob, makeImage, OCI_MANIFEST, RegistryClient } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { families, promtoolCheckMetrics, sample, scrape } from './support.js';

const MANIFEST_ROUTE = '/v2/{name}/manifests/{reference}';

describe('GET /metrics after pushes and pulls (auth none, metrics on the main listener)', () => {
  let server: TestServer;
  let client: RegistryClient;
  let text: string;
  const image = makeImage({ layers: 1, layerSize: 2048 });
  const chunked = makeBlob(3000, 'chunked');

  before(async () => {
    server = await startTestServer({ metrics: { refresh: 0, storagecapacity: 1_000_000_000 } });
    client = new RegistryClient(server.url);
    await client.pushImage('team/app', 'v1', image);
    assert.equal((await client.pushBlobChunked('team/app', chunked, 1000)).status, 201);
    assert.equal((await client.fetch('/v2/team/app/manifests/v1', { headers: { accept: OCI_MANIFEST } })).status, 200);
    assert.equal((await client.fetch('/v2/team/app/manifests/v1', { headers: { accept: OCI_MANIFEST } })).status, 200);
    const layer = await client.fetch(`/v2/team/app/blobs/${image.layers[0]!.digest}`);
    assert.equal((await layer.arrayBuffer()).byteLength, 2048);
    assert.equal((await client.fetch('/v2/team/app/manifests/missing')).status, 404);
    assert.equal((await client.fetch('/v2/_catalog')).status, 200);
    await server.scheduler.runNow('job-history-prune');
    await server.stores.quotas.setLimit('team', 1_000_000);
    text = await scrape(`${server.url}/metrics`);
  });
  after(async () => server?.destroy());

  it('passes promtool check metrics, each series once', () => {
    promtoolCheckMetrics(text);
    const series = text
      .split('\n')
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => line.slice(0, line.lastIndexOf(' ')));
    assert.equal(new Set(series).size, series.length, 'a series appears twice');
  });

  it('counts the pulls and the push of the project, never per repository or tag', () => {
    assert.equal(sample(text, 'berth_registry_pulls_total', { project: 'team' }), 2);
    assert.equal(sample(text, 'berth_registry_pushes_total', { project: 'team' }), 1);
    assert.ok(!/project="team\/app"|tag=|digest=/.test(text), 'a label carries a repository, tag or digest');
  });

  it("counts requests by route template and code, a 404 with code 404, under Berth's and Distribution's names", () => {
    assert.equal(sample(text, 'berth_http_requests_total', { route: MANIFEST_ROUTE, method: 'GET', code: '200' }), 2);
    assert.equal(sample(text, 'berth_http_requests_total', { route: MANIFEST_ROUTE, method: 'GET', code: '404' }), 1);
    assert.equal(sample(text, 'registry_http_requests_total', { handler: 'manifest', method: 'GET', code: '404' }), 1);
    assert.equal(sample(text, 'registry_http_requests_total', { handler: 'catalog', method: 'GET', code: '200' }), 1);
    assert.equal(sample(text, 'registry_http_requests_total', { handler: 'blob_upload_chunk', method: 'PATCH', code: '202' }), 3);
    assert.equal(sample(text, 'registry_http_request_duration_seconds_count', { handler: 'manifest', method: 'GET' }), 3);
    assert.equal(sample(text, 'berth_http_request_duration_seconds_count', { route: MANIFEST_ROUTE, method: 'PUT' }), 1);
    // The scrape itself is in flight while it renders; nothing else is.
    assert.equal(sample(text, 'berth_http_requests_in_flight'), 1);
    assert.equal(sample(text, 'berth_registry_uploads_in_flight'), 0);
  });

  it('counts blob bytes both ways', () => {
    const received = sample(text, 'berth_registry_blob_bytes_received_total')!;
    assert.ok(received >= 2048 + 3000 + image.config.size, `received ${received}`);
    assert.ok(sample(text, 'berth_registry_blob_bytes_sent_total')! >= 2048);
  });

  it('times storage operations by driver and action', () => {
    assert.ok(sample(text, 'registry_storage_action_seconds_count', { driver: 'filesystem', action: 'commitUpload' })! >= 3);
    assert.ok(sample(text, 'registry_storage_action_seconds_count', { driver: 'filesystem', action: 'openRange' })! >= 1);
  });

  it("reports storage, project inventory and usage (Harbor's names too), readiness, jobs and the outbox", () => {
    assert.ok(sample(text, 'berth_storage_physical_bytes')! >= 2048 + 3000);
    assert.equal(sample(text, 'berth_storage_capacity_bytes'), 1_000_000_000);
    assert.equal(sample(text, 'berth_project_repositories', { project: 'team' }), 1);
    assert.equal(sample(text, 'berth_project_artifacts', { project: 'team' }), 1);
    const used = sample(text, 'berth_project_usage_bytes', { project: 'team' });
    assert.ok(used !== undefined && used >= 2048, `usage ${used}`);
    assert.equal(sample(text, 'harbor_project_quota_usage_byte', { project_name: 'team' }), used);
    assert.equal(sample(text, 'berth_project_quota_bytes', { project: 'team' }), 1_000_000);
    assert.equal(sample(text, 'harbor_project_quota_byte', { project_name: 'team' }), 1_000_000);
    assert.equal(sample(text, 'berth_ready'), 1);
    assert.equal(sample(text, 'berth_job_runs_total', { job_name: 'job-history-prune', outcome: 'skipped' }), 1);
    assert.ok(sample(text, 'berth_job_last_success_timestamp_seconds', { job_name: 'job-history-prune' })! > Date.now() / 1000 - 60);
    assert.notEqual(sample(text, 'berth_outbox_pending_events', { consumer: 'gc-review' }), undefined);
    assert.ok(families(text).has('process_cpu_user_seconds_total'), 'Node process metrics are missing');
  });

  it('times metadata statements by kind; pool gauges only where there is a pool (PostgreSQL)', () => {
    assert.ok(sample(text, 'berth_metadata_query_duration_seconds_count', { statement: 'select' })! > 0);
    assert.ok(sample(text, 'berth_metadata_query_duration_seconds_count', { statement: 'insert' })! > 0);
    const pooled = server.config.metadata.driver === 'postgres';
    assert.equal(sample(text, 'berth_metadata_pool_connections') !== undefined, pooled, `pool gauges on ${server.config.metadata.driver}`);
    if (pooled) assert.ok(sample(text, 'berth_metadata_pool_connections')! >= 1);
  });
});

describe('/metrics access', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      auth: { mode: 'token', admin: { password: ADMIN_PASSWORD }, ratelimit: { failures: 2, backoff: '1m' } },
      metrics: { refresh: 0 },
    });
    await addUser(server, 'ursula', 'ursula-password');
  });
  after(async () => server?.destroy());

  it('asks anonymous callers for credentials (401) and refuses non-admins (403)', async () => {
    const anonymous = await fetch(`${server.url}/metrics`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
    const user = await fetch(`${server.url}/metrics`, { headers: { authorization: basic('ursula', 'ursula-password') } });
    assert.equal(user.status, 403);
    assert.equal(((await user.json()) as { errors: { code: string }[] }).errors[0]!.code, 'DENIED');
  });

  it('answers a system admin, and counts failed logins and refusals', async () => {
    const wrong = await fetch(`${server.url}/token?service=berth`, { headers: { authorization: basic('ursula', 'not-her-password') } });
    assert.equal(wrong.status, 401);
    const text = await scrape(`${server.url}/metrics`, adminAuth());
    assert.ok(sample(text, 'berth_auth_logins_total', { outcome: 'failure' })! >= 1);
    assert.ok(sample(text, 'berth_auth_logins_total', { outcome: 'success' })! >= 1);
    assert.ok(sample(text, 'berth_auth_failures_total', { code: '401' })! >= 2);
    assert.equal(sample(text, 'berth_auth_failures_total', { code: '403' }), 1);
    assert.equal(sample(text, 'berth_auth_token_requests_total', { outcome: 'refused' }), 1);
  });

  it('counts rate-limited logins and token requests', async () => {
    const wrong = { headers: { authorization: basic('rita', 'guess') } };
    assert.equal((await fetch(`${server.url}/token?service=berth`, wrong)).status, 401);
    assert.equal((await fetch(`${server.url}/token?service=berth`, wrong)).status, 401);
    assert.equal((await fetch(`${server.url}/token?service=berth`, wrong)).status, 429);
    const text = await scrape(`${server.url}/metrics`, adminAuth());
    assert.equal(sample(text, 'berth_auth_logins_total', { outcome: 'ratelimited' }), 1);
    assert.equal(sample(text, 'berth_auth_token_requests_total', { outcome: 'ratelimited' }), 1);
  });

  it('counts a failed job run for the job', async () => {
    server.scheduler.add({
      name: 'metrics-boom',
      schedule: { everyMs: 3_600_000 },
      scope: 'process',
      run: async () => Promise.reject(new Error('boom')),
    });
    await server.scheduler.runNow('metrics-boom');
    const text = await scrape(`${server.url}/metrics`, adminAuth());
    assert.equal(sample(text, 'berth_job_runs_total', { job_name: 'metrics-boom', outcome: 'failed' }), 1);
    assert.equal(sample(text, 'berth_job_last_success_timestamp_seconds', { job_name: 'metrics-boom' }), 0);
  });
});

describe('metrics.addr: a listener of its own', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ auth: { mode: 'token', admin: { password: ADMIN_PASSWORD } }, metrics: { addr: '127.0.0.1:0' } });
  });
  after(async () => server?.destroy());

  it('serves /metrics there without credentials, and nothing else', async () => {
    assert.ok(server.metricsUrl && !server.metricsUrl.startsWith(server.url), `metrics at ${server.metricsUrl}`);
    promtoolCheckMetrics(await scrape(server.metricsUrl));
    const other = await fetch(server.metricsUrl.replace(/\/metrics$/, '/v2/'));
    assert.equal(other.status, 404);
  });

  it('leaves /metrics off the main listener', async () => {
    assert.equal((await fetch(`${server.url}/metrics`, { headers: { authorization: adminAuth() } })).status, 404);
  });
});

describe('metrics.enabled false', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ metrics: { enabled: false } });
  });
  after(async () => server?.destroy());

  it('serves no /metrics', async () => {
    assert.equal(server.metricsUrl, undefined);
    assert.equal((await fetch(`${server.url}/metrics`)).status, 404);
  });
});

describe('metrics.projectlabels caps the project label', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ metrics: { projectlabels: 1, refresh: 0 } });
  });
  after(async () => server?.destroy());

  it('counts projects beyond the cap as _other', async () => {
    const client = new RegistryClient(server.url);
    await client.pushImage('first/app', 'v1', makeImage({ layers: 1, layerSize: 100 }));
    await client.pushImage('second/app', 'v1', makeImage({ layers: 1, layerSize: 100 }));
    const text = await scrape(`${server.url}/metrics`);
    assert.equal(sample(text, 'berth_registry_pushes_total', { project: 'first' }), 1);
    assert.equal(sample(text, 'berth_registry_pushes_total', { project: '_other' }), 1);
    assert.equal(sample(text, 'berth_registry_pushes_total', { project: 'second' }), undefined);
    assert.equal(sample(text, 'berth_project_repositories', { project: '_other' }), 1);
  });
});
