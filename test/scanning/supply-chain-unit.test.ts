import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyManifest, importsOf } from '../../src/scanning/supply-chain.js';
import type { VulnImportRun } from '../../src/scanning/ports.js';
import type { StoredEvent } from '../../src/core/events.js';
import { webhookEventOf } from '../../src/webhooks/events.js';
import { render } from '../../src/webhooks/formats.js';

const OCI = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER = 'application/vnd.docker.distribution.manifest.v2+json';
const d = (c: string) => `sha256:${c.repeat(64)}`;
const manifest = (value: object) => Buffer.from(JSON.stringify(value));
const layer = (mediaType: string) => ({ mediaType, digest: d('1'), size: 1 });

/** What the supply-chain worker treats as an image, and how scan events render in each webhook format. */
describe('supply chain: manifest classification', () => {
  it('images: OCI and Docker v2 with an image config and a filesystem layer (gzip, zstd, plain tar, docker rootfs)', () => {
    for (const [mediaType, config, layerType] of [
      [OCI, 'application/vnd.oci.image.config.v1+json', 'application/vnd.oci.image.layer.v1.tar+gzip'],
      [OCI, 'application/vnd.oci.image.config.v1+json', 'application/vnd.oci.image.layer.v1.tar+zstd'],
      [OCI, 'application/vnd.oci.image.config.v1+json', 'application/vnd.oci.image.layer.v1.tar'],
      [DOCKER, 'application/vnd.docker.container.image.v1+json', 'application/vnd.docker.image.rootfs.diff.tar.gzip'],
    ] as const) {
      assert.deepEqual(
        classifyManifest(mediaType, manifest({ config: { mediaType: config, digest: d('2') }, layers: [layer(layerType)] })),
        { kind: 'image' },
        layerType,
      );
    }
  });

  it('not images: referrers (subject), artifact types, cosign simplesigning, in-toto attestations, Helm charts, garbage', () => {
    const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('2') };
    const cases: [string, Buffer, RegExp][] = [
      [
        OCI,
        manifest({ config, layers: [layer('application/vnd.oci.image.layer.v1.tar+gzip')], subject: { digest: d('3') } }),
        /attached to/,
      ],
      [
        OCI,
        manifest({
          artifactType: 'application/spdx+json',
          config: { mediaType: 'application/vnd.oci.empty.v1+json' },
          layers: [layer('application/spdx+json')],
        }),
        /artifact of type/,
      ],
      [OCI, manifest({ config, layers: [layer('application/vnd.dev.cosign.simplesigning.v1+json')] }), /no filesystem layer/],
      [
        OCI,
        manifest({ config: { mediaType: 'application/vnd.oci.image.config.v1+json' }, layers: [layer('application/vnd.in-toto+json')] }),
        /no filesystem layer/,
      ],
      [
        OCI,
        manifest({
          config: { mediaType: 'application/vnd.cncf.helm.config.v1+json' },
          layers: [layer('application/vnd.cncf.helm.chart.content.v1.tar+gzip')],
        }),
        /config application\/vnd.cncf.helm/,
      ],
      [OCI, Buffer.from('{not json'), /not JSON/],
    ];
    for (const [mediaType, payload, why] of cases) {
      const kind = classifyManifest(mediaType, payload);
      assert.equal(kind.kind, 'other');
      assert.match((kind as { why: string }).why, why);
    }
  });

  it('an index lists its platform images, without attestation manifests, unknown/unknown entries or nested indexes', () => {
    const kind = classifyManifest(
      'application/vnd.oci.image.index.v1+json',
      manifest({
        manifests: [
          { mediaType: OCI, digest: d('a'), platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: OCI, digest: d('b'), platform: { os: 'linux', architecture: 'arm64' } },
          {
            mediaType: OCI,
            digest: d('c'),
            platform: { os: 'unknown', architecture: 'unknown' },
            annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': d('a') },
          },
          { mediaType: 'application/vnd.oci.image.index.v1+json', digest: d('e') },
        ],
      }),
    );
    assert.deepEqual(kind, { kind: 'index', images: [d('a'), d('b')] });
  });

  it('the rescan follows the newest complete import that changed something', () => {
    const run = (id: number, outcome: VulnImportRun['outcome'], inserted: number, updated: number): VulnImportRun => ({
      id,
      source: 's',
      startedAt: id,
      finishedAt: id,
      outcome,
      files: 1,
      inserted,
      updated,
      unchanged: 0,
      invalid: 0,
      errors: [],
    });
    const { last, changed } = importsOf([
      run(5, 'running', 9, 0),
      run(4, 'complete', 0, 0),
      run(3, 'failed', 3, 0),
      run(2, 'complete', 0, 1),
      run(1, 'complete', 10, 0),
    ]);
    assert.deepEqual([last?.id, changed?.id], [4, 2]);
    assert.deepEqual(importsOf([]), { last: null, changed: null });
  });
});

