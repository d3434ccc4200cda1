import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readOsvSource } from '../../src/scanning/sources.js';
import { VulnDb } from '../../src/scanning/vulndb.js';
import { api, auditLog, useAuthServer } from '../auth/support.js';
import { pushIndex } from '../gc/support.js';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { makeImage, OCI_INDEX, type Image } from '../helpers/registry-client.js';
import { eventually } from '../policies/quota-support.js';
import { clientAs, refusal, seedTeam, smallImage, USERS } from '../policies/tags-support.js';
import { cosignKeys, cosignSign, pushCosignTag, setMode, simpleSigningPayload, trust } from '../signatures/support.js';

const FIXTURE = new URL('./fixtures/osv', import.meta.url).pathname;

/** Fixture packages: openssl has DSA-9001-1 (Critical, alias CVE-2099-0001), lodash 4.17.20 GHSA-aaaa-bbbb-0001 (High). */
const OPENSSL = { ecosystem: 'Debian:12', name: 'openssl', version: '3.0.11-1~deb12u1' };
const LODASH = { ecosystem: 'npm', name: 'lodash', version: '4.17.20' };
const LODASH_FIXED = { ecosystem: 'npm', name: 'lodash', version: '4.17.21' };

type Settings = {
  mode: string;
  severity?: string;
  allowlist?: string[];
  unscanned?: string;
  graceSeconds?: number;
  inheritIndex?: boolean;
};

/**
 * The vulnerability policy on pulls, over real HTTP and with skopeo: enforce refuses a manifest
 * whose last scan has findings at or above the threshold (by tag and digest, GET and HEAD) with
 * 403 DENIED naming the policy and the counts; the allowlist, unscanned artifacts (deny, grace on
 * the server's injected clock), index children, signature artifacts and blobs; verdicts follow
 * rescans and policy changes at the next pull; audit serves and records once; the signature
 * policy and this one compose (either refuses).
 */
