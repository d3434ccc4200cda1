import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryError } from '../../src/core/errors.js';
import { parseManifest } from '../../src/core/manifest.js';
import { MediaTypes } from '../../src/core/media-types.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const desc = (mediaType: string, digest: string, size = 1) => ({ mediaType, digest, size });

function parse(value: unknown, contentType?: string) {
  return parseManifest(Buffer.from(JSON.stringify(value)), contentType);
}

function invalid(value: unknown, contentType?: string): string {
  try {
    parse(value, contentType);
  } catch (err) {
    assert.ok(err instanceof RegistryError);
    assert.equal(err.code, 'MANIFEST_INVALID');
    return err.message;
  }
  assert.fail(`accepted ${JSON.stringify(value)}`);
}

const image = (extra: Record<string, unknown> = {}) => ({
  schemaVersion: 2,
  mediaType: MediaTypes.ociManifest,
  config: desc('application/vnd.oci.image.config.v1+json', d('a')),
  layers: [desc('application/vnd.oci.image.layer.v1.tar+gzip', d('b')), desc('application/vnd.oci.image.layer.v1.tar+gzip', d('b'))],
  ...extra,
});

describe('parseManifest', () => {
  it('an image manifest references its config and (deduplicated) layers', () => {
    const parsed = parse(image());
    assert.equal(parsed.mediaType, MediaTypes.ociManifest);
    assert.deepEqual(parsed.references, [
      { digest: d('a'), kind: 'config' },
      { digest: d('b'), kind: 'layer' },
    ]);
    assert.equal(parsed.subject, null);
  });

  it('artifactType is the manifest field, else the config media type (referrers rule)', () => {
    assert.equal(parse(image({ artifactType: 'application/x-sbom' })).artifactType, 'application/x-sbom');
    assert.equal(parse(image()).artifactType, 'application/vnd.oci.image.config.v1+json');
  });

  it('an index references child manifests only, and has no artifactType unless declared', () => {
    const parsed = parse({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [desc(MediaTypes.ociManifest, d('c')), desc('application/vnd.example.other', d('e'))],
    });
    assert.deepEqual(parsed.references, [{ digest: d('c'), kind: 'manifest' }]);
    assert.equal(parsed.artifactType, null);
  });

  it('foreign and non-distributable layers are not required to exist', () => {
    const parsed = parse(
      image({ layers: [desc(MediaTypes.dockerForeignLayer, d('f')), desc(MediaTypes.ociNondistributableLayers[0], d('9'))] }),
    );
    assert.deepEqual(parsed.references, [{ digest: d('a'), kind: 'config' }]);
  });

  it('keeps subject and annotations', () => {
    const parsed = parse(image({ subject: desc(MediaTypes.ociManifest, d('1')), annotations: { a: 'b' } }));
    assert.equal(parsed.subject?.digest, d('1'));
    assert.deepEqual(parsed.annotations, { a: 'b' });
  });

  it('without a mediaType field, uses Content-Type, else the document shape (OCI)', () => {
    const { mediaType: _m, ...bare } = image();
    assert.equal(parse(bare, MediaTypes.ociManifest).mediaType, MediaTypes.ociManifest);
    assert.equal(parse(bare).mediaType, MediaTypes.ociManifest);
    assert.equal(parse({ schemaVersion: 2, manifests: [] }).mediaType, MediaTypes.ociIndex);
  });

  it('ignores Content-Type parameters and a non-manifest Content-Type', () => {
    assert.equal(parse(image(), `${MediaTypes.ociManifest}; charset=utf-8`).mediaType, MediaTypes.ociManifest);
    assert.equal(parse(image(), 'application/octet-stream').mediaType, MediaTypes.ociManifest);
  });

  it('refuses malformed documents with MANIFEST_INVALID', () => {
    for (const bad of ['not json', '[]', 'null', '42']) {
      assert.throws(
        () => parseManifest(Buffer.from(bad), undefined),
        (e: unknown) => e instanceof RegistryError && e.code === 'MANIFEST_INVALID',
        bad,
      );
    }
    invalid(image({ schemaVersion: 1 }));
    invalid(image({ config: undefined }));
    invalid(image({ layers: [{ mediaType: 'x', digest: 'sha256:zz', size: 1 }] }));
    invalid(image({ layers: [{ mediaType: 'x', digest: d('a'), size: 1.5 }] }));
    invalid(image({ mediaType: 42 }));
    invalid(image({ mediaType: 'application/vnd.example+json' }));
  });

  it('refuses a Content-Type naming a different manifest type than the body', () => {
    assert.match(invalid(image(), MediaTypes.ociIndex), /does not match/);
  });

  it('refuses Docker manifests without their required mediaType field, or with OCI-only fields', () => {
    const docker = { ...image(), mediaType: MediaTypes.dockerManifest };
    assert.equal(parse(docker).mediaType, MediaTypes.dockerManifest);
    const { mediaType: _m, ...bare } = docker;
    assert.match(invalid(bare, MediaTypes.dockerManifest), /mediaType/);
    invalid({ schemaVersion: 2, manifests: [] }, MediaTypes.dockerManifestList);
    invalid({ ...docker, subject: desc(MediaTypes.ociManifest, d('1')) });
  });
});
