import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig, redactConfig } from '../../src/config/load.js';
import type { StoredEvent } from '../../src/core/events.js';
import { webhookEventOf } from '../../src/webhooks/events.js';
import { render } from '../../src/webhooks/formats.js';
import { configuredEndpoints, policyWants, retryDelayMs } from '../../src/webhooks/targets.js';
import { tempDir } from '../helpers/server.js';

const ctx = { baseUrl: 'https://registry.example.com', instanceId: 'i', sourceAddr: 'registry.example.com', publicProject: true };
const stored = (event: StoredEvent['event'], seq = 7): StoredEvent => ({
  seq,
  at: Date.parse('2026-12-02T10:00:00Z'),
  actor: 'alice',
  event,
});

describe('webhooks: event mapping, filters, backoff, configuration', () => {
  it('a replication execution: Harbor REPLICATION with its job status and counts, CloudEvents io.berth.replication.finished, no Distribution event', () => {
    const finished = webhookEventOf(
      stored({
        type: 'replication.finished',
        policy: 'dr',
        executionId: 12,
        direction: 'push',
        registry: 'dr-site',
        trigger: 'manual',
        status: 'partial',
        copied: 3,
        skipped: 40,
        failed: 1,
        deleted: 0,
        bytes: 1024,
        durationMs: 900,
      }),
    )!;
    assert.equal(finished.kind, 'replication.finished');
    assert.equal(finished.project, null, 'registry-wide, like gc.finished');
    const harbor = JSON.parse(render('harbor', finished, ctx)!.body);
    assert.equal(harbor.type, 'REPLICATION');
    assert.equal(harbor.event_data.replication.job_status, 'partial');
    assert.equal(harbor.event_data.replication.trigger_type, 'manual');
    assert.deepEqual(harbor.event_data.replication.dest_resource, { registry_name: 'dr-site' });
    assert.deepEqual([harbor.event_data.replication.copied, harbor.event_data.replication.failed], [3, 1]);
    const ce = JSON.parse(render('cloudevents', finished, ctx)!.body);
    assert.equal(ce.type, 'io.berth.replication.finished');
    assert.equal(render('distribution', finished, ctx), null);
  });

  it('a quota refusal: Harbor QUOTA_EXCEED with its message in custom_attributes.Details, CloudEvents io.berth.quota.exceeded, no Distribution event', () => {
    const event = webhookEventOf(
      stored({ type: 'quota.exceeded', project: 'shop', repository: 'shop/web', requested: 10, used: 95, limit: 100 }),
    )!;
    const harbor = JSON.parse(render('harbor', event, ctx)!.body);
    assert.equal(harbor.type, 'QUOTA_EXCEED');
    assert.equal(
      harbor.event_data.custom_attributes.Details,
      'Quota exceeded when processing the request of adding 10 of storage resource, which when updated to current usage of 95 will exceed the configured upper limit of 100.',
    );
    assert.deepEqual(harbor.event_data.resources, []);
    assert.equal(harbor.event_data.repository.repo_type, 'public');
    assert.equal(JSON.parse(render('cloudevents', event, ctx)!.body).type, 'io.berth.quota.exceeded');
    assert.equal(render('distribution', event, ctx), null);
  });

  it('a quota warning and a retention run in Harbor format', () => {
    const warning = JSON.parse(
      render('harbor', webhookEventOf(stored({ type: 'quota.warning', project: 'shop', used: 86, limit: 100, threshold: 85 }))!, ctx)!.body,
    );
    assert.equal(warning.type, 'QUOTA_WARNING');
    assert.match(warning.event_data.custom_attributes.Details, /85%/);
    assert.deepEqual(warning.event_data.repository, { namespace: 'shop' });
    const run = {
      type: 'retention.finished',
      project: 'shop',
      runId: 3,
      dryRun: false,
      tagsRemoved: 4,
      manifestsUntagged: 2,
      bytes: 2048,
    } as const;
    const retention = JSON.parse(render('harbor', webhookEventOf(stored(run))!, ctx)!.body);
    assert.equal(retention.type, 'TAG_RETENTION');
    assert.deepEqual(retention.event_data.retention, {
      harbor_hostname: 'registry.example.com',
      project_name: 'shop',
      project: 'shop',
      runId: 3,
      dryRun: false,
      tagsRemoved: 4,
      manifestsUntagged: 2,
      bytes: 2048,
    });
  });

  it('events webhooks do not report map to nothing; the id is stable per outbox position', () => {
    assert.equal(webhookEventOf(stored({ type: 'blob.committed', repository: 'a/b', digest: 'sha256:x', size: 1 })), null);
    const push = { type: 'tag.deleted', repository: 'a/b', tag: 't', digest: 'sha256:x' } as const;
    assert.equal(webhookEventOf(stored(push))!.id, webhookEventOf(stored(push))!.id);
    assert.notEqual(webhookEventOf(stored(push, 7))!.id, webhookEventOf(stored(push, 8))!.id);
  });

  it('policy filters: kinds, repository globs inside the project (picomatch), tag globs', () => {
    const policy = { project: 'shop', events: ['artifact.pushed'], repositories: ['api/**', 'web'], tags: ['v*'] };
    const pushed = (repository: string, tags: string[]) =>
      webhookEventOf(
        stored({
          type: 'manifest.pushed',
          repository,
          digest: 'sha256:x',
          mediaType: 'm',
          artifactType: null,
          subject: null,
          size: 1,
          tags,
        }),
      )!;
    assert.equal(policyWants(policy, pushed('shop/web', ['v1'])), true);
    assert.equal(policyWants(policy, pushed('shop/api/gateway/v2', ['v1', 'latest'])), true);
    assert.equal(policyWants(policy, pushed('shop/web', ['latest'])), false);
    assert.equal(policyWants(policy, pushed('shop/web', [])), false, 'a push by digest has no tag');
    assert.equal(policyWants(policy, pushed('shop/webapp', ['v1'])), false);
    assert.equal(policyWants(policy, pushed('other/web', ['v1'])), false, 'another project');
    assert.equal(
      policyWants(
        { ...policy, events: [] },
        webhookEventOf(
          stored({ type: 'manifest.deleted', repository: 'shop/web', digest: 'sha256:x', tags: ['v1'], references: [], subject: null }),
        )!,
      ),
      true,
    );
  });

  it('backoff: `backoff` until `threshold` failures, then doubling, capped at maxbackoff', () => {
    const target = { threshold: 2, backoffMs: 100, maxBackoffMs: 1_000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 40].map((n) => retryDelayMs(target, n)),
      [100, 100, 200, 400, 800, 1_000, 1_000],
    );
  });

  it('a Distribution config.yml notifications block loads as it is', () => {
    const dir = tempDir('berth-webhook-config-');
    const file = path.join(dir, 'berth.yaml');
    writeFileSync(
      file,
      `notifications:
  events:
    includereferences: true
  endpoints:
    - name: alistener
      disabled: false
      url: https://my.listener.com/event
      headers:
        Authorization: [Bearer <your token, if needed>]
      timeout: 1s
      threshold: 10
      backoff: 1s
      ignoredmediatypes:
        - application/octet-stream
      ignore:
        mediatypes:
           - application/octet-stream
        actions:
           - pull
`,
    );
    const { config } = loadConfig({ file, env: {} });
    const [endpoint] = configuredEndpoints(config);
    assert.equal(endpoint!.key, 'config:alistener');
    assert.equal(endpoint!.format, 'distribution');
    assert.deepEqual(endpoint!.headers, { Authorization: 'Bearer <your token, if needed>' });
    assert.equal(endpoint!.timeoutMs, 1_000);
    assert.equal(endpoint!.threshold, 10);
    assert.deepEqual(endpoint!.ignoredActions, ['pull']);
    // `berth config` masks the endpoint's headers and secret (they carry tokens).
    const shown = JSON.stringify(
      redactConfig({
        notifications: { endpoints: [{ url: 'https://x', secret: 'S1', headers: { Authorization: ['Bearer T1'], 'X-Token': 'T2' } }] },
      }),
    );
    assert.ok(!/S1|T1|T2/.test(shown), shown);
    writeFileSync(file, 'notifications:\n  endpoints:\n    - name: x\n      url: https://x\n      format: xml\n');
    assert.throws(() => loadConfig({ file, env: {} }), /notifications\.endpoints\.0\.format/);
    rmSync(dir, { recursive: true, force: true });
  });
});