describe('vulnerability policy on pulls', () => {
  const reg = useAuthServer('basic', {}, { storage: { delete: { enabled: true } } }, { setup: seedTeam });
  let sandbox: ClientSandbox;
  const dev = () => clientAs(reg.server, USERS.dev);
  const push = async (repository: string, tag: string, image: Image = smallImage()): Promise<string> => {
    await dev().pushImage(repository, tag, image);
    return image.manifest.digest;
  };
  const scan = async (repository: string, digest: string, packages: unknown[]) => {
    const res = await api(
      reg.server,
      'POST',
      `/projects/team/repositories/${encodeURIComponent(repository.slice('team/'.length))}/artifacts/${digest}/scan`,
      USERS.dev,
      { packages },
    );
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(((await res.json()) as { status: string }).status, 'complete');
  };
  const policy = async (settings: Settings) => {
    const res = await api(reg.server, 'PUT', '/projects/team/vulnerability-policy', USERS.owner, settings);
    assert.equal(res.status, 200, await res.clone().text());
  };
  const pull = (repository: string, reference: string, method = 'GET') =>
    dev().fetch(`/v2/${repository}/manifests/${reference}`, {
      method,
      headers: { accept: `application/vnd.oci.image.manifest.v1+json, ${OCI_INDEX}` },
    });

  before(async () => {
    requireTools(['skopeo']);
    sandbox = ClientSandbox.create();
    await new VulnDb(reg.server.stores.vulndb).import(FIXTURE, readOsvSource(FIXTURE));
  });
  after(() => sandbox?.destroy());

  it('enforce: findings at or above the threshold refuse by tag and by digest, GET and HEAD, with 403 DENIED naming the policy and the counts; below it is served', async () => {
    const image = smallImage();
    const both = await push('team/app', 'both', image);
    await scan('team/app', both, [OPENSSL, LODASH]);
    const high = await push('team/app', 'high');
    await scan('team/app', high, [LODASH]);
    await policy({ mode: 'enforce', severity: 'high' });
    const error = await refusal(await pull('team/app', 'both'));
    assert.equal(error.status, 403);
    assert.equal(error.code, 'DENIED');
    assert.equal(
      error.message,
      `manifest team/app@${both} is refused by the vulnerability policy of project team (mode enforce, severity high): 1 critical, 1 high at or above high (policy: vulnerabilities)`,
    );
    assert.equal((await pull('team/app', both)).status, 403);
    assert.equal((await pull('team/app', 'both', 'HEAD')).status, 403);
    assert.equal((await pull('team/app', both, 'HEAD')).status, 403);
    assert.match((await refusal(await pull('team/app', 'high'))).message, /: 1 high at or above high \(policy: vulnerabilities\)$/);

    await policy({ mode: 'enforce', severity: 'critical' });
    assert.equal((await pull('team/app', 'high')).status, 200, 'High is below critical');
    assert.equal((await pull('team/app', high, 'HEAD')).status, 200);
    assert.match((await refusal(await pull('team/app', 'both'))).message, /: 1 critical at or above critical \(policy: vulnerabilities\)$/);
    // Blobs of a refused image stay servable (the manifest is what is judged).
    assert.equal((await dev().fetch(`/v2/team/app/blobs/${image.layers[0]!.digest}`)).status, 200);
    assert.equal((await dev().fetch(`/v2/team/app/blobs/${image.config.digest}`)).status, 200);
  });

  it('the allowlist: a CVE alias of a finding lets it through and the message names what was allowlisted', async () => {
    const digest = await push('team/allow', 'v1');
    await scan('team/allow', digest, [OPENSSL, LODASH]);
    await policy({ mode: 'enforce', severity: 'critical', allowlist: ['CVE-2099-0001'] });
    assert.equal((await pull('team/allow', 'v1')).status, 200);
    await policy({ mode: 'enforce', severity: 'high', allowlist: ['cve-2099-0001'] });
    const error = await refusal(await pull('team/allow', 'v1'));
    assert.match(error.message, /: 1 high at or above high; allowlisted: CVE-2099-0001 \(policy: vulnerabilities\)$/);
    await policy({ mode: 'enforce', severity: 'high', allowlist: ['CVE-2099-0001', 'GHSA-aaaa-bbbb-0001'] });
    assert.equal((await pull('team/allow', digest)).status, 200);
  });

  it('a rescan applies at the next pull: fixed → served; newly vulnerable → refused', async () => {
    await policy({ mode: 'enforce', severity: 'high' });
    const digest = await push('team/rescan', 'v1');
    await scan('team/rescan', digest, [LODASH]);
    assert.equal((await pull('team/rescan', 'v1')).status, 403);
    await scan('team/rescan', digest, [LODASH_FIXED]);
    assert.equal((await pull('team/rescan', 'v1')).status, 200, 'the refusal was re-judged at once');
    assert.equal((await pull('team/rescan', 'v1')).status, 200);
    await scan('team/rescan', digest, [OPENSSL]);
    assert.equal((await pull('team/rescan', 'v1')).status, 403, 'the allowed verdict was dropped by the scan on this replica');
  });

  it('unscanned: allow serves, deny refuses, grace serves until the grace ends on the server clock', async () => {
    const digest = await push('team/fresh', 'v1');
    await policy({ mode: 'enforce', severity: 'high', unscanned: 'allow' });
    assert.equal((await pull('team/fresh', 'v1')).status, 200);
    await policy({ mode: 'enforce', severity: 'high', unscanned: 'deny' });
    const denied = await refusal(await pull('team/fresh', 'v1'));
    assert.equal(denied.status, 403);
    assert.match(denied.message, /: not scanned, and the policy refuses unscanned artifacts \(policy: vulnerabilities\)$/);

    await policy({ mode: 'enforce', severity: 'high', unscanned: 'grace', graceSeconds: 3600 });
    const service = reg.server.composition.vulnPolicy;
    const start = Date.now();
    try {
      service.clock = () => start + 3_000_000;
      assert.equal((await pull('team/fresh', 'v1')).status, 200, 'within an hour of its push');
      service.clock = () => start + 3_700_000;
      const late = await refusal(await pull('team/fresh', digest));
      assert.equal(late.status, 403);
      assert.match(
        late.message,
        /: not scanned within the 1h grace after its push at \d{4}-\d\d-\d\dT[\d:.]+Z \(policy: vulnerabilities\)$/,
      );
      await scan('team/fresh', digest, [LODASH_FIXED]);
      assert.equal((await pull('team/fresh', 'v1')).status, 200, 'scanned clean');
    } finally {
      service.clock = Date.now;
    }
  });

  it('index children inherit the scan of an index listing them when inheritIndex is on, not when off; an unscanned index itself is served', async () => {
    const index = await pushIndex(dev(), 'team/multi', 'v1', [
      makeImage({ layers: 1, layerSize: 32 }),
      makeImage({ layers: 1, layerSize: 32 }),
    ]);
    const child = (JSON.parse(index.data.toString()) as { manifests: { digest: string }[] }).manifests[0]!.digest;
    await policy({ mode: 'enforce', severity: 'high', unscanned: 'deny', inheritIndex: true });
    assert.equal((await pull('team/multi', 'v1')).status, 200, 'an index without its own scan: its children are judged');
    assert.match((await refusal(await pull('team/multi', child))).message, /not scanned/);
    await scan('team/multi', index.digest, [LODASH]);
    assert.match((await refusal(await pull('team/multi', 'v1'))).message, /1 high at or above high/);
    const inherited = await refusal(await pull('team/multi', child));
    assert.match(inherited.message, new RegExp(`1 high at or above high \\(the scan of the index ${index.digest} listing it\\)`));
    await scan('team/multi', index.digest, [LODASH_FIXED]);
    assert.equal((await pull('team/multi', child)).status, 200, 'the clean index scan covers its child');
    await policy({ mode: 'enforce', severity: 'high', unscanned: 'deny', inheritIndex: false });
    assert.match((await refusal(await pull('team/multi', child))).message, /: not scanned, and the policy refuses unscanned artifacts/);
  });

  it('signatures and vulnerabilities compose: either refuses; signature artifacts of a vulnerable image stay pullable', async () => {
    const keys = cosignKeys();
    const keyId = await trust(reg.server, USERS.owner, 'team', 'release', keys.publicPem);
    const sign = async (repository: string, digest: string) => {
      const payload = simpleSigningPayload(`${registryHost(reg.url)}/${repository}`, digest);
      return pushCosignTag(dev(), { repository, digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 0 }, [
        { payload, signature: cosignSign(keys.privateKey, payload) },
      ]);
    };
    await policy({ mode: 'enforce', severity: 'high', unscanned: 'allow' });
    await setMode(reg.server, USERS.owner, 'team', 'enforce');
    try {
      const signedVulnerable = await push('team/both', 'signed-vulnerable');
      await scan('team/both', signedVulnerable, [LODASH]);
      const sig = await sign('team/both', signedVulnerable);
      const unsignedClean = await push('team/both', 'unsigned-clean');
      await scan('team/both', unsignedClean, [LODASH_FIXED]);
      const signedClean = await push('team/both', 'signed-clean');
      await scan('team/both', signedClean, [LODASH_FIXED]);
      await sign('team/both', signedClean);

      assert.match((await refusal(await pull('team/both', 'signed-vulnerable'))).message, /\(policy: vulnerabilities\)$/);
      assert.match((await refusal(await pull('team/both', 'unsigned-clean'))).message, /\(policy: signatures\)$/);
      assert.equal((await pull('team/both', 'signed-clean')).status, 200);
      assert.equal((await pull('team/both', `${signedVulnerable.replace(':', '-')}.sig`)).status, 200, 'cosign verify reads the .sig tag');
      assert.equal((await pull('team/both', sig)).status, 200);
      assert.equal((await dev().fetch(`/v2/team/both/referrers/${signedVulnerable}`)).status, 200);
    } finally {
      await setMode(reg.server, USERS.owner, 'team', 'off');
      assert.equal((await api(reg.server, 'DELETE', `/projects/team/signature-policy/keys/${keyId}`, USERS.owner)).status, 204);
    }
  });

  it('skopeo: copying a clean image works; a vulnerable one fails with the policy and counts named', async () => {
    await policy({ mode: 'enforce', severity: 'high', unscanned: 'deny' });
    const host = registryHost(reg.url);
    const clean = await push('team/cli', 'clean', makeImage({ layers: 1, layerSize: 256 }));
    await scan('team/cli', clean, [LODASH_FIXED]);
    const bad = await push('team/cli', 'vulnerable', makeImage({ layers: 1, layerSize: 256 }));
    await scan('team/cli', bad, [OPENSSL, LODASH]);
    const creds = ['--src-tls-verify=false', '--src-creds', 'dev:dev-password'];
    await sandbox.skopeo(['copy', ...creds, `docker://${host}/team/cli:clean`, `dir:${sandbox.path('clean')}`]);
    const refused = await sandbox.skopeo(['copy', ...creds, `docker://${host}/team/cli:vulnerable`, `dir:${sandbox.path('vulnerable')}`], {
      allowFailure: true,
    });
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr,
      /vulnerability policy of project team \(mode enforce, severity high\): 1 critical, 1 high at or above high/,
    );
    const byDigest = await sandbox.skopeo(
      ['copy', ...creds, `docker://${host}/team/cli@${bad}`, `dir:${sandbox.path('vulnerable-digest')}`],
      { allowFailure: true },
    );
    assert.notEqual(byDigest.code, 0);
    assert.match(byDigest.stderr, /1 critical, 1 high at or above high/);
  });

  it('audit: the pull is served and the violation recorded once in the audit log (vulnerability.violation)', async () => {
    await policy({ mode: 'audit', severity: 'high' });
    const digest = await push('team/audited', 'v1');
    await scan('team/audited', digest, [OPENSSL]);
    assert.equal((await pull('team/audited', 'v1')).status, 200);
    assert.equal((await pull('team/audited', 'v1')).status, 200);
    const entries = await eventually(async () => {
      const found = (await auditLog(reg.server)).filter(
        (e) => e.action === 'vulnerability.violation' && e.target === `team/audited@${digest}`,
      );
      return found.length > 0 ? found : null;
    }, 'the violation in the audit log');
    assert.equal(entries.length, 1, 'recorded once, not once per pull');
    assert.equal(entries[0]!.actor, 'dev');
    assert.deepEqual(entries[0]!.detail, { mode: 'audit', reference: 'v1', reason: '1 critical at or above high' });
    await policy({ mode: 'off' });
    assert.equal((await pull('team/app', 'both')).status, 200, 'mode off serves everything');
  });
});
