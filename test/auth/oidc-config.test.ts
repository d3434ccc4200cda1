import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';

/** auth.oidc in berth.yaml: what is refused, and what `berth config check` prints. */
describe('auth.oidc configuration', () => {
  const provider = { name: 'keycloak', issuer: 'https://sso.example.org/realms/eng', clientid: 'berth', clientsecret: 'very-secret-value' };
  const parse = (auth: Record<string, unknown>) => configSchema.safeParse({ auth });
  const messages = (auth: Record<string, unknown>) => {
    const result = parse(auth);
    assert.equal(result.success, false);
    return result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
  };

  it('accepts a provider with defaults for scopes, claims and lifetimes', () => {
    const result = parse({ mode: 'token', oidc: { providers: [provider] } });
    assert.equal(result.success, true, JSON.stringify(result.error?.issues));
    const parsed = result.data!.auth.oidc;
    assert.deepEqual(parsed.providers[0]!.scopes, ['openid', 'profile', 'email', 'groups']);
    assert.deepEqual(parsed.providers[0]!.claims, { username: 'preferred_username', email: 'email', groups: 'groups' });
    assert.equal(parsed.clisecretexpiration, '90d');
  });

  it('refuses an http issuer unless insecure, a provider without client or audiences, duplicate names, and modes without Berth tokens', () => {
    assert.match(
      messages({ mode: 'token', oidc: { providers: [{ ...provider, issuer: 'http://sso.example.org' }] } }),
      /issuer: must be https/,
    );
    assert.equal(
      parse({ mode: 'token', oidc: { providers: [{ ...provider, issuer: 'http://sso.example.org', insecure: true }] } }).success,
      true,
    );
    assert.match(
      messages({ mode: 'token', oidc: { providers: [{ name: 'x', issuer: 'https://sso.example.org' }] } }),
      /needs a clientid \(browser login\) or audiences/,
    );
    assert.match(messages({ mode: 'token', oidc: { providers: [provider, provider] } }), /provider name keycloak is given twice/);
    assert.match(messages({ mode: 'basic', oidc: { providers: [provider] } }), /oidc: needs auth.mode token/);
    assert.match(
      messages({ mode: 'token', oidc: { providers: [{ ...provider, clientsecretfile: '/etc/berth/s' }] } }),
      /clientsecret or clientsecretfile, not both/,
    );
    assert.match(messages({ mode: 'token', oidc: { providers: [{ ...provider, name: 'Bad Name' }] } }), /providers\.0\.name/);
  });

  it('berth config check masks the client secret', () => {
    const shown = JSON.stringify(redactConfig({ auth: { oidc: { providers: [provider] } } }));
    assert.ok(!shown.includes('very-secret-value'), shown);
    assert.match(shown, /"clientsecret":"\*{8}"/);
    assert.match(shown, /"issuer":"https:\/\/sso.example.org\/realms\/eng"/);
  });
});
