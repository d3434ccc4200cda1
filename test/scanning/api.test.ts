import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import { readOsvSource } from '../../src/scanning/sources.js';
import { VulnDb } from '../../src/scanning/vulndb.js';
import { api, useAuthServer } from '../auth/support.js';
import { clientAs, refusal, seedTeam, smallImage, USERS } from '../policies/tags-support.js';

const FIXTURE = new URL('./fixtures/osv', import.meta.url).pathname;

interface ScanBody {
  digest: string;
  status: string;
  source: string;
  packages: number;
  summary: Record<string, number>;
  findings: {
    id: string;
    package: string;
    installed: string;
    fixed: string | null;
    severity: string;
    aliases: string[];
    links: string[];
  }[];
  error: string | null;
  databaseImport: number | null;
}

/**
 * The vulnerability API over real HTTP: POST …/scan with a package list, GET …/vulnerabilities
 * for the last result, who may call them (members read, developers scan, others 404,
 * anonymous 401), bad input in the spec's error format, and the scan events in the outbox.
 */
describe('vulnerability scan API', () => {
  const reg = useAuthServer('basic', {}, {}, { setup: seedTeam });
  let digest: string;
  const path = () => `/projects/team/repositories/app/artifacts/${digest}`;
  const packages = [
    { ecosystem: 'Debian:12', name: 'openssl', version: '3.0.11-1~deb12u1' },
    { ecosystem: 'Debian:12', name: 'zlib', version: '1:1.2.13.dfsg-1' },
    { ecosystem: 'npm', name: 'lodash', version: '4.17.20' },
  ];

  before(async () => {
    const image = smallImage();
    await clientAs(reg.server, USERS.dev).pushImage('team/app', 'v1', image);
    digest = image.manifest.digest;
  });

  it('before any import a scan fails, saying the database is empty; the failure is the last result', async () => {
    const res = await api(reg.server, 'POST', `${path()}/scan`, USERS.dev, { packages });
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as ScanBody;
    assert.deepEqual([body.status, body.error], ['failed', 'the vulnerability database is empty: run berth vulndb import first']);
    const last = (await (await api(reg.server, 'GET', `${path()}/vulnerabilities`, USERS.guest)).json()) as ScanBody;
    assert.equal(last.status, 'failed');
  });

  it('after an import: a developer scans with a package list; members read the findings most severe first with counts; events follow', async () => {
    const run = await new VulnDb(reg.server.stores.vulndb).import(FIXTURE, readOsvSource(FIXTURE));
    const res = await api(reg.server, 'POST', `${path()}/scan`, USERS.dev, { packages });
    assert.equal(res.status, 200, await res.clone().text());
    const scanned = (await res.json()) as ScanBody;
    assert.deepEqual(
      [scanned.status, scanned.source, scanned.packages, scanned.databaseImport, scanned.error],
      ['complete', 'request', 3, run.id, null],
    );
    const read = await api(reg.server, 'GET', `${path()}/vulnerabilities`, USERS.guest);
    assert.equal(read.status, 200);
    const body = (await read.json()) as ScanBody;
    assert.deepEqual(body, scanned);
    assert.deepEqual(
      body.findings.map((f) => [f.id, f.package, f.installed, f.fixed, f.severity]),
      [
        ['DSA-9001-1', 'openssl', '3.0.11-1~deb12u1', '3.0.11-1~deb12u2', 'Critical'],
        ['GHSA-aaaa-bbbb-0001', 'lodash', '4.17.20', '4.17.21', 'High'],
      ],
    );
    assert.deepEqual(body.findings[0]!.aliases, ['CVE-2099-0001']);
    assert.deepEqual(body.summary, { Unknown: 0, Negligible: 0, Low: 0, Medium: 0, High: 1, Critical: 1, total: 2 });

    const db = reg.server.stores.metadata.db as unknown as Kysely<{
      events: { id: number; type: string; repository: string | null; payload: string };
    }>;
    const events = await db
      .selectFrom('events')
      .select(['type', 'repository', 'payload'])
      .where('type', 'like', 'scan.%')
      .orderBy('id')
      .execute();
    assert.deepEqual(
      events.map((e) => [e.type, e.repository]),
      [
        ['scan.failed', 'team/app'],
        ['scan.completed', 'team/app'],
      ],
    );
    assert.deepEqual(JSON.parse(events[1]!.payload).summary, body.summary);
  });

  it("who may: anonymous 401; a guest reads but may not scan (403); another project's admin sees nothing (404)", async () => {
    assert.equal((await fetch(`${reg.url}/api/v1${path()}/vulnerabilities`)).status, 401);
    assert.equal(
      (await fetch(`${reg.url}/api/v1${path()}/scan`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }))
        .status,
      401,
    );
    const guest = await refusal(await api(reg.server, 'POST', `${path()}/scan`, USERS.guest, { packages }));
    assert.deepEqual([guest.status, guest.code], [403, 'DENIED']);
    assert.match(guest.message, /scanning team\/app needs push access/);
    for (const [method, suffix] of [
      ['GET', 'vulnerabilities'],
      ['POST', 'scan'],
    ] as const) {
      const res = await api(reg.server, method, `${path()}/${suffix}`, USERS.outsider, method === 'POST' ? { packages } : undefined);
      assert.equal(res.status, 404, `${method} ${suffix}`);
    }
  });

  it('refusals: unknown artifact 404 MANIFEST_UNKNOWN, never scanned 404, malformed digest 400, bad package list 400', async () => {
    const unknown = await refusal(
      await api(reg.server, 'GET', `/projects/team/repositories/app/artifacts/sha256:${'0'.repeat(64)}/vulnerabilities`, USERS.guest),
    );
    assert.deepEqual([unknown.status, unknown.code], [404, 'MANIFEST_UNKNOWN']);
    const other = smallImage();
    await clientAs(reg.server, USERS.dev).pushImage('team/app', 'v2', other);
    const never = await refusal(
      await api(reg.server, 'GET', `/projects/team/repositories/app/artifacts/${other.manifest.digest}/vulnerabilities`, USERS.guest),
    );
    assert.equal(never.status, 404);
    assert.match(never.message, /has not been scanned yet/);
    const malformed = await refusal(
      await api(reg.server, 'GET', '/projects/team/repositories/app/artifacts/sha256:xyz/vulnerabilities', USERS.guest),
    );
    assert.deepEqual([malformed.status, malformed.code], [400, 'DIGEST_INVALID']);
    const bad = await refusal(await api(reg.server, 'POST', `${path()}/scan`, USERS.dev, { packages: [{ ecosystem: 'npm', name: 'x' }] }));
    assert.equal(bad.status, 400);
    assert.match(bad.message, /invalid request body: packages\.0\.version/);
  });

  it('without a package list the SBOM extractor (src/sbom) lists the packages; layers of random bytes are no filesystem, so the scan fails with its reason', async () => {
    const res = await api(reg.server, 'POST', `${path()}/scan`, USERS.dev, {});
    const body = (await res.json()) as ScanBody;
    assert.deepEqual([res.status, body.source, body.status], [200, 'sbom', 'failed']);
    assert.ok(body.error && body.error.length > 0);
  });
});
