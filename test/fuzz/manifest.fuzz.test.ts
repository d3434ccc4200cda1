import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RegistryError } from '../../src/core/errors.js';
import { parseManifest } from '../../src/core/manifest.js';
import { MANIFEST_MEDIA_TYPES, MediaTypes } from '../../src/core/media-types.js';

/** Property tests of manifest parsing (fixed seed, bounded runs: a few seconds). */
const RUNS = { seed: 424242, numRuns: 300 };

/** Calls `parseManifest` and asserts it either returns or throws a MANIFEST_INVALID RegistryError. */
function parsesOrRejectsCleanly(payload: Buffer, contentType: string | undefined): void {
  try {
    parseManifest(payload, contentType);
  } catch (err) {
    assert.ok(err instanceof RegistryError, `threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    assert.equal(err.code, 'MANIFEST_INVALID');
    assert.equal(err.status, 400);
  }
}

const contentTypes = fc.option(
  fc.oneof(fc.constantFrom(...MANIFEST_MEDIA_TYPES, 'text/plain', '', ';;', 'application/json; charset=utf-8'), fc.string()),
  { nil: undefined },
);
const hex = (length: number) => fc.stringMatching(new RegExp(`^[a-f0-9]{${length}}$`));
const digest = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
);
const mediaType = fc.oneof(
  fc.constantFrom(MediaTypes.ociEmpty, 'application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.config.v1+json'),
  fc.stringMatching(/^[a-z]{1,10}\/[a-z.+-]{1,30}$/),
);
const annotations = fc.option(fc.dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 40 }), { maxKeys: 5 }), {
  nil: undefined,
});
const descriptor = fc.record(
  { mediaType, digest, size: fc.nat({ max: Number.MAX_SAFE_INTEGER }), annotations },
  { requiredKeys: ['mediaType', 'digest', 'size'] },
);
const imageManifest = fc.record(
  {
    schemaVersion: fc.constant(2 as const),
    mediaType: fc.constant(MediaTypes.ociManifest),
    config: descriptor,
    layers: fc.array(descriptor, { maxLength: 20 }),
    annotations,
  },
  { requiredKeys: ['schemaVersion', 'mediaType', 'config', 'layers'] },
);

describe('fuzz: parseManifest', () => {
  it('arbitrary bytes never throw anything but MANIFEST_INVALID', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), contentTypes, (bytes, contentType) =>
        parsesOrRejectsCleanly(Buffer.from(bytes), contentType),
      ),
      RUNS,
    );
  });

  it('arbitrary JSON values (incl. __proto__ keys) never throw anything but MANIFEST_INVALID', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), contentTypes, (value, contentType) => {
        parsesOrRejectsCleanly(Buffer.from(JSON.stringify(value)), contentType);
      }),
      RUNS,
    );
  });

  it('JSON that looks like a manifest but has random field values never throws anything but MANIFEST_INVALID', () => {
    const field = fc.oneof(fc.jsonValue({ maxDepth: 3 }), descriptor, fc.array(descriptor, { maxLength: 3 }));
    fc.assert(
      fc.property(
        fc.record(
          {
            schemaVersion: fc.oneof(fc.constant(2), fc.jsonValue()),
            mediaType: fc.oneof(fc.constantFrom(...MANIFEST_MEDIA_TYPES), fc.jsonValue()),
            config: field,
            layers: field,
            manifests: field,
            subject: field,
          },
          { requiredKeys: [] },
        ),
        contentTypes,
        (doc, contentType) => parsesOrRejectsCleanly(Buffer.from(JSON.stringify(doc)), contentType),
      ),
      RUNS,
    );
  });

  it('valid generated image manifests parse, with exactly config + layers as references', () => {
    fc.assert(
      fc.property(imageManifest, (manifest) => {
        const parsed = parseManifest(Buffer.from(JSON.stringify(manifest)), MediaTypes.ociManifest);
        assert.equal(parsed.mediaType, MediaTypes.ociManifest);
        assert.equal(parsed.artifactType, manifest.config.mediaType);
        // Compared as JSON: generated objects may have a null prototype.
        assert.equal(JSON.stringify(parsed.annotations), JSON.stringify(manifest.annotations ?? null));
        const expected = [...new Set([manifest.config.digest, ...manifest.layers.map((l) => l.digest)])];
        assert.deepEqual(
          parsed.references.map((r) => r.digest),
          expected,
        );
        assert.equal(parsed.references[0]!.kind, 'config');
      }),
      RUNS,
    );
  });

  it('a valid manifest with one required field removed or retyped is rejected with MANIFEST_INVALID', () => {
    const mutation = fc.constantFrom<[string, unknown]>(
      ['config', undefined],
      ['layers', undefined],
      ['config', 'x'],
      ['layers', {}],
      ['schemaVersion', 3],
      ['schemaVersion', '2'],
    );
    fc.assert(
      fc.property(imageManifest, mutation, (manifest, [key, value]) => {
        const broken = { ...manifest, [key]: value };
        assert.throws(
          () => parseManifest(Buffer.from(JSON.stringify(broken)), MediaTypes.ociManifest),
          (err: unknown) => err instanceof RegistryError && err.code === 'MANIFEST_INVALID',
        );
      }),
      RUNS,
    );
  });
});
