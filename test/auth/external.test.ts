import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair, importPKCS8, type CryptoKey, type KeyObject } from 'jose';
import { selfSignedCertificate } from '../helpers/certificates.js';
import { requireTools } from '../helpers/clients.js';
import { RegistryClient, makeImage } from '../helpers/registry-client.js';
import { startTestServer, tempDir } from '../helpers/server.js';
import { useServer } from '../helpers/use-server.js';
import { bearer } from './support.js';

const ISSUER = 'https://auth.example.test';
const SERVICE = 'registry.example.test';
const REALM = 'https://auth.example.test/token';

type Key = CryptoKey | KeyObject;

async function sign(
  key: Key,
  alg: string,
  access: unknown[],
  overrides: { iss?: string; aud?: string; kid?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ access })
    .setProtectedHeader({ alg, ...(overrides.kid ? { kid: overrides.kid } : {}) })
    .setIssuer(overrides.iss ?? ISSUER)
    .setSubject('ext-user')
    .setAudience(overrides.aud ?? SERVICE)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + 300)
    .sign(key);
}

const pushPull = (name: string) => [{ type: 'repository', name, actions: ['pull', 'push'] }];

describe('external token issuer: JWKS served over HTTP on loopback', () => {
  let jwksServer: Server;
  let jwksUrl: string;
  let privateKey: Key;
  before(async () => {
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey;
    const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'ext-1', alg: 'RS256', use: 'sig' }] };
    jwksServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks)));
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
  });
  const reg = useServer(() => ({ auth: { mode: 'token', token: { issuer: ISSUER, service: SERVICE, realm: REALM, jwks: jwksUrl } } }));
  after(async () => {
    await new Promise((resolve) => jwksServer.close(resolve));
  });

  it('challenges with the external realm and does not serve /token itself', async () => {
    const res = await fetch(`${reg.url}/v2/ext/app/manifests/v1`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), `Bearer realm="${REALM}",service="${SERVICE}",scope="repository:ext/app:pull"`);
    assert.equal((await fetch(`${reg.url}/token?service=${SERVICE}`)).status, 404);
  });

  it("accepts the issuer's tokens for exactly the access they carry", async () => {
    const jwt = await sign(privateKey, 'RS256', pushPull('ext/app'), { kid: 'ext-1' });
    const client = new RegistryClient(reg.url, { authorization: bearer(jwt) });
    await client.pushImage('ext/app', 'v1', makeImage());
    assert.equal((await client.fetch('/v2/ext/app/tags/list')).status, 200);
    const other = await client.fetch('/v2/ext/other/tags/list');
    assert.equal(other.status, 401);
    assert.match(other.headers.get('www-authenticate')!, /error="insufficient_scope"/);
  });

  it('rejects tokens with the wrong issuer, the wrong audience or an unknown key', async () => {
    const { privateKey: stranger } = await generateKeyPair('RS256');
    for (const jwt of [
      await sign(privateKey, 'RS256', pushPull('ext/app'), { kid: 'ext-1', iss: 'https://evil.test' }),
      await sign(privateKey, 'RS256', pushPull('ext/app'), { kid: 'ext-1', aud: 'other-registry' }),
      await sign(stranger, 'RS256', pushPull('ext/app'), { kid: 'ext-1' }),
    ]) {
      const res = await fetch(`${reg.url}/v2/ext/app/tags/list`, { headers: { authorization: bearer(jwt) } });
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate')!, /error="invalid_token"/);
    }
  });

  it('the catalog lists only repositories the token grants pull on', async () => {
    const jwt = await sign(privateKey, 'RS256', [...pushPull('ext/app'), { type: 'registry', name: 'catalog', actions: ['*'] }], {
      kid: 'ext-1',
    });
    const res = await fetch(`${reg.url}/v2/_catalog`, { headers: { authorization: bearer(jwt) } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { repositories: ['ext/app'] });
  });
});

describe('external token issuer: PEM certificate bundle', () => {
  let dir: string;
  let key: Key;
  before(async () => {
    requireTools(['openssl']);
    dir = tempDir();
    const { cert: certFile, key: keyFile } = selfSignedCertificate(dir, 'issuer', { cn: 'token-issuer', ip: null });
    key = await importPKCS8(readFileSync(keyFile, 'utf8'), 'ES256');
    writeFileSync(path.join(dir, 'bundle.pem'), readFileSync(certFile));
  });
  const reg = useServer(() => ({
    auth: { mode: 'token', token: { issuer: ISSUER, service: SERVICE, realm: REALM, certificates: path.join(dir, 'bundle.pem') } },
  }));
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts tokens signed by the certificate key and rejects others', async () => {
    const good = await sign(key, 'ES256', pushPull('certs/app'));
    assert.equal(
      (await new RegistryClient(reg.url, { authorization: bearer(good) }).pushBlob('certs/app', makeImage().config)).status,
      201,
    );
    const { privateKey: stranger } = await generateKeyPair('ES256');
    const bad = await sign(stranger, 'ES256', pushPull('certs/app'));
    assert.equal((await new RegistryClient(reg.url, { authorization: bearer(bad) }).pushBlob('certs/app', makeImage().config)).status, 401);
  });
});

describe('external token issuer: JWKS file', () => {
  it('trusts the keys listed in a local JWKS file', async () => {
    const dir = tempDir();
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const file = path.join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'file-1', alg: 'ES256' }] }));
    const server = await startTestServer({
      auth: { mode: 'token', token: { issuer: ISSUER, service: SERVICE, realm: REALM, jwks: file } },
    });
    try {
      const good = await sign(privateKey, 'ES256', pushPull('file/app'), { kid: 'file-1' });
      assert.equal(
        (await new RegistryClient(server.url, { authorization: bearer(good) }).pushBlob('file/app', makeImage().config)).status,
        201,
      );
      const { privateKey: stranger } = await generateKeyPair('ES256');
      const bad = await sign(stranger, 'ES256', pushPull('file/app'), { kid: 'file-1' });
      assert.equal((await fetch(`${server.url}/v2/file/app/tags/list`, { headers: { authorization: bearer(bad) } })).status, 401);
    } finally {
      await server.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
