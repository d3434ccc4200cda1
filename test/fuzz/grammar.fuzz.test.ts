import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseDigest } from '../../src/core/digest.js';
import { RegistryError } from '../../src/core/errors.js';
import { MAX_NAME_LENGTH, isValidTag, validateRepositoryName } from '../../src/core/names.js';

/**
 * Name, tag and digest grammars against the distribution spec's own regular expressions
 * (copied here from the spec, not from src/, so the two can disagree).
 */
const RUNS = { seed: 1337, numRuns: 500 };
const SPEC_NAME = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const SPEC_TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

function acceptsName(name: string): boolean {
  try {
    validateRepositoryName(name);
    return true;
  } catch (err) {
    assert.ok(err instanceof RegistryError && err.code === 'NAME_INVALID', `unexpected ${String(err)}`);
    return false;
  }
}

/** Inserts, replaces or deletes characters at random places, favouring the ones that matter. */
const hostileChar = fc.oneof(
  fc.constantFrom('/', '.', '..', '_', '__', '-', '\\', '\0', ' ', 'A', 'é', 'а', '%2e', ':', '@', '//', '\n'),
  fc.string({ minLength: 1, maxLength: 2 }),
);
function mutate(base: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(base, fc.nat(), hostileChar, fc.constantFrom('insert', 'replace', 'delete')).map(([s, at, c, op]) => {
    const i = s.length === 0 ? 0 : at % (s.length + 1);
    if (op === 'insert') return s.slice(0, i) + c + s.slice(i);
    if (op === 'replace') return s.slice(0, i) + c + s.slice(i + 1);
    return s.slice(0, i) + s.slice(i + 1);
  });
}

const specName = fc.stringMatching(SPEC_NAME).filter((n) => n.length <= MAX_NAME_LENGTH);
const specTag = fc.stringMatching(SPEC_TAG);

describe('fuzz: repository name grammar', () => {
  it('every name the spec grammar generates (≤ 255 chars) is accepted', () => {
    fc.assert(
      fc.property(specName, (name) => assert.ok(acceptsName(name), name)),
      RUNS,
    );
  });

  it('mutated names are accepted exactly when the spec regex (and the length limit) accepts them', () => {
    fc.assert(
      fc.property(mutate(specName), (name) => {
        assert.equal(acceptsName(name), SPEC_NAME.test(name) && name.length <= MAX_NAME_LENGTH, JSON.stringify(name));
      }),
      RUNS,
    );
  });

  it('arbitrary strings: accepted exactly when the spec regex accepts them', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (name) => {
        assert.equal(acceptsName(name), SPEC_NAME.test(name) && name.length <= MAX_NAME_LENGTH, JSON.stringify(name));
      }),
      RUNS,
    );
  });
});

describe('fuzz: tag grammar', () => {
  it('generated tags are valid; mutated and arbitrary ones are valid exactly when the spec regex says so', () => {
    fc.assert(
      fc.property(specTag, (tag) => assert.ok(isValidTag(tag), tag)),
      RUNS,
    );
    fc.assert(
      fc.property(fc.oneof(mutate(specTag), fc.string({ maxLength: 200 })), (tag) =>
        assert.equal(isValidTag(tag), SPEC_TAG.test(tag), JSON.stringify(tag)),
      ),
      RUNS,
    );
  });
});

describe('fuzz: digest grammar', () => {
  const hex = (n: number) => fc.stringMatching(new RegExp(`^[a-f0-9]{${n}}$`));
  it('well-formed sha256 and sha512 digests parse to themselves', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          hex(64).map((h) => `sha256:${h}`),
          hex(128).map((h) => `sha512:${h}`),
        ),
        (digest) => {
          assert.equal(parseDigest(digest).value, digest);
        },
      ),
      RUNS,
    );
  });

  it('anything else is refused with DIGEST_INVALID, never another error', () => {
    const wellFormed = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
    fc.assert(
      fc.property(fc.oneof(mutate(hex(64).map((h) => `sha256:${h}`)), fc.string({ maxLength: 140 })), (input) => {
        try {
          parseDigest(input);
          assert.ok(wellFormed.test(input), `accepted ${JSON.stringify(input)}`);
        } catch (err) {
          assert.ok(err instanceof RegistryError && err.code === 'DIGEST_INVALID', String(err));
          assert.ok(!wellFormed.test(input));
        }
      }),
      RUNS,
    );
  });
});
