import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RegistryError } from '../../src/core/errors.js';
import { MAX_NAME_LENGTH, isValidTag, validateRepositoryName, validateTag } from '../../src/core/names.js';
import { MediaTypes, acceptAdmits } from '../../src/core/media-types.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof RegistryError ? err.code : 'not a RegistryError';
  }
}

describe('repository name grammar', () => {
  it('accepts the spec grammar: lowercase components joined by ".", "_", "__", "-"+ and "/"', () => {
    for (const name of [
      'a',
      'a/b/c',
      'library/ubuntu',
      'a.b',
      'a_b',
      'a__b',
      'a-b',
      'a---b',
      '0',
      'x1/y2/z3',
      'a'.repeat(MAX_NAME_LENGTH),
    ]) {
      assert.equal(validateRepositoryName(name), name);
    }
  });

  it('refuses everything else with NAME_INVALID', () => {
    for (const name of [
      '',
      'A',
      'a/B',
      '..',
      'a/../b',
      'a/./b',
      'a//b',
      '/a',
      'a/',
      '-a',
      'a-',
      '.a',
      'a.',
      'a..b',
      'a___b',
      'a\\b',
      'a b',
      'a:b',
      'a%2fb',
      'é',
      'a'.repeat(MAX_NAME_LENGTH + 1),
    ]) {
      assert.equal(
        code(() => validateRepositoryName(name)),
        'NAME_INVALID',
        JSON.stringify(name),
      );
    }
  });

  it('never accepts a name with an empty, "." or ".." path component (property)', () => {
    const component = fc.constantFrom('', '.', '..', 'a', 'b-c', 'd.e');
    fc.assert(
      fc.property(fc.array(component, { minLength: 1, maxLength: 5 }), (parts) => {
        const name = parts.join('/');
        const accepted = code(() => validateRepositoryName(name)) === undefined;
        const traversal = parts.some((p) => p === '' || p === '.' || p === '..');
        return !(accepted && traversal);
      }),
    );
  });
});

describe('tag grammar', () => {
  it('accepts [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}', () => {
    for (const tag of ['latest', 'V1.0', '_x', '0', 'a-b_c.d', 'a'.repeat(128)]) assert.ok(isValidTag(tag), tag);
  });

  it('refuses anything else with TAG_INVALID', () => {
    for (const tag of ['', '-a', '.a', 'a'.repeat(129), 'a:b', 'a/b', 'a b', 'a+b', 'é']) {
      assert.equal(
        code(() => validateTag(tag)),
        'TAG_INVALID',
        tag,
      );
    }
  });
});

describe('Accept header (acceptAdmits)', () => {
  const oci = MediaTypes.ociManifest;

  it('admits the named type, wildcards, and no header at all', () => {
    for (const accept of [undefined, oci, `${MediaTypes.dockerManifest}, ${oci};q=0.5`, '*/*', 'application/*', ` ${oci.toUpperCase()} `]) {
      assert.ok(acceptAdmits(accept, oci), String(accept));
    }
  });

  it('excludes a type when the header names readable types and not that one', () => {
    for (const accept of [MediaTypes.dockerManifest, 'application/json', `garbage, ${MediaTypes.ociIndex}`, 'text/*']) {
      assert.equal(acceptAdmits(accept, oci), false, accept);
    }
  });

  it('treats a header naming no parseable media type like no header (serve, not 404)', () => {
    for (const accept of ['', ' ', 'garbage', ';;', ',', ', ;q=1', 'a b/c', '/', 'application', 'application/', '/json', 'a/b/c']) {
      assert.ok(acceptAdmits(accept, oci), JSON.stringify(accept));
    }
  });
});
