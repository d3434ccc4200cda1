import { fireEvent, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { Artifact } from '../api/types';
import { fakeApi, renderSignedIn } from '../test-utils';
import { ArtifactView, sbomPackages } from './Artifact';

const DIGEST = `sha256:${'b'.repeat(64)}`;
const IMAGE: Artifact = {
  repository: 'team/app',
  project: 'team',
  digest: DIGEST,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  artifactType: null,
  kind: 'image',
  size: 1234,
  manifest: { schemaVersion: 2, layers: [] },
  config: {
    os: 'linux',
    architecture: 'arm64',
    config: { Env: ['PATH=/usr/bin', 'MODE=prod'], Entrypoint: ['/app'], Cmd: ['--serve'] },
    history: [{ created_by: 'COPY app /app' }, { created_by: 'ENV MODE=prod', empty_layer: true }],
  },
  layers: [{ digest: `sha256:${'c'.repeat(64)}`, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: 4096 }],
  platforms: [],
  referrers: [
    {
      digest: `sha256:${'d'.repeat(64)}`,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/spdx+json',
      kind: 'sbom',
      size: 300,
    },
  ],
  tags: ['v1'],
  pushedAt: new Date().toISOString(),
};

describe('Artifact view', () => {
  it('shows the image config, layers, verified signature, SBOM packages, filtered vulnerabilities and restores a tag', async () => {
    const calls = fakeApi({
      'GET /api/v1/repositories/team%2Fapp/artifacts/v1': () => IMAGE,
      [`GET /api/v1/projects/team/repositories/app/artifacts/${DIGEST}/signatures`]: () => ({
        verified: true,
        signatures: [
          {
            format: 'cosign',
            source: { kind: 'tag', tag: 'sha256-b.sig' },
            manifest: `sha256:${'e'.repeat(64)}`,
            valid: true,
            signer: { kind: 'key', name: 'release-key' },
          },
        ],
      }),
      [`GET /api/v1/projects/team/repositories/app/artifacts/${DIGEST}/sbom`]: () => ({
        spdxVersion: 'SPDX-2.3',
        packages: [
          { name: 'openssl', versionInfo: '3.0.1' },
          { name: 'zlib', versionInfo: '1.3' },
        ],
      }),
      [`GET /api/v1/projects/team/repositories/app/artifacts/${DIGEST}/vulnerabilities`]: () => ({
        digest: DIGEST,
        status: 'complete',
        scannedAt: Date.now(),
        packages: 2,
        summary: { Critical: 1, High: 0, Medium: 1, Low: 0, Unknown: 0 },
        error: null,
        findings: [
          {
            id: 'CVE-2024-1',
            aliases: [],
            summary: null,
            package: 'openssl',
            installed: '3.0.1',
            fixed: '3.0.2',
            severity: 'Critical',
            links: [],
          },
          { id: 'CVE-2024-2', aliases: [], summary: null, package: 'zlib', installed: '1.3', fixed: null, severity: 'Medium', links: [] },
        ],
      }),
      // Two pages of v1's changes: the server filters (?tag=) and pages (?n=, ?last=).
      'GET /api/v1/repositories/team%2Fapp/tag-history': (c) =>
        c.query.get('tag') !== 'v1'
          ? { entries: [], next: null }
          : c.query.get('last') === '5'
            ? {
                entries: [
                  {
                    id: 4,
                    tag: 'v1',
                    oldDigest: null,
                    newDigest: `sha256:${'f'.repeat(64)}`,
                    at: new Date().toISOString(),
                    actor: 'carol',
                    via: null,
                  },
                ],
                next: null,
              }
            : {
                entries: [
                  {
                    id: 5,
                    tag: 'v1',
                    oldDigest: `sha256:${'f'.repeat(64)}`,
                    newDigest: DIGEST,
                    at: new Date().toISOString(),
                    actor: 'bob',
                    via: null,
                  },
                ],
                next: '5',
              },
      'POST /api/v1/repositories/team%2Fapp/tags/v1/restore': () => ({
        repository: 'team/app',
        tag: 'v1',
        digest: `sha256:${'f'.repeat(64)}`,
        previous: DIGEST,
      }),
    });
    window.confirm = () => true;
    renderSignedIn(<ArtifactView repository="team/app" reference="v1" />, { projects: [{ name: 'team', role: 'developer' }] });
    expect(await screen.findByText('"/app"', { exact: false })).toBeTruthy();
    expect(screen.getByText('MODE=prod')).toBeTruthy();
    expect(screen.getByText('linux/arm64')).toBeTruthy();
    expect(await screen.findByText('✓ verified')).toBeTruthy();
    expect((await screen.findAllByText('openssl', { selector: 'td' })).length).toBeGreaterThan(0);
    expect(screen.getByText('2 packages')).toBeTruthy();

    const vulns = screen.getByRole('region', { name: 'Vulnerabilities' });
    expect(await within(vulns).findByText('CVE-2024-2')).toBeTruthy();
    fireEvent.change(within(vulns).getByLabelText('Severity'), { target: { value: 'Critical' } });
    expect(within(vulns).queryByText('CVE-2024-2')).toBeNull();
    expect(within(vulns).getByText('CVE-2024-1')).toBeTruthy();

    // Tag history shows only this tag's changes; a developer (push) may restore.
    const history = screen.getByRole('region', { name: 'Tag history' });
    fireEvent.click(await within(history).findByRole('button', { name: /Restore/ }));
    await screen.findAllByText('bob');
    expect(calls.some((c) => c.method === 'POST' && (c.body as { digest: string }).digest === `sha256:${'f'.repeat(64)}`)).toBe(true);
    const first = calls.find((c) => c.path.endsWith('/tag-history'))!;
    expect([first.query.get('tag'), first.query.get('n'), first.query.get('last')]).toEqual(['v1', '20', null]);
    fireEvent.click(within(history).getByRole('button', { name: 'Next →' }));
    expect(await within(history).findByText('carol')).toBeTruthy();
    expect(within(history).queryByText('bob')).toBeNull();
    expect(
      calls
        .filter((c) => c.path.endsWith('/tag-history'))
        .at(-1)!
        .query.get('last'),
    ).toBe('5');
  });

  it('reads packages of SPDX and CycloneDX documents', () => {
    expect(sbomPackages({ components: [{ name: 'a', version: '1', purl: 'pkg:npm/a@1' }] })).toEqual([
      { name: 'a', version: '1', purl: 'pkg:npm/a@1' },
    ]);
    expect(
      sbomPackages({
        packages: [{ name: 'b', versionInfo: '2', externalRefs: [{ referenceType: 'purl', referenceLocator: 'pkg:deb/b@2' }] }],
      }),
    ).toEqual([{ name: 'b', version: '2', purl: 'pkg:deb/b@2' }]);
    expect(sbomPackages('nonsense')).toEqual([]);
  });
});
