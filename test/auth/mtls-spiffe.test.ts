import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSpiffeId, svidId, uriSans } from '../../src/auth/mtls/spiffe.js';

describe('SPIFFE IDs (SPIFFE ID and X.509-SVID specifications)', () => {
  it('parses the trust domain and path of a valid ID', () => {
    assert.deepEqual(parseSpiffeId('spiffe://example.org/ns/ci/sa/builder'), {
      id: 'spiffe://example.org/ns/ci/sa/builder',
      trustDomain: 'example.org',
      path: '/ns/ci/sa/builder',
    });
    assert.deepEqual(parseSpiffeId('spiffe://prod_1.example-org'), {
      id: 'spiffe://prod_1.example-org',
      trustDomain: 'prod_1.example-org',
      path: '',
    });
  });

  it('refuses what the spec forbids', () => {
    for (const bad of [
      'https://example.org/x', // scheme
      'spiffe:///x', // empty trust domain
      'spiffe://Example.org/x', // uppercase trust domain
      'spiffe://example.org:443/x', // port
      'spiffe://user@example.org/x', // user info
      'spiffe://example.org/', // trailing slash: empty segment
      'spiffe://example.org//x', // empty segment
      'spiffe://example.org/./x', // dot segment
      'spiffe://example.org/a/../b', // dot-dot segment
      'spiffe://example.org/x?y=1', // query
      'spiffe://example.org/x#y', // fragment
      'spiffe://example.org/a%20b', // percent-encoding
      `spiffe://example.org/${'a'.repeat(2040)}`, // over 2048 bytes
    ]) {
      assert.ok('error' in parseSpiffeId(bad), bad);
    }
  });

  it("reads URI SANs from Node's subjectaltname, quoted values included", () => {
    assert.deepEqual(uriSans('DNS:a.example, URI:spiffe://example.org/x, IP Address:127.0.0.1'), ['spiffe://example.org/x']);
    assert.deepEqual(uriSans('URI:"spiffe://example.org/a,b"'), ['spiffe://example.org/a,b']);
    assert.deepEqual(uriSans(undefined), []);
  });

  it('an SVID has exactly one URI SAN; a certificate without a spiffe URI is not an SVID', () => {
    assert.deepEqual(svidId('URI:spiffe://example.org/x'), { id: 'spiffe://example.org/x', trustDomain: 'example.org', path: '/x' });
    assert.equal(svidId('DNS:host.example'), null);
    assert.equal(svidId('URI:https://example.org/x'), null);
    assert.match((svidId('URI:spiffe://example.org/x, URI:https://example.org/y') as { error: string }).error, /exactly one URI SAN/);
    assert.ok('error' in svidId('URI:"spiffe://example.org/a,b"')!, 'a comma is no SPIFFE path character');
  });
});
