import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { digestOf, isDigest, parseDigest } from '../../src/core/digest.js';
import { RegistryError } from '../../src/core/errors.js';

function assertDigestInvalid(input: string): void {
  assert.throws(
    () => parseDigest(input),
    (err: unknown) => err instanceof RegistryError && err.code === 'DIGEST_INVALID' && err.status === 400,
    input,
  );
}

describe('digest parsing', () => {
  const hex64 = createHash('sha256').update('x').digest('hex');
  const hex128 = createHash('sha512').update('x').digest('hex');

  it('accepts sha256 and sha512 with lowercase hex of the right length', () => {
    assert.deepEqual(parseDigest(`sha256:${hex64}`), { algorithm: 'sha256', hex: hex64, value: `sha256:${hex64}` });
    assert.deepEqual(parseDigest(`sha512:${hex128}`), { algorithm: 'sha512', hex: hex128, value: `sha512:${hex128}` });
  });

  it('refuses bad encodings with DIGEST_INVALID', () => {
    for (const bad of [
      'sha256:xyz',
      `sha256:${hex64.slice(1)}`,
      `sha256:${hex64}0`,
      `sha256:${hex64.toUpperCase()}`,
      `sha512:${hex64}`,
      `sha256:${hex128}`,
      'sha256:',
      `:${hex64}`,
      hex64,
      `SHA256:${hex64}`,
      `sha256:${hex64}\n`,
      ` sha256:${hex64}`,
    ]) {
      assertDigestInvalid(bad);
    }
  });

  it('refuses algorithms it cannot verify, even when grammatical', () => {
    for (const bad of ['md5:d41d8cd98f00b204e9800998ecf8427e', `sha384:${hex64}`, `blake3:${hex64}`, `sha256+b64u:${hex64}`]) {
      assertDigestInvalid(bad);
    }
  });

  it('digestOf hashes bytes with the requested algorithm', () => {
    assert.equal(digestOf('x'), `sha256:${hex64}`);
    assert.equal(digestOf(Buffer.from('x'), 'sha512'), `sha512:${hex128}`);
  });

  it('isDigest tells digests from tags by the colon tags cannot contain', () => {
    assert.equal(isDigest(`sha256:${hex64}`), true);
    assert.equal(isDigest('latest'), false);
  });
});
