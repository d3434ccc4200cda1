import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import type { Kysely } from 'kysely';
import { api, authConfig, token as tokenFor } from '../auth/support.js';
import { RegistryClient } from '../helpers/registry-client.js';
import type { HasUrl } from '../auth/support.js';
import { useServer } from '../helpers/use-server.js';
import { chooseReportType, findingOf, findingsOf, ScannerError } from '../../src/scanning/harbor.js';
import { clientAs, refusal, seedTeam, smallImage, USERS, variant } from '../policies/tags-support.js';

/**
 * Harbor Pluggable Scanner API v1.2 as a client, end to end over real HTTP. Real Trivy or Clair
 * adapters cannot run on this machine, so the adapter here is a FAKE: a real HTTP server in the
 * test implementing the spec's three endpoints (GET /api/v1/metadata, POST /api/v1/scan,
 * GET /api/v1/scan/{id}/report with 302 + Refresh-After while "scanning"). Like a real adapter
 * it pulls the manifest from Berth with the credential in the scan request, and it checks that
 * credential is pull-only for that repository: refused on another repository of the same
 * project (which the requester may pull), refused for a push, refused on the admin API.
 */

const ADAPTER_AUTH = 'Bearer adapter-api-key-1';
const REPORT_TYPE = 'application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0';

interface Checks {
  scanRequest: {
    registry: { url: string; authorization?: string };
    artifact: { repository: string; digest: string; mime_type: string };
    enabled_capabilities?: unknown;
  };
  requestType: string | undefined;
  adapterAuth: string | undefined;
  manifestStatus: number;
  manifestDigest: string | null;
  otherRepoStatus: number;
  pushStatus: number;
  apiStatus: number;
  reportAccept: string[];
}

interface ScanBody {
  digest: string;
  status: string;
  source: string;
  packages: number;
  summary: Record<string, number>;
  findings: {
    id: string;
    package: string;
    ecosystem: string;
    installed: string;
    fixed: string | null;
    severity: string;
    severitySource: string;
    cvss: unknown;
    links: string[];
    summary: string | null;
    cweIds?: string[];
    vendorAttributes?: Record<string, unknown>;
  }[];
  error: string | null;
  databaseImport: number | null;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.on('data', (d: Buffer) => (s += d.toString()));
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}

