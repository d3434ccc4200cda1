import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { OciClient, blobRequests, nodeBody } from '../../src/client/index.js';
import { ADMIN_PASSWORD, adminAuth, api } from '../auth/support.js';
import { selfSignedCertificate } from '../helpers/certificates.js';
import { requireTools } from '../helpers/clients.js';
import { OCI_MANIFEST, makeImage } from '../helpers/registry-client.js';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { readAll } from './support.js';

/**
 * Endpoints over HTTPS with a self-signed certificate (a Berth upstream with http.tls and token
 * auth): refused by default with the TLS reason, accepted with `insecure` or with the
 * certificate as `caBundle`; a cache project pulls through the CA-bundle endpoint (the
 * endpoint's own fetch: streamed bodies, token requests).
 */
describe('registry endpoints over TLS: insecure and caBundle', () => {
  let upstream: TestServer;
  let server: TestServer;
  let dir: string;
  let pem: string;
  const image = makeImage({ layers: 1, layerSize: 2 * 1024 * 1024 });

  before(async () => {
    requireTools(['openssl']);
    dir = tempDir('berth-registries-tls-');
    const { cert, key } = selfSignedCertificate(dir, 'upstream');
    pem = readFileSync(cert, 'utf8');
    upstream = await startTestServer({
      http: { tls: { certificate: cert, key } },
      auth: { mode: 'token', admin: { password: 'upstream-admin-1' } },
    });
    server = await startTestServer({ auth: { mode: 'basic', admin: { password: ADMIN_PASSWORD } } });
    // Push with a client that trusts the certificate (the same fetch the endpoints use).
    const { openRegistryClient } = await import('../../src/registries/index.js');
    const pusher = openRegistryClient({
      url: upstream.url,
      username: 'admin',
      credential: 'upstream-admin-1',
      insecure: false,
      caBundle: pem,
    });
    for (const blob of [image.config, ...image.layers]) await pusher.pushBlob('team/app', blob.data);
    await pusher.putManifest('team/app', 'v1', image.manifest.data, OCI_MANIFEST);
  });
  after(async () => {
    await server?.destroy();
    await upstream?.destroy();
  });

  const ping = async (name: string) =>
    (await (await api(server, 'POST', `/registries/${name}/ping`, adminAuth())).json()) as {
      ok: boolean;
      reason: string | null;
      auth: string;
    };

  it('a self-signed upstream is refused with the TLS reason, accepted with insecure or its certificate as caBundle', async () => {
    assert.match(upstream.url, /^https:/);
    const base = { url: upstream.url, kind: 'berth', username: 'admin', credential: 'upstream-admin-1' };
    assert.equal((await api(server, 'POST', '/registries', adminAuth(), { ...base, name: 'strict' })).status, 201);
    assert.equal((await api(server, 'POST', '/registries', adminAuth(), { ...base, name: 'insecure', insecure: true })).status, 201);
    assert.equal((await api(server, 'POST', '/registries', adminAuth(), { ...base, name: 'pinned', caBundle: pem })).status, 201);
    const strict = await ping('strict');
    assert.equal(strict.ok, false);
    assert.match(
      strict.reason!,
      /DEPTH_ZERO_SELF_SIGNED_CERT\): the TLS certificate is not trusted \(give the endpoint its CA as caBundle, or set insecure\)/,
    );
    const insecure = await ping('insecure');
    assert.equal(insecure.ok, true, insecure.reason ?? '');
    assert.equal(insecure.auth, 'bearer');
    const pinned = await ping('pinned');
    assert.equal(pinned.ok, true, pinned.reason ?? '');
  });

  it("the endpoint's fetch over TLS hands out the blob GET's body read from the TLS socket past the HTTP parser (token auth), with the bytes intact", async () => {
    const { openRegistryClient } = await import('../../src/registries/index.js');
    const client = openRegistryClient(
      { url: upstream.url, username: 'admin', credential: 'upstream-admin-1', insecure: false, caBundle: pem },
      { retry: { attempts: 1 } },
    );
    const layer = image.layers[0]!;
    const res = await client.send(blobRequests.get('team/app', layer.digest));
    assert.equal(res.status, 200);
    const body = nodeBody(res);
    assert.ok(body && !(body instanceof IncomingMessage), "the TLS socket's chunks, not the parser's copies (IncomingMessage)");
    assert.ok((await readAll(body)).equals(layer.data));
    // Not taken: a manifest GET's web body reads the same response stream.
    const manifest = await client.getManifest('team/app', 'v1');
    assert.equal(manifest?.digest, image.manifest.digest);
  });

  it('a cache project pulls through the caBundle endpoint', async () => {
    assert.equal((await api(server, 'PUT', '/projects/sec/proxy-cache', adminAuth(), { endpoint: 'pinned' })).status, 200);
    const client = new OciClient({
      baseUrl: server.url,
      credentials: { username: 'admin', password: ADMIN_PASSWORD },
      retry: { attempts: 1 },
    });
    const manifest = await client.getManifest('sec/team/app', 'v1');
    assert.equal(manifest?.digest, image.manifest.digest);
    assert.ok((await readAll(client.getBlob('sec/team/app', image.layers[0]!.digest))).equals(image.layers[0]!.data));
    assert.equal((await api(server, 'PUT', '/projects/strict/proxy-cache', adminAuth(), { endpoint: 'strict' })).status, 200);
    const refused = await fetch(`${server.url}/v2/strict/team/app/manifests/v1`, { headers: { authorization: adminAuth() } });
    assert.equal(refused.status, 502);
    assert.match(await refused.text(), /upstream strict/);
  });
});
