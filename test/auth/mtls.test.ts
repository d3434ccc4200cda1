import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IdentityBindings } from '../../src/auth/bindings.js';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { createLayoutImage } from '../helpers/images.js';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { ADMIN_PASSWORD, adminAuth, basic, claims, type AuditEntry } from './support.js';
import { TestPki, opensslDate, serverCertificate, type LeafFiles } from './mtls-pki.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request; `client` presents a certificate chain and key, `agent` keeps a connection alive across calls. */
function call(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    body?: Buffer | string;
    client?: LeafFiles;
    agent?: https.Agent;
    ca: Buffer;
  },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        ca: options.ca,
        agent: options.agent ?? false,
        ...(options.client ? { cert: readFileSync(options.client.chain), key: readFileSync(options.client.key) } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

/** The admin API over HTTPS (the test's server certificate is not in Node's trust store, so fetch is not used). */
async function adminApi(server: TestServer, ca: Buffer, method: string, pathname: string, body?: unknown): Promise<Answer> {
  const answer = await call(`${server.url}/api/v1${pathname}`, {
    method,
    ca,
    headers: { authorization: adminAuth(), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (answer.status >= 300) throw new Error(`${method} ${pathname}: ${answer.status} ${answer.body}`);
  return answer;
}

const digestOf = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

const TRUST_DOMAIN = 'example.org';
const BUILDER = `spiffe://${TRUST_DOMAIN}/ns/ci/sa/builder`;
const READER = `spiffe://${TRUST_DOMAIN}/ns/ci/sa/reader`;
const STRANGER = `spiffe://${TRUST_DOMAIN}/ns/other/sa/x`;

describe('mTLS and SPIFFE workload identity (http.tls.clientcas, token auth)', () => {
  let dir: string;
  let pki: TestPki;
  let server: TestServer;
  let ca: Buffer;
  let crlFile: string;
  let svid: { builder: LeafFiles; reader: LeafFiles; stranger: LeafFiles };

  before(async () => {
    requireTools(['openssl']);
    dir = tempDir('berth-mtls-');
    pki = TestPki.create(dir);
    const serverCert = serverCertificate(dir);
    ca = readFileSync(serverCert.cert);
    svid = {
      builder: pki.issue('builder', { uris: [BUILDER] }),
      reader: pki.issue('reader', { uris: [READER] }),
      stranger: pki.issue('stranger', { uris: [STRANGER] }),
    };
    crlFile = pki.crl(path.join(dir, 'clients.crl'));
    server = await startTestServer({
      auth: { mode: 'token', admin: { password: ADMIN_PASSWORD } },
      http: {
        tls: {
          certificate: serverCert.cert,
          key: serverCert.key,
          clientcas: [pki.rootCert],
          clientcrl: crlFile,
          spiffe: { trustdomains: [TRUST_DOMAIN] },
        },
      },
    });
    await adminApi(server, ca, 'POST', '/projects', { name: 'apps', public: false });
    const bindings = new IdentityBindings(server.stores.auth);
    const admin = { name: 'admin', ip: null };
    await bindings.add(admin, { source: 'spiffe', kind: 'id', subject: BUILDER, project: 'apps', role: 'developer' });
    // Every workload of the namespace may pull: a prefix on a path boundary.
    await bindings.add(admin, {
      source: 'spiffe',
      kind: 'prefix',
      subject: `spiffe://${TRUST_DOMAIN}/ns/ci`,
      project: 'apps',
      role: 'guest',
    });
  });
  after(async () => {
    await server?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const v2 = (
    pathname: string,
    client?: LeafFiles,
    extra: { method?: string; headers?: Record<string, string>; body?: Buffer | string; agent?: https.Agent } = {},
  ) => call(`${server.url}${pathname}`, { ca, client, ...extra });

  /** Pushes a one-blob image as `client` (monolithic blob upload, then the manifest). */
  async function push(repository: string, tag: string, client: LeafFiles, headers: Record<string, string> = {}): Promise<Answer> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag }));
    const blob = await v2(`/v2/${repository}/blobs/uploads/?digest=${digestOf(config)}`, client, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(config.length) },
      body: config,
    });
    if (blob.status !== 201) return blob;
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: [],
    });
    return v2(`/v2/${repository}/manifests/${tag}`, client, {
      method: 'PUT',
      headers: { ...headers, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
  }

  it('a workload with a bound SVID pushes and pulls on /v2 without a password or token', async () => {
    assert.equal((await v2('/v2/', svid.builder)).status, 200);
    const pushed = await push('apps/web', 'v1', svid.builder);
    assert.equal(pushed.status, 201, pushed.body);
    const pulled = await v2('/v2/apps/web/manifests/v1', svid.builder, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(pulled.status, 200);
    const tags = await v2('/v2/apps/web/tags/list', svid.builder);
    assert.deepEqual(JSON.parse(tags.body).tags, ['v1']);
  });

  it('a prefix binding gives its role to IDs under it (path boundary): pull yes, push 403', async () => {
    assert.equal(
      (
        await v2('/v2/apps/web/manifests/v1', svid.reader, {
          method: 'HEAD',
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
        })
      ).status,
      200,
    );
    const refused = await push('apps/web', 'v2', svid.reader);
    assert.equal(refused.status, 403);
    assert.match(refused.body, /DENIED/);
    assert.match(refused.body, new RegExp(READER.replace(/[/.]/g, '\\$&')));
  });

  it('a verified SVID with no binding is known but may do nothing: 403 on a private project', async () => {
    assert.equal((await v2('/v2/', svid.stranger)).status, 200);
    const pull = await v2('/v2/apps/web/manifests/v1', svid.stranger);
    assert.equal(pull.status, 403);
    assert.match(pull.body, /may not pull/);
    assert.equal((await push('stranger/app', 'v1', svid.stranger)).status, 403, 'a workload never creates projects');
  });

  it('a binding made through the admin API applies at the next request, and its removal too', async () => {
    const created = await adminApi(server, ca, 'POST', '/identity/bindings', {
      source: 'spiffe',
      kind: 'id',
      subject: STRANGER,
      project: 'apps',
      role: 'guest',
    });
    const { id } = JSON.parse(created.body) as { id: number };
    const accept = { accept: 'application/vnd.oci.image.manifest.v1+json' };
    assert.equal((await v2('/v2/apps/web/manifests/v1', svid.stranger, { headers: accept })).status, 200);
    await adminApi(server, ca, 'DELETE', `/identity/bindings/${id}`);
    assert.equal((await v2('/v2/apps/web/manifests/v1', svid.stranger, { headers: accept })).status, 403);
  });

  it('a wrong trust domain is refused with 401 and says so', async () => {
    const evil = pki.issue('evil', { uris: ['spiffe://evil.example/ns/ci/sa/builder'] });
    const answer = await v2('/v2/apps/web/manifests/v1', evil);
    assert.equal(answer.status, 401);
    assert.match(answer.body, /client certificate refused: trust domain \\?"evil.example\\?"/);
  });

  it('an expired SVID is refused with 401, even with valid Basic credentials beside it', async () => {
    const expired = pki.issue('expired', { uris: [BUILDER], start: opensslDate(-3 * 86_400_000), end: opensslDate(-86_400_000) });
    const answer = await v2('/v2/', expired);
    assert.equal(answer.status, 401);
    assert.match(answer.body, /expired/);
    const token = await v2('/token?service=berth&scope=repository:apps/web:pull', expired, {
      headers: { authorization: basic('admin', ADMIN_PASSWORD) },
    });
    assert.equal(token.status, 401, 'a presented certificate that fails is never ignored');
    const form = await v2('/token', expired, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: 'admin', password: ADMIN_PASSWORD, service: 'berth' }).toString(),
    });
    assert.equal(form.status, 401);
    assert.match(form.body, /client certificate refused/);
  });

  it('a certificate of another CA is refused with 401 (not treated as anonymous)', async () => {
    const other = TestPki.create(dir, 'other');
    const foreign = other.issue('foreign', { uris: [BUILDER] });
    const answer = await v2('/v2/apps/web/manifests/v1', foreign);
    assert.equal(answer.status, 401);
    assert.match(answer.body, /client certificate refused/);
    assert.equal(answer.headers['www-authenticate'], undefined, 'no challenge: credentials would not help');
  });

  it('an SVID with two URI SANs or a CA flag is not an X.509-SVID', async () => {
    const two = pki.issue('two-uris', { uris: [BUILDER, `spiffe://${TRUST_DOMAIN}/other`] });
    const answer = await v2('/v2/', two);
    assert.equal(answer.status, 401);
    assert.match(answer.body, /exactly one URI SAN/);
  });

  it('password and token clients keep working on the same listener; no certificate means the usual challenge', async () => {
    const anonymous = await v2('/v2/apps/web/manifests/v1');
    assert.equal(anonymous.status, 401);
    assert.match(String(anonymous.headers['www-authenticate']), /^Bearer realm=/);
    const issued = await v2('/token?service=berth&scope=repository:apps/web:pull', undefined, {
      headers: { authorization: basic('admin', ADMIN_PASSWORD) },
    });
    assert.equal(issued.status, 200);
    const { token } = JSON.parse(issued.body) as { token: string };
    const pulled = await v2('/v2/apps/web/manifests/v1', undefined, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(pulled.status, 200);
  });

  it('/token issues a token to the certificate identity (no password, no refresh token); it works on /v2 without the certificate', async () => {
    const issued = await v2(
      '/token?service=berth&scope=repository:apps/web:pull,push,delete&offline_token=true&client_id=ci',
      svid.builder,
    );
    assert.equal(issued.status, 200, issued.body);
    const answer = JSON.parse(issued.body) as { token: string; refresh_token?: string };
    assert.equal(answer.refresh_token, undefined);
    const jwt = claims(answer.token);
    assert.equal(jwt.sub, BUILDER);
    assert.deepEqual(jwt.access, [{ type: 'repository', name: 'apps/web', actions: ['pull', 'push'] }], 'a developer may not delete');
    const pushed = await push('apps/web', 'via-token', svid.builder, { authorization: `Bearer ${answer.token}` });
    assert.equal(pushed.status, 201, pushed.body);
    const plain = await v2('/v2/apps/web/manifests/via-token', undefined, {
      headers: { authorization: `Bearer ${answer.token}`, accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(plain.status, 200);
  });

  it('the audit log records certificate logins with their source', async () => {
    const entries = (JSON.parse((await adminApi(server, ca, 'GET', '/audit?limit=1000')).body) as AuditEntry[]).reverse();
    const login = entries.find((e) => e.action === 'login' && e.actor === BUILDER);
    assert.ok(login, 'a login of the SVID is audited');
    assert.equal((login.detail as { source?: string }).source, 'spiffe');
    const failed = entries.find(
      (e) => e.action === 'login.failed' && (e.detail as { source?: string; reason?: string }).reason?.includes('evil.example'),
    );
    assert.ok(failed, 'a refused certificate is audited');
    assert.equal((failed.detail as { source?: string }).source, 'mtls');
  });

  it('a revoked SVID is refused once the CRL file changes, without a restart; its open connection is closed', async () => {
    const victim = pki.issue('victim', { uris: [BUILDER] });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.equal((await v2('/v2/', victim, { agent })).status, 200);
      pki.revoke(victim);
      const fresh = pki.crl(path.join(dir, 'next.crl'));
      copyFileSync(fresh, crlFile);
      const deadline = Date.now() + 10_000;
      let answer: Answer;
      do {
        await new Promise((r) => setTimeout(r, 200));
        answer = await v2('/v2/', victim);
      } while (answer.status === 200 && Date.now() < deadline);
      assert.equal(answer.status, 401);
      assert.match(answer.body, /revoked/);
      // The keep-alive connection verified before the change is gone: the agent reconnects and is refused.
      const again = await v2('/v2/', victim, { agent });
      assert.equal(again.status, 401);
      // Others are untouched.
      assert.equal((await v2('/v2/', svid.builder)).status, 200);
    } finally {
      agent.destroy();
    }
  });
});

describe('mTLS: clientcn user maps a plain client certificate to a Berth user', () => {
  let dir: string;
  let server: TestServer;
  let ca: Buffer;
  let pki: TestPki;

  before(async () => {
    requireTools(['openssl']);
    dir = tempDir('berth-mtls-cn-');
    pki = TestPki.create(dir);
    const serverCert = serverCertificate(dir);
    ca = readFileSync(serverCert.cert);
    server = await startTestServer({
      auth: { mode: 'basic', admin: { password: ADMIN_PASSWORD } },
      http: { tls: { certificate: serverCert.cert, key: serverCert.key, clientcas: [pki.rootCert], clientcn: 'user' } },
    });
    await adminApi(server, ca, 'POST', '/users', { username: 'alice', password: 'alice-password-1', admin: false });
  });
  after(async () => {
    await server?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the subject CN names an existing user; an unknown CN is refused; an SVID without trust domains is refused', async () => {
    const alice = pki.issue('alice', { cn: 'alice' });
    assert.equal((await call(`${server.url}/v2/`, { ca })).status, 401, 'basic auth: no certificate, no credentials');
    assert.equal((await call(`${server.url}/v2/`, { ca, client: alice })).status, 200, 'alice is signed in by her certificate');
    const audit = JSON.parse((await adminApi(server, ca, 'GET', '/audit?limit=1000')).body) as AuditEntry[];
    assert.equal(audit.find((e) => e.action === 'login' && e.actor === 'alice')?.detail?.source, 'mtls');
    const nobody = pki.issue('nobody', { cn: 'nobody' });
    const refused = await call(`${server.url}/v2/`, { ca, client: nobody });
    assert.equal(refused.status, 401);
    assert.match(refused.body, /names no Berth user/);
    const workload = pki.issue('workload', { uris: [BUILDER] });
    const spiffe = await call(`${server.url}/v2/`, { ca, client: workload });
    assert.equal(spiffe.status, 401);
    assert.match(spiffe.body, /trustdomains is not set/);
  });
});

describe('mTLS: a TLS reload (SIGHUP) re-reads the client CAs with the server certificate', () => {
  it('after the CA file is replaced, certificates of the new CA authenticate and those of the old one are refused', async () => {
    requireTools(['openssl']);
    const dir = tempDir('berth-mtls-reload-');
    const server = { current: undefined as TestServer | undefined };
    try {
      const first = TestPki.create(dir, 'first');
      const second = TestPki.create(dir, 'second');
      const serverCert = serverCertificate(dir);
      const ca = readFileSync(serverCert.cert);
      const caFile = path.join(dir, 'clients-ca.crt');
      copyFileSync(first.rootCert, caFile);
      server.current = await startTestServer({
        auth: { mode: 'basic', admin: { password: ADMIN_PASSWORD } },
        http: { tls: { certificate: serverCert.cert, key: serverCert.key, clientcas: caFile, spiffe: { trustdomains: [TRUST_DOMAIN] } } },
      });
      const url = `${server.current.url}/v2/`;
      const fromFirst = first.issue('a', { uris: [BUILDER] });
      const fromSecond = second.issue('b', { uris: [BUILDER] });
      assert.equal((await call(url, { ca, client: fromFirst })).status, 200);
      assert.equal((await call(url, { ca, client: fromSecond })).status, 401);
      copyFileSync(second.rootCert, caFile);
      server.current.reloadTls();
      assert.equal((await call(url, { ca, client: fromSecond })).status, 200);
      const old = await call(url, { ca, client: fromFirst });
      assert.equal(old.status, 401);
      assert.match(old.body, /does not chain|not in http.tls.clientcas/);
    } finally {
      await server.current?.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('mTLS with skopeo: --dest-cert-dir carries the SVID', () => {
  let dir: string;
  let server: TestServer;
  let sandbox: ClientSandbox;
  let certDir: string;

  before(async () => {
    requireTools(['openssl', 'skopeo']);
    dir = tempDir('berth-mtls-skopeo-');
    const pki = TestPki.create(dir);
    const serverCert = serverCertificate(dir);
    server = await startTestServer({
      auth: { mode: 'token', admin: { password: ADMIN_PASSWORD } },
      http: {
        tls: { certificate: serverCert.cert, key: serverCert.key, clientcas: [pki.rootCert], spiffe: { trustdomains: [TRUST_DOMAIN] } },
      },
    });
    await adminApi(server, readFileSync(serverCert.cert), 'POST', '/projects', { name: 'apps', public: false });
    await new IdentityBindings(server.stores.auth).add(
      { name: 'admin', ip: null },
      { source: 'spiffe', kind: 'prefix', subject: `spiffe://${TRUST_DOMAIN}/ns/ci`, project: 'apps', role: 'developer' },
    );
    sandbox = ClientSandbox.create();
    // What skopeo reads from a cert dir: *.crt CAs for the server, client.cert (chain) + client.key.
    certDir = sandbox.path('certs', 'registry');
    mkdirSync(certDir, { recursive: true });
    const leaf = pki.issue('skopeo', { uris: [BUILDER] });
    copyFileSync(serverCert.cert, path.join(certDir, 'ca.crt'));
    copyFileSync(leaf.chain, path.join(certDir, 'client.cert'));
    copyFileSync(leaf.key, path.join(certDir, 'client.key'));
  });
  after(async () => {
    await server?.destroy();
    sandbox?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('pushes and pulls back an image with no credentials at all', async () => {
    const layout = sandbox.path('layout');
    await createLayoutImage(layout, 'src', [4096]);
    const host = registryHost(server.url);
    const pushed = await sandbox.skopeo(['copy', '--dest-cert-dir', certDir, `oci:${layout}:src`, `docker://${host}/apps/svid:v1`], {
      allowFailure: true,
    });
    assert.equal(pushed.code, 0, pushed.stderr);
    const back = sandbox.path('back');
    const pulled = await sandbox.skopeo(['copy', '--src-cert-dir', certDir, `docker://${host}/apps/svid:v1`, `oci:${back}:v1`], {
      allowFailure: true,
    });
    assert.equal(pulled.code, 0, pulled.stderr);
    const denied = await sandbox.skopeo(['copy', '--dest-cert-dir', certDir, `oci:${layout}:src`, `docker://${host}/other/svid:v1`], {
      allowFailure: true,
    });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /denied|may not|403/i);
  });
});
