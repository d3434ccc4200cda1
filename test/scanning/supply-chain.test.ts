import assert from 'node:assert/strict';
import { before, after, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import { adminAuth, api, authConfig } from '../auth/support.js';
import { jsonBlob, makeImage, OCI_INDEX, type Image } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { clientAs, refusal, seedTeam, USERS } from '../policies/tags-support.js';
import { Receiver, json, type Received } from '../webhooks/support.js';
import { sample, scrape } from '../metrics/support.js';
import { readOsvSource } from '../../src/scanning/sources.js';
import { VulnDb } from '../../src/scanning/vulndb.js';
import { debianImage, eventually, opensslAdvisory, osvDir } from './support.js';

interface Scan {
  digest: string;
  status: string;
  source: string;
  databaseImport: number | null;
  findings: { id: string; severity: string }[];
  summary: Record<string, number>;
  error: string | null;
}
interface Status {
  queue: { pending: number; failed: number; failures: unknown[] };
  rescan: { databaseImport: number; state: string; total: number; scanned: number; failed: number; remaining: number } | null;
  vulndb: { lastImport: number | null; changedImport: number | null };
}

const FIRST = [opensslAdvisory('DSA-9301-1', '3.0.11-1~deb12u2', '2026-01-10T00:00:00Z')];
const SECOND = [
  ...FIRST,
  opensslAdvisory('DSA-9302-1', '3.0.11-1~deb12u3', '2026-02-10T00:00:00Z', 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N'),
];

/**
 * SBOM and scan on push, configured per project, over real HTTP: the settings API and who may
 * use it, pushed images (an image, an index's platform images) getting an SBOM referrer and a
 * scan from the leased job, signatures and SBOMs themselves left alone, scan events as Harbor
 * SCANNING_COMPLETED / SCANNING_FAILED and CloudEvents webhooks (never Distribution), the
 * backfill of existing images, and the rescan after an import that changed the database.
 */
describe('supply chain: SBOM and scan on push, rescans', () => {
  let receiver: Receiver;
  before(async () => {
    receiver = await Receiver.start();
  });
  after(async () => receiver?.stop());
  const reg = useServer(
    () =>
      authConfig(
        'basic',
        {},
        {
          events: { interval: '100ms', pullflushinterval: '1h' },
          gc: { enabled: false },
          notifications: {
            interval: '100ms',
            maxbackoff: '2s',
            endpoints: [{ name: 'dist', url: receiver.url('/dist'), backoff: '100ms' }],
          },
          scanning: { interval: '200ms', rescaninterval: '300ms', rescanbatch: 2 },
        },
      ),
    { setup: seedTeam },
  );
  const scanOf = async (repo: string, digest: string, project = 'team'): Promise<Scan | undefined> => {
    const res = await api(reg.server, 'GET', `/projects/${project}/repositories/${repo}/artifacts/${digest}/vulnerabilities`, adminAuth());
    return res.status === 200 ? ((await res.json()) as Scan) : undefined;
  };
  /** The stored scan once it has one; a failed scan fails the test with its error (findings [] would hide it). */
  const completedScanOf = async (what: string, repo: string, digest: string): Promise<Scan> => {
    const scan = await eventually(what, () => scanOf(repo, digest));
    assert.equal(scan.status, 'complete', `${what}: ${JSON.stringify(scan)}`);
    return scan;
  };
  const status = async (): Promise<Status> => (await (await api(reg.server, 'GET', '/supply-chain/status', adminAuth())).json()) as Status;
  const drained = async () =>
    eventually('the queue to drain', async () => ((await status()).queue.pending === 0 ? true : undefined)).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await reg.server.stores.supplyChain.due(Date.now() + 3_600_000, 10))}`);
    });
  let image: Image;
  let firstImport: number;

  it('settings: off by default; members read them, only a project admin sets them; other tenants 404, anonymous 401, bad bodies 400; the status is for admins', async () => {
    const shown = await api(reg.server, 'GET', '/projects/team/supply-chain', USERS.guest);
    assert.equal(shown.status, 200);
    assert.deepEqual(await shown.json(), { project: 'team', sbomOnPush: false, scanOnPush: false, updatedAt: null, updatedBy: null });
    for (const who of [USERS.guest, USERS.dev]) {
      const denied = await refusal(
        await api(reg.server, 'PUT', '/projects/team/supply-chain', who, { sbomOnPush: true, scanOnPush: true }),
      );
      assert.deepEqual([denied.status, denied.code], [403, 'DENIED']);
    }
    assert.equal((await api(reg.server, 'GET', '/projects/team/supply-chain', USERS.outsider)).status, 404);
    assert.equal(
      (await api(reg.server, 'PUT', '/projects/team/supply-chain', USERS.outsider, { sbomOnPush: true, scanOnPush: true })).status,
      404,
    );
    assert.equal((await api(reg.server, 'POST', '/projects/team/supply-chain/backfill', USERS.outsider, {})).status, 404);
    assert.equal((await api(reg.server, 'POST', '/projects/team/supply-chain/backfill', USERS.dev, {})).status, 403);
    assert.equal((await fetch(`${reg.url}/api/v1/projects/team/supply-chain`)).status, 401);
    const bad = await refusal(
      await api(reg.server, 'PUT', '/projects/team/supply-chain', USERS.owner, { sbomOnPush: 'yes', scanOnPush: true }),
    );
    assert.deepEqual([bad.status, bad.code], [400, 'INVALID_ARGUMENT']);
    assert.equal((await api(reg.server, 'PUT', '/projects/team/supply-chain', USERS.owner, { scanOnPush: true })).status, 400);
    const statusDenied = await refusal(await api(reg.server, 'GET', '/supply-chain/status', USERS.owner));
    assert.deepEqual([statusDenied.status, statusDenied.code], [403, 'DENIED']);
    // Still off after every refusal.
    assert.deepEqual(
      ((await (await api(reg.server, 'GET', '/projects/team/supply-chain', USERS.owner)).json()) as { scanOnPush: boolean }).scanOnPush,
      false,
    );
  });

  it('a deleted project takes its settings with it: created again, both are off', async () => {
    assert.equal((await api(reg.server, 'POST', '/projects', adminAuth(), { name: 'gone' })).status, 201);
    assert.equal(
      (await api(reg.server, 'PUT', '/projects/gone/supply-chain', adminAuth(), { sbomOnPush: true, scanOnPush: true })).status,
      200,
    );
    assert.equal((await api(reg.server, 'DELETE', '/projects/gone', adminAuth())).status, 204);
    await eventually('the settings forgotten', async () =>
      (await reg.server.stores.supplyChain.settings('gone')) === null ? true : undefined,
    );
    assert.equal((await api(reg.server, 'POST', '/projects', adminAuth(), { name: 'gone' })).status, 201);
    assert.deepEqual(
      ((await (await api(reg.server, 'GET', '/projects/gone/supply-chain', adminAuth())).json()) as { scanOnPush: boolean }).scanOnPush,
      false,
    );
  });

  it('off: a push queues nothing and nothing is scanned', async () => {
    image = await debianImage();
    await clientAs(reg.server, USERS.dev).pushImage('team/app', 'v0', image);
    await new Promise((resolve) => setTimeout(resolve, 800));
    assert.equal((await status()).queue.pending, 0);
    assert.equal(await scanOf('app', image.manifest.digest), undefined);
  });

  it('on: a pushed image gets its SBOM attached and its scan, from the job, never on the push; signatures and SBOMs are not scanned', async () => {
    const dir = osvDir(FIRST);
    firstImport = (await new VulnDb(reg.server.stores.vulndb).import(dir, readOsvSource(dir))).id;
    const set = await api(reg.server, 'PUT', '/projects/team/supply-chain', USERS.owner, { sbomOnPush: true, scanOnPush: true });
    assert.equal(set.status, 200, await set.clone().text());
    assert.deepEqual(((await set.json()) as { sbomOnPush: boolean; scanOnPush: boolean; updatedBy: string }).updatedBy, 'owner');
    for (const format of ['harbor', 'cloudevents']) {
      const hook = await api(reg.server, 'POST', '/projects/team/webhooks', USERS.owner, {
        name: format,
        url: receiver.url(`/${format}`),
        format,
        events: ['scan.completed', 'scan.failed'],
      });
      assert.equal(hook.status, 201, await hook.clone().text());
    }

    const pushed = await debianImage();
    const client = clientAs(reg.server, USERS.dev);
    const started = Date.now();
    await client.pushImage('team/app', 'v1', pushed);
    assert.ok(Date.now() - started < 5_000);
    // A cosign-style signature referrer and a legacy .sig tag beside it: artifacts, not images.
    const signature = makeImage({
      layers: 1,
      layerSize: 16,
      artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
      subject: { digest: pushed.manifest.digest, size: pushed.manifest.size, mediaType: pushed.mediaType },
    });
    await client.pushImage('team/app', signature.manifest.digest, signature);
    const legacy = makeImage({ layers: 1, layerSize: 16 });
    await client.pushImage('team/app', `${pushed.manifest.digest.replace(':', '-')}.sig`, legacy);

    const scan = await eventually('the scan of v1', () => scanOf('app', pushed.manifest.digest));
    assert.deepEqual([scan.status, scan.source, scan.databaseImport, scan.error], ['complete', 'sbom', firstImport, null]);
    assert.deepEqual(
      scan.findings.map((f) => [f.id, f.severity]),
      [['DSA-9301-1', 'Critical']],
    );
    const sbom = await api(
      reg.server,
      'GET',
      `/projects/team/repositories/app/artifacts/${pushed.manifest.digest}/sbom?format=spdx`,
      USERS.guest,
    );
    assert.equal(sbom.status, 200);
    assert.equal(sbom.headers.get('berth-sbom-origin'), 'generated');
    const referrers = (await (
      await fetch(`${reg.url}/v2/team/app/referrers/${pushed.manifest.digest}`, { headers: { authorization: USERS.guest } })
    ).json()) as { manifests: { artifactType: string }[] };
    assert.deepEqual(referrers.manifests.map((m) => m.artifactType).sort(), [
      'application/spdx+json',
      'application/vnd.cyclonedx+json',
      'application/vnd.dev.cosign.artifact.sig.v1+json',
    ]);
    await drained();
    assert.equal(await scanOf('app', signature.manifest.digest), undefined, 'a signature is not scanned');
    assert.equal(await scanOf('app', legacy.manifest.digest), undefined, 'a cosign .sig tag is not scanned');
    assert.equal((await status()).queue.failed, 0);

    // The scan's events as webhooks: Harbor's SCANNING_COMPLETED with its scan_overview, CloudEvents; never Distribution's envelope.
    await receiver.waitFor(
      'the scan webhooks',
      () => receiver.delivered('/harbor').length >= 1 && receiver.delivered('/cloudevents').length >= 1,
    );
    const harbor = json(receiver.delivered('/harbor').find((r) => json(r).event_data.resources[0].digest === pushed.manifest.digest)!);
    assert.equal(harbor.type, 'SCANNING_COMPLETED');
    assert.equal(harbor.operator, 'berth-scanner');
    assert.deepEqual(harbor.event_data.repository, { name: 'app', namespace: 'team', repo_full_name: 'team/app', repo_type: 'private' });
    assert.deepEqual(harbor.event_data.scan, { scan_type: 'vulnerability' });
    const overview = harbor.event_data.resources[0].scan_overview['application/vnd.security.vulnerability.report; version=1.1'];
    assert.deepEqual(
      [overview.scan_status, overview.severity, overview.summary, overview.complete_percent],
      ['Success', 'Critical', { total: 1, fixable: 1, summary: { Critical: 1 } }, 100],
    );
    assert.match(overview.start_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(overview.scanner.name, 'Berth');
    const ce = receiver
      .delivered('/cloudevents')
      .map((r: Received) => json(r))
      .find((b) => b.data.digest === pushed.manifest.digest);
    assert.equal(ce.type, 'io.berth.scan.completed');
    assert.deepEqual([ce.subject, ce.data.summary.Critical, ce.data.packages], [`team/app@${pushed.manifest.digest}`, 1, 1]);
    assert.ok(receiver.delivered('/dist').length > 0, 'the Distribution endpoint hears the pushes');
    assert.ok(
      receiver.delivered('/dist').every((r) => ['push', 'pull', 'delete'].includes(json(r).events[0].action)),
      'and never a scan',
    );
  });

  it('an index is handled by its platform images: each gets an SBOM and a scan, the index itself none', async () => {
    const amd = await debianImage('3.0.11-1~deb12u1', 'amd64');
    const arm = await debianImage('3.0.11-1~deb12u2', 'arm64');
    const client = clientAs(reg.server, USERS.dev);
    await client.pushImage('team/multi', amd.manifest.digest, amd);
    await client.pushImage('team/multi', arm.manifest.digest, arm);
    const index = jsonBlob({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: amd.mediaType,
          digest: amd.manifest.digest,
          size: amd.manifest.size,
          platform: { os: 'linux', architecture: 'amd64' },
        },
        {
          mediaType: arm.mediaType,
          digest: arm.manifest.digest,
          size: arm.manifest.size,
          platform: { os: 'linux', architecture: 'arm64' },
        },
      ],
    });
    assert.equal((await client.pushManifest('team/multi', 'latest', index, OCI_INDEX)).status, 201);
    const amdScan = await completedScanOf('the amd64 scan', 'multi', amd.manifest.digest);
    const armScan = await completedScanOf('the arm64 scan', 'multi', arm.manifest.digest);
    assert.deepEqual(
      amdScan.findings.map((f) => f.id),
      ['DSA-9301-1'],
    );
    assert.deepEqual(armScan.findings, [], '3.0.11-1~deb12u2 is the fixed version');
    await drained();
    assert.equal(await scanOf('multi', index.digest), undefined);
    const events = reg.server.stores.metadata.db as unknown as Kysely<{ events: { type: string; payload: string } }>;
    const completed = (await events.selectFrom('events').select('payload').where('type', '=', 'scan.completed').execute()).map(
      (e) => JSON.parse(e.payload) as { digest: string },
    );
    assert.equal(
      completed.filter((e) => e.digest === amd.manifest.digest).length,
      1,
      'pushed by digest and through the index: scanned once',
    );
  });

  it('a project with scan on and SBOM off: an image without a filesystem fails its scan; Harbor hears SCANNING_FAILED; the other tenant set it up', async () => {
    assert.equal(
      (await api(reg.server, 'PUT', '/projects/other/supply-chain', USERS.outsider, { sbomOnPush: false, scanOnPush: true })).status,
      200,
    );
    assert.equal(
      (
        await api(reg.server, 'POST', '/projects/other/webhooks', USERS.outsider, {
          name: 'h',
          url: receiver.url('/other'),
          format: 'harbor',
          events: ['scan.failed'],
        })
      ).status,
      201,
    );
    const random = makeImage({ layers: 1, layerSize: 64 });
    await clientAs(reg.server, USERS.outsider).pushImage('other/x', 'v1', random);
    const scan = await eventually('the failed scan', () => scanOf('x', random.manifest.digest, 'other'));
    assert.equal(scan.status, 'failed');
    await receiver.waitFor('SCANNING_FAILED', () => receiver.delivered('/other').length >= 1);
    const body = json(receiver.delivered('/other')[0]!);
    assert.equal(body.type, 'SCANNING_FAILED');
    assert.equal(
      body.event_data.resources[0].scan_overview['application/vnd.security.vulnerability.report; version=1.1'].scan_status,
      'Error',
    );
    assert.ok(body.event_data.custom_attributes.Details.length > 0);
    assert.ok(
      receiver.delivered('/harbor').every((r) => json(r).event_data.repository.namespace === 'team'),
      "team's policy hears nothing of other",
    );
  });

  it("backfill: the project's existing images without an SBOM are queued and get one (v0 was pushed while it was off)", async () => {
    assert.equal(
      (await api(reg.server, 'GET', `/projects/team/repositories/app/artifacts/${image.manifest.digest}/sbom`, USERS.guest)).status,
      404,
    );
    const res = await api(reg.server, 'POST', '/projects/team/supply-chain/backfill', USERS.owner, { sbom: true });
    assert.equal(res.status, 202, await res.clone().text());
    const body = (await res.json()) as { project: string; manifests: number; queued: number };
    // Tagged: v0, v1, multi:latest (the cosign .sig tag is left out). v0 lacks an SBOM; the index is queued, its images are checked by the job.
    assert.equal(body.project, 'team');
    assert.deepEqual([body.manifests, body.queued], [3, 2], JSON.stringify(body));
    await eventually('the SBOM of v0', async () =>
      (await api(reg.server, 'GET', `/projects/team/repositories/app/artifacts/${image.manifest.digest}/sbom`, USERS.guest)).status === 200
        ? true
        : undefined,
    );
    assert.equal(await scanOf('app', image.manifest.digest), undefined, 'sbom only: no scan');
    const empty = await refusal(
      await api(reg.server, 'POST', '/projects/team/supply-chain/backfill', USERS.owner, { sbom: false, scan: false }),
    );
    assert.equal(empty.status, 400);
  });

  it('an import that changed the database rescans every artifact scanned against an older one, in batches, with progress; an unchanged import rescans nothing', async () => {
    await drained();
    // A scan of a package list given in the request: not redone by the rescan (the list is not kept).
    const given = await api(reg.server, 'POST', `/projects/team/repositories/app/artifacts/${image.manifest.digest}/scan`, USERS.dev, {
      packages: [{ ecosystem: 'Debian:12', name: 'openssl', version: '3.0.11-1~deb12u1' }],
    });
    assert.equal(((await given.json()) as Scan).source, 'request');
    const dir = osvDir(SECOND);
    const run = await new VulnDb(reg.server.stores.vulndb).import(dir, readOsvSource(dir));
    assert.deepEqual([run.inserted, run.unchanged], [1, 1]);
    const done = await eventually('the rescan', async () => {
      const s = await status();
      return s.rescan?.databaseImport === run.id && s.rescan.state === 'complete' ? s : undefined;
    });
    // v1, the two platform images and other/x's failed scan.
    assert.deepEqual([done.rescan!.total, done.rescan!.scanned, done.rescan!.failed, done.rescan!.remaining], [4, 4, 1, 0]);
    assert.equal(done.vulndb.changedImport, run.id);
    const v1 = (await scanOf(
      'app',
      (await eventually('v1', async () => (await reg.server.stores.metadata.manifests.byTag('team/app', 'v1')) ?? undefined)).digest,
    ))!;
    assert.equal(v1.databaseImport, run.id);
    assert.deepEqual(v1.findings.map((f) => f.id).sort(), ['DSA-9301-1', 'DSA-9302-1']);
    const v0 = (await scanOf('app', image.manifest.digest))!;
    assert.deepEqual([v0.source, v0.databaseImport], ['request', firstImport]);

    const again = await new VulnDb(reg.server.stores.vulndb).import(dir, readOsvSource(dir));
    assert.equal(again.inserted + again.updated, 0);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const after = await status();
    assert.deepEqual([after.rescan!.databaseImport, after.vulndb.changedImport, after.vulndb.lastImport], [run.id, run.id, again.id]);

    // The database's age as Prometheus gauges (read from the import runs, cached; no scan at scrape).
    const text = await scrape(`${reg.url}/metrics`, adminAuth());
    assert.equal(sample(text, 'berth_vulndb_last_import_timestamp_seconds'), again.finishedAt! / 1000);
    const age = sample(text, 'berth_vulndb_age_seconds')!;
    assert.ok(age >= 0 && age < 60, `age ${age}`);
    assert.equal(sample(text, 'berth_supply_chain_queue_items', { state: 'pending' }), 0);
    assert.equal(sample(text, 'berth_vulndb_rescan_remaining'), 0);
  });
});

/**
 * An image whose layers are no filesystem: its SBOM cannot be written, yet its scan runs and
 * stores the failure (and its event); the queue row is retried later and, after its attempts,
 * kept as failed with the error for the status API.
 */
describe('supply chain: an unreadable image', () => {
  const reg = useServer({
    events: { interval: '100ms', pullflushinterval: '1h' },
    gc: { enabled: false },
    scanning: { interval: '200ms' },
  });

  it('the scan fails with the reason at once; the row waits for its next attempt with the error', async () => {
    assert.equal(
      (
        await fetch(`${reg.url}/api/v1/projects`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'team' }),
        })
      ).status,
      201,
    );
    const put = await fetch(`${reg.url}/api/v1/projects/team/supply-chain`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sbomOnPush: true, scanOnPush: true }),
    });
    assert.equal(put.status, 200);
    const random = makeImage({ layers: 1, layerSize: 64 });
    await reg.client.pushImage('team/noise', 'v1', random);
    const scan = await eventually(
      'the failed scan',
      async () => (await reg.server.stores.vulndb.scanOf(random.manifest.digest)) ?? undefined,
      10_000,
    );
    assert.equal(scan.status, 'failed');
    const row = await eventually('the row retried', async () =>
      (await reg.server.stores.supplyChain.due(Date.now() + 3_600_000, 10)).find((q) => q.attempts >= 1),
    );
    assert.equal(row.digest, random.manifest.digest);
    assert.ok(row.lastError && row.lastError.length > 0);
    assert.ok(row.nextAt > Date.now(), 'not before its backoff');
    assert.equal(row.state, 'pending');
  });
});
