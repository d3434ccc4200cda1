import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { selfSignedCertificate } from '../helpers/certificates.js';
import { createLayoutImage } from '../helpers/images.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { ADMIN_PASSWORD, adminAuth, api, basic, startAuthServer } from './support.js';

/** Connects with the given TLS version range; resolves with the served certificate's fingerprint and protocol. */
function handshake(port: number, options: tls.ConnectionOptions): Promise<{ fingerprint: string; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => {
      const result = { fingerprint: socket.getPeerCertificate().fingerprint256, protocol: socket.getProtocol() };
      socket.end();
      resolve(result);
    });
    socket.once('error', reject);
  });
}

describe('HTTPS: http.tls with token auth', () => {
  let dir: string;
  let live: { cert: string; key: string };
  let berth: BerthProcess;
  let sandbox: ClientSandbox;

  before(async () => {
    requireTools(['skopeo', 'openssl']);
    dir = tempDir();
    const first = selfSignedCertificate(dir, 'first');
    // The server reads these paths; the test swaps their contents to exercise SIGHUP.
    live = { cert: path.join(dir, 'live.crt'), key: path.join(dir, 'live.key') };
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    berth = await startBerthProcess({
      BERTH_DATA_DIR: path.join(dir, 'data'),
      BERTH_HTTP_TLS_CERTIFICATE: live.cert,
      BERTH_HTTP_TLS_KEY: live.key,
      BERTH_AUTH_MODE: 'token',
      BERTH_ADMIN_PASSWORD: ADMIN_PASSWORD,
    });
    sandbox = ClientSandbox.create();
  });
  after(async () => {
    await berth?.stop();
    sandbox?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS and points the token realm at https', async () => {
    assert.match(berth.url, /^https:\/\//);
    const challenge = await new Promise<string | undefined>((resolve, reject) => {
      https
        .get(`${berth.url}/v2/`, { ca: readFileSync(live.cert) }, (res) => {
          res.resume();
          resolve(res.headers['www-authenticate']);
        })
        .once('error', reject);
    });
    assert.equal(challenge, `Bearer realm="${berth.url}/token",service="berth"`);
  });

  it('skopeo copy --dest-cert-dir (trusting the test CA) pushes with --dest-creds through the token flow', async () => {
    const certDir = sandbox.path('certs', 'x');
    mkdirSync(path.dirname(certDir), { recursive: true });
    mkdirSync(certDir);
    copyFileSync(live.cert, path.join(certDir, 'ca.crt'));
    const layout = sandbox.path('layout');
    await createLayoutImage(layout, 'src', [2048]);
    const host = registryHost(berth.url);
    const push = await sandbox.skopeo(
      [
        'copy',
        '--dest-cert-dir',
        certDir,
        '--dest-creds',
        `admin:${ADMIN_PASSWORD}`,
        `oci:${layout}:src`,
        `docker://${host}/secure/app:v1`,
      ],
      { allowFailure: true },
    );
    assert.equal(push.code, 0, push.stderr);
    const inspect = await sandbox.skopeo(
      ['inspect', '--cert-dir', certDir, '--creds', `admin:${ADMIN_PASSWORD}`, `docker://${host}/secure/app:v1`],
      { allowFailure: true },
    );
    assert.equal(inspect.code, 0, inspect.stderr);
    const untrusted = await sandbox.skopeo(['inspect', '--creds', `admin:${ADMIN_PASSWORD}`, `docker://${host}/secure/app:v1`], {
      allowFailure: true,
    });
    assert.notEqual(untrusted.code, 0, 'without the CA the client must refuse the certificate');
  });

  it('speaks TLS 1.2 and 1.3 but refuses TLS 1.1', async () => {
    assert.equal((await handshake(berth.port, { maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2');
    assert.equal((await handshake(berth.port, {})).protocol, 'TLSv1.3');
    await assert.rejects(handshake(berth.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }));
  });

  it('SIGHUP reloads a renewed certificate without a restart', async () => {
    const before = await handshake(berth.port, {});
    assert.equal(before.fingerprint, new X509Certificate(readFileSync(live.cert)).fingerprint256);
    const renewed = selfSignedCertificate(dir, 'renewed');
    copyFileSync(renewed.cert, live.cert);
    copyFileSync(renewed.key, live.key);
    berth.child.kill('SIGHUP');
    const deadline = Date.now() + 10_000;
    while (!/reloaded TLS certificate/.test(berth.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const after = await handshake(berth.port, {});
    assert.equal(after.fingerprint, new X509Certificate(readFileSync(renewed.cert)).fingerprint256);
    assert.notEqual(after.fingerprint, before.fingerprint);
    assert.equal(berth.child.exitCode, null, 'still running');
  });
});

describe('behind a TLS-terminating proxy (http.trustproxy)', () => {
  const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'registry.example.com', 'x-forwarded-for': '203.0.113.7' };

  it('trustproxy: false (default) ignores X-Forwarded-* headers', async () => {
    const server = await startAuthServer('token');
    try {
      const res = await fetch(`${server.url}/v2/`, { headers: forwarded });
      assert.equal(res.headers.get('www-authenticate'), `Bearer realm="${server.url}/token",service="berth"`);
    } finally {
      await server.destroy();
    }
  });

  it('trustproxy: true builds the realm from X-Forwarded-Proto/Host and audits the X-Forwarded-For address', async () => {
    const server = await startAuthServer('token', {}, { http: { trustproxy: true } });
    try {
      const res = await fetch(`${server.url}/v2/`, { headers: forwarded });
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="https://registry.example.com/token",service="berth"');
      const created = await fetch(`${server.url}/api/v1/users`, {
        method: 'POST',
        headers: { ...forwarded, authorization: adminAuth(), 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'proxied', password: 'proxied-password' }),
      });
      assert.equal(created.status, 201);
      const audit = (await (await api(server, 'GET', '/audit', basic('admin', ADMIN_PASSWORD))).json()) as { action: string; ip: string }[];
      assert.equal(audit.find((e) => e.action === 'user.create' && e.ip !== null)?.ip, '203.0.113.7');
    } finally {
      await server.destroy();
    }
  });
});