/** The fake adapter. `mode`: ok (scan, 302 once, then the report), stuck (302 for ever), broken (500 on the report), hang (never answers). */
class FakeAdapter {
  server!: Server;
  url = '';
  mode: 'ok' | 'stuck' | 'broken' | 'hang' = 'ok';
  checks: Checks[] = [];
  private pending = new Map<string, { polls: number; work: Promise<Checks> }>();
  private next = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req).then(
        ({ status, headers, body }) => {
          res.writeHead(status, headers);
          res.end(body);
        },
        (err: Error) => {
          res.writeHead(500, { 'content-type': 'application/vnd.scanner.adapter.error+json; version=1.0' });
          res.end(JSON.stringify({ error: { message: err.message } }));
        },
      );
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    const body = await readBody(req);
    if (this.mode === 'hang') return new Promise(() => undefined);
    if (req.headers.authorization !== ADAPTER_AUTH) return { status: 401, headers: {}, body: '' };
    const json = (status: number, type: string, value: unknown) => ({
      status,
      headers: { 'content-type': type },
      body: JSON.stringify(value),
    });
    if (req.method === 'GET' && req.url === '/api/v1/metadata') {
      return json(200, 'application/vnd.scanner.adapter.metadata+json; version=1.1', {
        scanner: { name: 'FakeTrivy', vendor: 'Berth tests', version: '0.0-test' },
        capabilities: [
          {
            type: 'vulnerability',
            consumes_mime_types: ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'],
            produces_mime_types: [REPORT_TYPE, 'application/vnd.scanner.adapter.vuln.report.raw'],
          },
          {
            type: 'sbom',
            consumes_mime_types: ['application/vnd.oci.image.manifest.v1+json'],
            produces_mime_types: ['application/vnd.security.sbom.report+json; version=1.0'],
            additional_attributes: { sbom_media_types: ['application/spdx+json'] },
          },
        ],
        properties: { 'harbor.scanner-adapter/scanner-type': 'os-package-vulnerability' },
      });
    }
    if (req.method === 'POST' && req.url === '/api/v1/scan') {
      const request = JSON.parse(body) as Checks['scanRequest'];
      const id = `scan-${++this.next}`;
      const work = this.pull(request, req);
      work.catch(() => undefined);
      this.pending.set(id, { polls: 0, work });
      return json(202, 'application/vnd.scanner.adapter.scan.response+json; version=1.0', { id });
    }
    const m = /^\/api\/v1\/scan\/([^/]+)\/report$/.exec(req.url ?? '');
    if (req.method === 'GET' && m) {
      const job = this.pending.get(m[1]!);
      if (!job) return { status: 404, headers: {}, body: '' };
      const checks = await job.work;
      checks.reportAccept.push(String(req.headers.accept));
      if (this.mode === 'broken')
        return json(500, 'application/vnd.scanner.adapter.error+json; version=1.0', {
          error: { message: 'trivy: database download failed' },
        });
      if (this.mode === 'stuck' || job.polls++ === 0) return { status: 302, headers: { 'refresh-after': '1' }, body: '' };
      if (checks.manifestStatus !== 200)
        return json(500, 'application/vnd.scanner.adapter.error+json; version=1.0', {
          error: { message: `pull failed: ${checks.manifestStatus}` },
        });
      return json(200, REPORT_TYPE, {
        generated_at: new Date().toISOString(),
        artifact: checks.scanRequest.artifact,
        scanner: { name: 'FakeTrivy', vendor: 'Berth tests', version: '0.0-test' },
        severity: 'Critical',
        vulnerabilities: [
          {
            id: 'CVE-2099-1111',
            package: 'zlib1g',
            version: '1:1.2.13.dfsg-1',
            fix_version: '',
            severity: 'Medium',
            description: 'zlib: a medium one',
            links: ['https://avd.aquasec.com/nvd/cve-2099-1111'],
          },
          {
            id: 'CVE-2099-0001',
            package: 'libssl3',
            version: '3.0.11-1~deb12u1',
            fix_version: '3.0.11-1~deb12u2',
            severity: 'Critical',
            description: 'openssl: a critical one',
            links: ['https://security-tracker.debian.org/tracker/CVE-2099-0001'],
            preferred_cvss: { score_v3: 9.8, vector_v3: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' },
            cwe_ids: ['CWE-787'],
            vendor_attributes: { CVSS: { nvd: { V3Score: 9.8 } } },
          },
          { id: 'CVE-2099-2222', package: 'busybox', version: '1.36.1-r15', severity: 'Bogus' },
          { package: 'no-id' },
        ],
      });
    }
    return { status: 404, headers: {}, body: '' };
  }

  /** What a real adapter does first: pull the manifest with the credential it was given; then probe what else that credential opens. */
  private async pull(request: Checks['scanRequest'], req: IncomingMessage): Promise<Checks> {
    const { url, authorization } = request.registry;
    const headers: Record<string, string> = authorization ? { authorization } : {};
    const { repository, digest, mime_type } = request.artifact;
    const manifest = await fetch(`${url}/v2/${repository}/manifests/${digest}`, { headers: { ...headers, accept: mime_type } });
    const manifestDigest = manifest.headers.get('docker-content-digest');
    await manifest.arrayBuffer();
    const other = await fetch(`${url}/v2/team/other-app/manifests/${digest}`, { headers: { ...headers, accept: mime_type } });
    const push = await fetch(`${url}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers });
    const adminApi = await fetch(`${url}/api/v1/projects`, { headers });
    const checks: Checks = {
      scanRequest: request,
      requestType: req.headers['content-type'],
      adapterAuth: req.headers.authorization,
      manifestStatus: manifest.status,
      manifestDigest,
      otherRepoStatus: other.status,
      pushStatus: push.status,
      apiStatus: adminApi.status,
      reportAccept: [],
    };
    this.checks.push(checks);
    return checks;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A client pushing as dev: Basic with auth.mode basic, a registry token for `repository` from /token with auth.mode token. */
async function devClient(server: HasUrl, mode: 'basic' | 'token', repository = 'team/app'): Promise<RegistryClient> {
  if (mode === 'basic') return clientAs(server, USERS.dev);
  return new RegistryClient(server.url, {
    authorization: `Bearer ${await tokenFor(server, [`repository:${repository}:pull,push`], USERS.dev)}`,
  });
}

const adapter = new FakeAdapter();
before(() => adapter.start());
after(() => adapter.close());

function scanning(url: string, timeout = '20s'): Record<string, unknown> {
  return { scanning: { scanner: { kind: 'harbor', url, authorization: ADAPTER_AUTH, timeout, pollinterval: '100ms' } } };
}

describe('Harbor scanner adapter: a scan through Berth, pulled by the adapter with a pull-only token', () => {
  const reg = useServer(() => authConfig('token', { token: { expiration: '15m' } }, scanning(adapter.url)), { setup: seedTeam });
  let digest: string;
  const path = () => `/projects/team/repositories/app/artifacts/${digest}`;

  before(async () => {
    const image = smallImage();
    await (await devClient(reg.server, 'token')).pushImage('team/app', 'v1', image);
    // Another repository of the same project, which dev may pull: the scan token must still not open it.
    await (await devClient(reg.server, 'token', 'team/other-app')).pushImage('team/other-app', 'v1', image);
    digest = image.manifest.digest;
  });

  it('POST …/scan asks the adapter, which pulls with a token for repository:team/app:pull only; the findings are Berth findings; GET and events agree', async () => {
    adapter.mode = 'ok';
    const started = Date.now();
    const res = await api(reg.server, 'POST', `${path()}/scan`, USERS.dev, {});
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as ScanBody;
    assert.equal(body.error, null);
    assert.deepEqual([body.status, body.source, body.databaseImport, body.packages], ['complete', 'harbor:FakeTrivy 0.0-test', null, 3]);
    assert.ok(Date.now() - started >= 1000, 'the 302 with Refresh-After: 1 was honoured');

    const c = adapter.checks.at(-1)!;
    assert.equal(c.adapterAuth, ADAPTER_AUTH, 'Berth sent the configured Authorization to the adapter');
    assert.equal(c.requestType, 'application/vnd.scanner.adapter.scan.request+json; version=1.1');
    assert.equal(c.scanRequest.registry.url, reg.server.url);
    assert.deepEqual(c.scanRequest.artifact, { repository: 'team/app', digest, mime_type: 'application/vnd.oci.image.manifest.v1+json' });
    assert.deepEqual(c.scanRequest.enabled_capabilities, [{ type: 'vulnerability', produces_mime_types: [REPORT_TYPE] }]);
    assert.deepEqual(c.reportAccept, [REPORT_TYPE, REPORT_TYPE]);
    // The credential: a Bearer registry token holding exactly pull on team/app, short-lived, on behalf of dev.
    const token = /^Bearer (\S+)$/.exec(c.scanRequest.registry.authorization ?? '')?.[1];
    assert.ok(token, `a Bearer token, got ${c.scanRequest.registry.authorization}`);
    const claims = decodeJwt(token);
    assert.deepEqual(claims.access, [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
    assert.equal(claims.sub, 'dev');
    assert.ok(claims.exp! - claims.iat! <= 20, `lives no longer than the scan timeout (20s), got ${claims.exp! - claims.iat!}s`);
    // What it opens: the manifest of the scanned repository; not another repository, not a push, not the admin API.
    assert.deepEqual([c.manifestStatus, c.manifestDigest], [200, digest]);
    assert.equal(c.otherRepoStatus, 401, 'another repository (which dev may pull) is refused with this token');
    assert.equal(c.pushStatus, 401, 'a push is refused');
    assert.equal(c.apiStatus, 401, 'the admin API refuses a registry token');

    assert.deepEqual(
      body.findings.map((f) => [f.id, f.package, f.installed, f.fixed, f.severity, f.severitySource, f.ecosystem]),
      [
        ['CVE-2099-0001', 'libssl3', '3.0.11-1~deb12u1', '3.0.11-1~deb12u2', 'Critical', 'scanner', 'FakeTrivy'],
        ['CVE-2099-1111', 'zlib1g', '1:1.2.13.dfsg-1', null, 'Medium', 'scanner', 'FakeTrivy'],
        ['CVE-2099-2222', 'busybox', '1.36.1-r15', null, 'Unknown', 'scanner', 'FakeTrivy'],
      ],
    );
    const critical = body.findings[0]!;
    assert.deepEqual(critical.cvss, { type: 'CVSS_V3', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', score: 9.8 });
    assert.deepEqual(
      [critical.cweIds, critical.vendorAttributes, critical.links, critical.summary],
      [
        ['CWE-787'],
        { CVSS: { nvd: { V3Score: 9.8 } } },
        ['https://security-tracker.debian.org/tracker/CVE-2099-0001'],
        'openssl: a critical one',
      ],
    );
    assert.deepEqual(body.summary, { Unknown: 1, Negligible: 0, Low: 0, Medium: 1, High: 0, Critical: 1, total: 3 });

    const read = await api(reg.server, 'GET', `${path()}/vulnerabilities`, USERS.guest);
    assert.equal(read.status, 200);
    assert.deepEqual(await read.json(), body);
    const db = reg.server.stores.metadata.db as unknown as Kysely<{
      events: { id: number; type: string; repository: string | null; payload: string };
    }>;
    const events = await db
      .selectFrom('events')
      .select(['type', 'repository', 'payload'])
      .where('type', 'like', 'scan.%')
      .orderBy('id')
      .execute();
    assert.deepEqual(events.map((e) => [e.type, e.repository]).at(-1), ['scan.completed', 'team/app']);
    assert.deepEqual((JSON.parse(events.at(-1)!.payload) as { summary: unknown }).summary, body.summary);
  });

  it('a package list in the request is refused with 400 (the adapter reads the image itself)', async () => {
    const res = await api(reg.server, 'POST', `${path()}/scan`, USERS.dev, {
      packages: [{ ecosystem: 'npm', name: 'lodash', version: '4.17.20' }],
    });
    const r = await refusal(res);
    assert.deepEqual([r.status, r.code], [400, 'INVALID_ARGUMENT']);
    assert.match(r.message, /Harbor scanner adapter/);
  });

  it('an unknown artifact is 404 MANIFEST_UNKNOWN before the adapter is asked; a guest may not scan (403)', async () => {
    const before = adapter.checks.length;
    const unknown = await refusal(
      await api(reg.server, 'POST', `/projects/team/repositories/app/artifacts/sha256:${'0'.repeat(64)}/scan`, USERS.dev, {}),
    );
    assert.deepEqual([unknown.status, unknown.code], [404, 'MANIFEST_UNKNOWN']);
    const guest = await refusal(await api(reg.server, 'POST', `${path()}/scan`, USERS.guest, {}));
    assert.deepEqual([guest.status, guest.code], [403, 'DENIED']);
    assert.equal(adapter.checks.length, before);
  });

  it('the adapter failing the scan (500 with its error) gives a failed scan naming the reason, and a scan.failed event', async () => {
    adapter.mode = 'broken';
    const other = variant(smallImage(), 'broken');
    await (await devClient(reg.server, 'token')).pushImage('team/app', 'v2', other);
    const res = await api(reg.server, 'POST', `/projects/team/repositories/app/artifacts/${other.manifest.digest}/scan`, USERS.dev, {});
    assert.equal(res.status, 200);
    const body = (await res.json()) as ScanBody;
    assert.equal(body.status, 'failed');
    assert.match(body.error!, /the adapter failed the scan scan-\d+: 500 trivy: database download failed/);
    const db = reg.server.stores.metadata.db as unknown as Kysely<{
      events: { id: number; type: string; repository: string | null; payload: string };
    }>;
    const last = await db
      .selectFrom('events')
      .select(['type', 'payload'])
      .where('type', 'like', 'scan.%')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    assert.equal(last.type, 'scan.failed');
    assert.match(last.payload, /database download failed/);
    // Never the credential: neither the stored record nor the event carries a token.
    assert.doesNotMatch(JSON.stringify(body) + last.payload, /Bearer|eyJ/);
  });
});

describe('Harbor scanner adapter: an unreachable adapter ends as a failed scan at once', () => {
  // A port nothing listens on: a server opened and closed at once.
  let deadUrl = '';
  before(async () => {
    const s = createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    deadUrl = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    await new Promise((resolve) => s.close(resolve));
  });
  const dead = useServer(() => authConfig('token', {}, scanning(deadUrl, '3s')), { setup: seedTeam });

  it('an adapter nobody answers at: failed at once, "unreachable", the connection error named', async () => {
    const image = smallImage();
    await (await devClient(dead.server, 'token')).pushImage('team/app', 'v1', image);
    const started = Date.now();
    const res = await api(dead.server, 'POST', `/projects/team/repositories/app/artifacts/${image.manifest.digest}/scan`, USERS.dev, {});
    assert.equal(res.status, 200);
    const body = (await res.json()) as ScanBody;
    assert.deepEqual([body.status, body.source], ['failed', 'harbor']);
    assert.equal(body.error, `the scanner adapter at ${deadUrl} is unreachable (metadata): ECONNREFUSED`);
    assert.ok(Date.now() - started < 3000, 'did not wait for the timeout');
  });
});

describe('Harbor scanner adapter: a stuck adapter ends as a failed scan after the timeout', () => {
  const slow = useServer(() => authConfig('token', {}, scanning(adapter.url, '3s')), { setup: seedTeam });

  it('an adapter that never finishes (302 for ever): failed after scanning.scanner.timeout, not a hung request', async () => {
    adapter.mode = 'stuck';
    const image = smallImage();
    await (await devClient(slow.server, 'token')).pushImage('team/app', 'v1', image);
    const started = Date.now();
    const res = await api(slow.server, 'POST', `/projects/team/repositories/app/artifacts/${image.manifest.digest}/scan`, USERS.dev, {});
    const took = Date.now() - started;
    const body = (await res.json()) as ScanBody;
    assert.equal(body.status, 'failed');
    assert.match(body.error!, /did not finish scan scan-\d+ within 3s \(scanning\.scanner\.timeout\)/);
    assert.ok(took >= 1900 && took < 6000, `took ${took} ms`);
  });

  it('an adapter that accepts the connection and never answers: failed when the timeout runs out', async () => {
    adapter.mode = 'hang';
    const image = variant(smallImage(), 'hang');
    await (await devClient(slow.server, 'token')).pushImage('team/app', 'v2', image);
    const started = Date.now();
    const body = (await (
      await api(slow.server, 'POST', `/projects/team/repositories/app/artifacts/${image.manifest.digest}/scan`, USERS.dev, {})
    ).json()) as ScanBody;
    const took = Date.now() - started;
    adapter.mode = 'ok';
    assert.equal(body.status, 'failed');
    assert.equal(
      body.error,
      `the scanner adapter at ${adapter.url} is unreachable (metadata): no answer within 3s (scanning.scanner.timeout)`,
    );
    assert.ok(took >= 2900 && took < 6000, `took ${took} ms`);
  });
});

describe('Harbor scanner adapter with auth.mode basic: no token server, so the scan fails saying why', () => {
  const reg = useServer(() => authConfig('basic', {}, scanning(adapter.url)), { setup: seedTeam });

  it('failed: needs auth.mode token', async () => {
    adapter.mode = 'ok';
    const image = smallImage();
    await clientAs(reg.server, USERS.dev).pushImage('team/app', 'v1', image);
    const res = await api(reg.server, 'POST', `/projects/team/repositories/app/artifacts/${image.manifest.digest}/scan`, USERS.dev, {});
    const body = (await res.json()) as ScanBody;
    assert.equal(body.status, 'failed');
    assert.match(body.error!, /needs auth\.mode token with Berth's own token server \(auth\.mode is basic\)/);
  });
});

describe('Harbor scanner adapter: metadata and report mapping (no server)', () => {
  const OCI = 'application/vnd.oci.image.manifest.v1+json';

  it('a capability without type is a vulnerability one; the v1.1 security report is taken when the Harbor report is not offered (parameters compared loosely)', () => {
    const metadata = {
      scanner: { name: 'Clair' },
      capabilities: [{ consumes_mime_types: [OCI], produces_mime_types: ['application/vnd.security.vulnerability.report;version=1.1'] }],
    };
    assert.equal(chooseReportType(metadata, OCI), 'application/vnd.security.vulnerability.report; version=1.1');
  });

  it('an index, or an adapter producing only raw reports, is refused with what the adapter offers', () => {
    const metadata = {
      capabilities: [
        { type: 'vulnerability', consumes_mime_types: [OCI], produces_mime_types: ['application/vnd.scanner.adapter.vuln.report.raw'] },
        { type: 'sbom', consumes_mime_types: ['application/vnd.oci.image.index.v1+json'], produces_mime_types: [] },
      ],
    };
    assert.throws(
      () => chooseReportType(metadata, 'application/vnd.oci.image.index.v1+json'),
      (err: Error) =>
        err instanceof ScannerError &&
        err.message === `the adapter does not scan artifacts of media type application/vnd.oci.image.index.v1+json (it consumes: ${OCI})`,
    );
    assert.throws(
      () => chooseReportType(metadata, OCI),
      /produces no vulnerability report Berth reads \(it produces: application\/vnd\.scanner\.adapter\.vuln\.report\.raw;/,
    );
    assert.throws(() => chooseReportType({}, OCI), /has no capabilities/);
  });

  it('CVSS v2 when v3 is absent; a report whose vulnerabilities is not a list is refused; none at all is an empty result', () => {
    const f = findingOf(
      {
        id: 'CVE-1',
        package: 'p',
        version: '1',
        severity: 'Low',
        preferred_cvss: { score_v2: 5, vector_v2: 'AV:N/AC:L/Au:N/C:N/I:N/A:P' },
      },
      'Clair',
    )!;
    assert.deepEqual(
      [f.cvss, f.severity, f.fixed, f.ecosystem],
      [{ type: 'CVSS_V2', vector: 'AV:N/AC:L/Au:N/C:N/I:N/A:P', score: 5 }, 'Low', null, 'Clair'],
    );
    assert.throws(() => findingsOf({ vulnerabilities: {} }, 'x'), ScannerError);
    assert.deepEqual(findingsOf({ generated_at: '2026-01-01T00:00:00Z' }, 'x'), []);
  });
});