describe('scan events in webhook formats', () => {
  const ctx = { baseUrl: 'https://registry.example.com', instanceId: 'i', sourceAddr: 'h:5000', publicProject: true };
  const stored = (event: StoredEvent['event']): StoredEvent => ({
    seq: 7,
    at: Date.UTC(2026, 11, 2, 12, 0, 0, 123),
    actor: 'berth-scanner',
    event,
  });
  const clean = webhookEventOf(
    stored({
      type: 'scan.completed',
      repository: 'team/app',
      digest: d('a'),
      packages: 3,
      summary: { Critical: 0, High: 0, Medium: 0, Low: 0, Negligible: 0, Unknown: 0, total: 0 },
      fixable: 0,
    }),
  )!;

  it('Distribution has no scan notifications; Harbor: severity None and an empty summary for a clean image; times in seconds', () => {
    assert.equal(render('distribution', clean, ctx), null);
    assert.equal(render('distribution-v2', clean, ctx), null);
    const harbor = JSON.parse(render('harbor', clean, ctx)!.body);
    assert.deepEqual(
      [harbor.type, harbor.occur_at, harbor.operator],
      ['SCANNING_COMPLETED', Math.floor(Date.UTC(2026, 11, 2, 12) / 1000), 'berth-scanner'],
    );
    assert.deepEqual(harbor.event_data.resources[0].resource_url, `registry.example.com/team/app@${d('a')}`);
    const overview = harbor.event_data.resources[0].scan_overview['application/vnd.security.vulnerability.report; version=1.1'];
    assert.deepEqual(
      [overview.scan_status, overview.severity, overview.summary, overview.start_time],
      ['Success', 'None', { total: 0, fixable: 0, summary: {} }, '2026-12-02T12:00:00Z'],
    );
    assert.equal(harbor.event_data.repository.repo_type, 'public');
    assert.equal(harbor.event_data.custom_attributes, undefined);
  });

  it('a failed scan: Harbor SCANNING_FAILED with scan_status Error and the reason in custom_attributes.Details; CloudEvents io.berth.scan.failed with data.error', () => {
    const failed = webhookEventOf(stored({ type: 'scan.failed', repository: 'team/app', digest: d('b'), error: 'no package list' }))!;
    const harbor = JSON.parse(render('harbor', failed, ctx)!.body);
    assert.equal(harbor.type, 'SCANNING_FAILED');
    assert.equal(
      harbor.event_data.resources[0].scan_overview['application/vnd.security.vulnerability.report; version=1.1'].scan_status,
      'Error',
    );
    assert.deepEqual(harbor.event_data.custom_attributes, { Details: 'no package list' });
    const ce = JSON.parse(render('cloudevents', failed, ctx)!.body);
    assert.deepEqual([ce.type, ce.subject, ce.data.error], ['io.berth.scan.failed', `team/app@${d('b')}`, 'no package list']);
  });
});
