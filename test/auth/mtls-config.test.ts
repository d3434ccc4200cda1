import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../src/config/schema.js';
import { applyEnvOverrides } from '../../src/config/load.js';

const tls = (extra: Record<string, unknown>) => ({ http: { tls: { certificate: '/c.crt', key: '/c.key', ...extra } } });

describe('http.tls client certificate settings', () => {
  it('clientcas and clientcrl take one path or a list; clientcn defaults to ignore', () => {
    const one = configSchema.parse(tls({ clientcas: '/ca.pem', clientcrl: '/a.crl' })).http.tls!;
    assert.deepEqual(one.clientcas, ['/ca.pem']);
    assert.deepEqual(one.clientcrl, ['/a.crl']);
    assert.equal(one.clientcn, 'ignore');
    const many = configSchema.parse(
      tls({ clientcas: ['/a.pem', '/b.pem'], spiffe: { trustdomains: ['prod.example.org'] }, clientcn: 'user' }),
    ).http.tls!;
    assert.deepEqual(many.clientcas, ['/a.pem', '/b.pem']);
    assert.deepEqual(many.spiffe, { trustdomains: ['prod.example.org'] });
  });

  it('an environment variable sets one CA file', () => {
    const raw = applyEnvOverrides(tls({}), { BERTH_HTTP_TLS_CLIENTCAS: '/env-ca.pem' });
    assert.deepEqual(configSchema.parse(raw).http.tls!.clientcas, ['/env-ca.pem']);
  });

  it('refuses clientcrl, spiffe or clientcn without clientcas, and malformed trust domains', () => {
    for (const extra of [{ clientcrl: '/a.crl' }, { spiffe: { trustdomains: ['example.org'] } }, { clientcn: 'user' }]) {
      const result = configSchema.safeParse(tls(extra));
      assert.equal(result.success, false, JSON.stringify(extra));
      assert.match(JSON.stringify(result.error!.issues), /clientcas/);
    }
    for (const trustdomains of [[], ['Example.org'], ['spiffe://example.org'], ['example.org:443']]) {
      assert.equal(
        configSchema.safeParse(tls({ clientcas: ['/ca.pem'], spiffe: { trustdomains } })).success,
        false,
        JSON.stringify(trustdomains),
      );
    }
  });
});
