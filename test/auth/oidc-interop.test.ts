import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { createLayoutImage } from '../helpers/images.js';
import type { TestServer } from '../helpers/server.js';
import { startTestServer } from '../helpers/server.js';
import { startTestProvider, TestBrowser, type TestProvider } from './oidc-provider.js';
import { ADMIN_PASSWORD, adminAuth, api } from './support.js';

/**
 * The CLI secret with real container clients: after a browser login against a real OpenID
 * provider, `podman login` with the user name and CLI secret, then skopeo (sharing podman's
 * auth file) pushes an image into the project the user's group is bound to; a revoked secret
 * no longer logs in.
 */
describe('OIDC CLI secret with podman and skopeo', () => {
  let provider: TestProvider;
  let server: TestServer;
  let sandbox: ClientSandbox;
  let host: string;

  before(async () => {
    requireTools(['podman', 'skopeo']);
    let berthUrl = 'http://127.0.0.1:1';
    provider = await startTestProvider({
      redirectUris: () => [`${berthUrl}/api/v1/oidc/sso/callback`],
      accounts: [{ username: 'alice', groups: ['devs'] }],
    });
    server = await startTestServer({
      auth: {
        mode: 'token',
        admin: { password: ADMIN_PASSWORD },
        oidc: {
          providers: [
            { name: 'sso', issuer: provider.issuer, clientid: provider.clientId, clientsecret: provider.clientSecret, insecure: true },
          ],
        },
      },
    });
    berthUrl = server.url;
    provider.reload();
    sandbox = ClientSandbox.create();
    host = registryHost(server.url);
    assert.equal((await api(server, 'POST', '/projects', adminAuth(), { name: 'team', public: false })).status, 201);
    assert.equal((await api(server, 'POST', '/projects', adminAuth(), { name: 'other', public: false })).status, 201);
    assert.equal(
      (
        await api(server, 'POST', '/identity/bindings', adminAuth(), {
          source: 'oidc:sso',
          kind: 'group',
          subject: 'devs',
          project: 'team',
          role: 'developer',
        })
      ).status,
      201,
    );
  });
  after(async () => {
    await server?.destroy();
    await provider?.close();
    sandbox?.destroy();
  });

  it('podman login with the CLI secret, skopeo pushes and reads back; revoked, the login fails', async () => {
    const login = await new TestBrowser().follow(`${server.url}/api/v1/oidc/sso/login`, { login: 'alice' });
    assert.equal(login.status, 200, login.body);
    const { token } = JSON.parse(login.body) as { token: string };
    const created = await api(server, 'POST', '/users/alice/cli-secret', `Bearer ${token}`, { expiresIn: '1d' });
    assert.equal(created.status, 201);
    const { secret } = (await created.json()) as { secret: string };

    await sandbox.podman(['login', '--tls-verify=false', '-u', 'alice', '-p', secret, host]);
    const layout = sandbox.path('layouts', 'app');
    await createLayoutImage(layout, 'v1', [64 * 1024, 128 * 1024]);
    await sandbox.skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${host}/team/app:v1`]);
    const inspected = JSON.parse((await sandbox.skopeo(['inspect', '--tls-verify=false', `docker://${host}/team/app:v1`])).stdout) as {
      Layers: string[];
    };
    assert.equal(inspected.Layers.length, 2);
    // A project the user's groups are not bound to: refused.
    const denied = await sandbox.skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${host}/other/app:v1`], {
      allowFailure: true,
    });
    assert.notEqual(denied.code, 0);

    assert.equal((await api(server, 'DELETE', '/users/alice/cli-secret', `Bearer ${token}`)).status, 204);
    const refused = await sandbox.podman(['login', '--tls-verify=false', '-u', 'alice', '-p', secret, host], { allowFailure: true });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /invalid username\/password|401|unauthorized/i);
  });
});
