import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, auditLog, useAuthServer } from '../auth/support.js';
import { pushIndex } from '../gc/support.js';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { makeImage, OCI_INDEX, type Image } from '../helpers/registry-client.js';
import { eventually } from '../policies/quota-support.js';
import { clientAs, refusal, seedTeam, smallImage, USERS } from '../policies/tags-support.js';
import {
  cosignKeys,
  cosignSign,
  pushBundle,
  pushCosignTag,
  setMode,
  simpleSigningPayload,
  targetOf,
  trust,
  type Target,
} from './support.js';

/**
 * The trust policy on pulls, over real HTTP and with skopeo: enforce refuses a manifest without
 * a valid signature (by tag or digest, GET or HEAD) with 403 DENIED naming the policy, serves
 * signed ones and the signature artifacts themselves, lets children of a verified index through
 * when configured; audit serves and records; verdicts follow signatures and keys as they change.
 */
describe('signature policy on pulls', () => {
  const reg = useAuthServer('basic', {}, { storage: { delete: { enabled: true } } }, { setup: seedTeam });
  const release = cosignKeys();
  let releaseKeyId: number;
  let sandbox: ClientSandbox;

  const dev = () => clientAs(reg.server, USERS.dev);
  const push = async (repository: string, tag: string, image: Image = smallImage()): Promise<Target> => {
    await dev().pushImage(repository, tag, image);
    return targetOf(repository, image.manifest);
  };
  const sign = async (target: Target, key = release.privateKey) => {
    const payload = simpleSigningPayload(`${registryHost(reg.url)}/${target.repository}`, target.digest);
    return pushCosignTag(dev(), target, [{ payload, signature: cosignSign(key, payload) }]);
  };
  const pull = (repository: string, reference: string, method = 'GET') =>
    dev().fetch(`/v2/${repository}/manifests/${reference}`, {
      method,
      headers: { accept: `application/vnd.oci.image.manifest.v1+json, ${OCI_INDEX}` },
    });

  before(async () => {
    requireTools(['skopeo']);
    sandbox = ClientSandbox.create();
    releaseKeyId = await trust(reg.server, USERS.owner, 'team', 'release', release.publicPem);
    await setMode(reg.server, USERS.owner, 'team', 'enforce');
  });
  after(() => sandbox?.destroy());

  it('enforce: an unsigned manifest is refused by tag and by digest, GET and HEAD, with 403 DENIED naming the policy', async () => {
    const target = await push('team/app', 'unsigned');
    const res = await pull('team/app', 'unsigned');
    const error = await refusal(res);
    assert.equal(error.status, 403);
    assert.equal(error.code, 'DENIED');
    assert.match(
      error.message,
      new RegExp(
        `manifest team/app@${target.digest} has no valid signature by a key or certificate the signature trust policy of project team \\(mode enforce\\) trusts: no signature found`,
      ),
    );
    assert.match(error.message, /\(policy: signatures\)$/);
    assert.equal((await pull('team/app', target.digest)).status, 403);
    assert.equal((await pull('team/app', 'unsigned', 'HEAD')).status, 403);
    assert.equal((await pull('team/app', target.digest, 'HEAD')).status, 403);
  });

  it('enforce: a manifest signed by the trusted key is served; its signature artifact (by tag and digest) and the referrers stay pullable', async () => {
    const target = await push('team/app', 'signed');
    const sigDigest = await sign(target);
    assert.equal((await pull('team/app', 'signed')).status, 200);
    assert.equal((await pull('team/app', target.digest, 'HEAD')).status, 200);
    const sigTag = `${target.digest.replace(':', '-')}.sig`;
    const sig = await pull('team/app', sigTag);
    assert.equal(sig.status, 200, 'cosign verify reads the .sig tag');
    assert.equal(sig.headers.get('docker-content-digest'), sigDigest);
    assert.equal((await pull('team/app', sigDigest)).status, 200);
    const referrers = await dev().fetch(`/v2/team/app/referrers/${target.digest}`);
    assert.equal(referrers.status, 200);
  });

  it('enforce: a signature by an unknown key or over another digest does not count', async () => {
    const target = await push('team/app', 'stranger');
    await sign(target, cosignKeys().privateKey);
    const error = await refusal(await pull('team/app', 'stranger'));
    assert.equal(error.status, 403);
    assert.match(error.message, /1 signature\(s\) found, none valid — cosign: no trusted key verifies the signature/);
  });

  it('a signature pushed after a refusal lets the next pull through at once; Sigstore bundles count; bundle referrers stay pullable', async () => {
    const target = await push('team/late', 'v1');
    assert.equal((await pull('team/late', 'v1')).status, 403);
    const bundle = await pushBundle(dev(), target, release.privateKey);
    assert.equal((await pull('team/late', 'v1')).status, 200);
    assert.equal((await pull('team/late', bundle)).status, 200);
  });

  it('index children inherit a verified index when inheritIndex is on, not when off', async () => {
    const index = await pushIndex(dev(), 'team/multi', 'v1', [
      makeImage({ layers: 1, layerSize: 32 }),
      makeImage({ layers: 1, layerSize: 32 }),
    ]);
    const child = (JSON.parse(index.data.toString()) as { manifests: { digest: string }[] }).manifests[0]!.digest;
    assert.equal((await pull('team/multi', 'v1')).status, 403);
    await sign({ repository: 'team/multi', digest: index.digest, mediaType: OCI_INDEX, size: index.size });
    assert.equal((await pull('team/multi', 'v1')).status, 200);
    assert.equal((await pull('team/multi', child)).status, 200, 'the child of the signed index');
    await setMode(reg.server, USERS.owner, 'team', 'enforce', false);
    try {
      const error = await refusal(await pull('team/multi', child));
      assert.equal(error.status, 403);
      assert.match(error.message, /no signature found/);
    } finally {
      await setMode(reg.server, USERS.owner, 'team', 'enforce', true);
    }
  });

  it('skopeo: copying a signed image works; an unsigned one fails with the policy named', async () => {
    const host = registryHost(reg.url);
    await sign(await push('team/cli', 'signed', makeImage({ layers: 1, layerSize: 256 })));
    await push('team/cli', 'unsigned', makeImage({ layers: 1, layerSize: 256 }));
    const creds = ['--src-tls-verify=false', '--src-creds', 'dev:dev-password'];
    await sandbox.skopeo(['copy', ...creds, `docker://${host}/team/cli:signed`, `dir:${sandbox.path('signed')}`]);
    const refused = await sandbox.skopeo(['copy', ...creds, `docker://${host}/team/cli:unsigned`, `dir:${sandbox.path('unsigned')}`], {
      allowFailure: true,
    });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /signature trust policy of project team \(mode enforce\)/);
    const inspect = await sandbox.skopeo(
      ['inspect', '--tls-verify=false', '--creds', 'dev:dev-password', `docker://${host}/team/cli:unsigned`],
      { allowFailure: true },
    );
    assert.notEqual(inspect.code, 0);
    assert.match(inspect.stderr, /denied|DENIED/);
  });

  it('removing the trusted key refuses what it verified at once; adding it back serves it again', async () => {
    const target = await push('team/keys', 'v1');
    await sign(target);
    assert.equal((await pull('team/keys', 'v1')).status, 200);
    const del = await api(reg.server, 'DELETE', `/projects/team/signature-policy/keys/${releaseKeyId}`, USERS.owner);
    assert.equal(del.status, 204);
    const error = await refusal(await pull('team/keys', 'v1'));
    assert.equal(error.status, 403);
    assert.match(error.message, /the trust policy has no public key to verify it with/);
    releaseKeyId = await trust(reg.server, USERS.owner, 'team', 'release', release.publicPem);
    assert.equal((await pull('team/keys', 'v1')).status, 200);
  });

  it('deleting the signature refuses the image again (within the cache refresh)', async () => {
    const target = await push('team/unsign', 'v1');
    const sigDigest = await sign(target);
    assert.equal((await pull('team/unsign', 'v1')).status, 200);
    const del = await clientAs(reg.server, USERS.owner).fetch(`/v2/team/unsign/manifests/${sigDigest}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    await eventually(async () => (await pull('team/unsign', 'v1')).status === 403, 'the pull refused once the signature is gone', 3000);
  });

  it('audit: the pull is served and the violation recorded once in the audit log (signature.violation)', async () => {
    await setMode(reg.server, USERS.owner, 'team', 'audit');
    try {
      const target = await push('team/audited', 'v1');
      assert.equal((await pull('team/audited', 'v1')).status, 200);
      assert.equal((await pull('team/audited', 'v1')).status, 200);
      const entries = await eventually(async () => {
        const found = (await auditLog(reg.server)).filter(
          (e) => e.action === 'signature.violation' && e.target === `team/audited@${target.digest}`,
        );
        return found.length > 0 ? found : null;
      }, 'the violation in the audit log');
      assert.equal(entries.length, 1, 'recorded once, not once per pull');
      assert.equal(entries[0]!.actor, 'dev');
      assert.equal(entries[0]!.detail?.mode, 'audit');
      assert.match(String(entries[0]!.detail?.reason), /no signature found/);
    } finally {
      await setMode(reg.server, USERS.owner, 'team', 'enforce');
    }
  });

  it('off: nothing is checked; another project without a policy is not affected', async () => {
    await dev().pushImage('team/app', 'whatever', smallImage());
    assert.equal((await pull('team/app', 'whatever')).status, 403);
    const outsider = clientAs(reg.server, USERS.outsider);
    await outsider.pushImage('other/app', 'v1', smallImage());
    assert.equal((await outsider.fetch('/v2/other/app/manifests/v1')).status, 200);
    await setMode(reg.server, USERS.owner, 'team', 'off');
    try {
      assert.equal((await pull('team/app', 'whatever')).status, 200);
    } finally {
      await setMode(reg.server, USERS.owner, 'team', 'enforce');
    }
  });
});
