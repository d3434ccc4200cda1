import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { useAuthServer } from '../auth/support.js';
import { tempDir } from '../helpers/server.js';
import { clientAs, seedTeam, smallImage, USERS } from '../policies/tags-support.js';
import {
  cosignKeys,
  cosignSign,
  makePki,
  pushBundle,
  pushCosignReferrer,
  pushCosignTag,
  pushNotation,
  simpleSigningPayload,
  status,
  targetOf,
  trust,
  type Pki,
  type Target,
} from './support.js';

/**
 * What Berth verifies, signature by signature, through GET …/artifacts/:digest/signatures:
 * cosign (legacy tag and referrers mode), cosign v3 Sigstore bundles (DSSE) and Notation JWS
 * envelopes, made as the clients make them and pushed over HTTP; each valid one names the key or
 * certificate that verified it, each other one why not.
 */
describe('signature verification', () => {
  const reg = useAuthServer('basic', {}, {}, { setup: seedTeam });
  const trusted = cosignKeys();
  const stranger = cosignKeys();
  let pki: Pki;
  let otherPki: Pki;
  const dirs: string[] = [];

  const pushed = async (repository: string): Promise<Target> => {
    const image = smallImage();
    await clientAs(reg.server, USERS.dev).pushImage(repository, 'latest', image);
    return targetOf(repository, image.manifest);
  };
  const dev = () => clientAs(reg.server, USERS.dev);
  const signedPayload = (target: Target, key = trusted.privateKey) => {
    const payload = simpleSigningPayload(`registry.example/${target.repository}`, target.digest);
    return { payload, signature: cosignSign(key, payload) };
  };

  before(async () => {
    dirs.push(tempDir('berth-pki-'), tempDir('berth-pki-'));
    [pki, otherPki] = await Promise.all([makePki(dirs[0]!, 'Trusted'), makePki(dirs[1]!, 'Other')]);
    await trust(reg.server, USERS.owner, 'team', 'release-key', trusted.publicPem);
    await trust(reg.server, USERS.owner, 'team', 'notary-root', pki.rootPem);
  });
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('an unsigned artifact has no signatures and is not verified', async () => {
    const target = await pushed('team/unsigned');
    const found = await status(reg.server, USERS.guest, target);
    assert.equal(found.verified, false);
    assert.deepEqual(found.signatures, []);
  });

  it('cosign legacy tag: a valid signature names the trusted key; several layers are judged one by one', async () => {
    const target = await pushed('team/cosign');
    const tampered = signedPayload(target);
    const sigDigest = await pushCosignTag(dev(), target, [
      signedPayload(target),
      {
        payload: Buffer.from(tampered.payload.toString().replace('"optional":null', '"optional":{"x":"y"}')),
        signature: tampered.signature,
      },
      signedPayload(target, stranger.privateKey),
    ]);
    const found = await status(reg.server, USERS.guest, target);
    assert.equal(found.verified, true);
    assert.equal(found.signatures.length, 3);
    const [valid, altered, untrusted] = found.signatures;
    assert.deepEqual(
      { ...valid, layer: undefined },
      {
        format: 'cosign',
        source: { kind: 'tag', tag: `${target.digest.replace(':', '-')}.sig` },
        manifest: sigDigest,
        layer: undefined,
        valid: true,
        signer: { kind: 'key', id: valid!.signer!.id, name: 'release-key', fingerprint: valid!.signer!.fingerprint },
      },
    );
    assert.equal(altered!.valid, false);
    assert.match(altered!.reason!, /no trusted key verifies the signature over the payload .*release-key/);
    assert.equal(untrusted!.valid, false);
    assert.match(untrusted!.reason!, /no trusted key verifies/);
  });

  it('cosign: a payload naming another digest is refused even when the trusted key signed it', async () => {
    const target = await pushed('team/wrongdigest');
    const other = await pushed('team/wrongdigest-other');
    const payload = simpleSigningPayload(`registry.example/${target.repository}`, other.digest);
    await pushCosignTag(dev(), target, [{ payload, signature: cosignSign(trusted.privateKey, payload) }]);
    const found = await status(reg.server, USERS.guest, target);
    assert.equal(found.verified, false);
    assert.match(
      found.signatures[0]!.reason!,
      new RegExp(`payload signs "${other.digest}" \\(critical.image.docker-manifest-digest\\), not ${target.digest}`),
    );
  });

  it("cosign: the payload type must be cosign's, and capitalised keys (old payloads) are read", async () => {
    const target = await pushed('team/payloadtype');
    const wrongType = Buffer.from(
      JSON.stringify({
        critical: { identity: { 'docker-reference': 'x' }, image: { 'docker-manifest-digest': target.digest }, type: 'something else' },
        optional: null,
      }),
    );
    const capitalised = Buffer.from(
      JSON.stringify({
        Critical: {
          Identity: { 'docker-reference': 'x' },
          Image: { 'Docker-manifest-digest': target.digest },
          Type: 'cosign container image signature',
        },
        Optional: null,
      }),
    );
    await pushCosignTag(dev(), target, [
      { payload: wrongType, signature: cosignSign(trusted.privateKey, wrongType) },
      { payload: capitalised, signature: cosignSign(trusted.privateKey, capitalised) },
    ]);
    const found = await status(reg.server, USERS.guest, target);
    assert.match(found.signatures[0]!.reason!, /critical.type is "something else"/);
    assert.equal(found.signatures[1]!.valid, true);
  });

  it('cosign referrers mode (OCI 1.1): found through the referrers API and verified', async () => {
    const target = await pushed('team/referrer');
    const sigDigest = await pushCosignReferrer(dev(), target, [signedPayload(target)]);
    const found = await status(reg.server, USERS.guest, target);
    assert.equal(found.verified, true);
    assert.deepEqual(
      found.signatures.map((s) => [s.format, s.source.kind, s.manifest, s.valid]),
      [['cosign', 'referrer', sigDigest, true]],
    );
  });

  it('Sigstore bundle (cosign v3): DSSE over the in-toto statement verifies; tampered, untrusted, another subject and an attestation do not', async () => {
    const target = await pushed('team/bundle');
    const other = await pushed('team/bundle-other');
    await pushBundle(dev(), target, trusted.privateKey);
    await pushBundle(dev(), target, trusted.privateKey, { tamper: true });
    await pushBundle(dev(), target, stranger.privateKey);
    await pushBundle(dev(), target, trusted.privateKey, { subjectDigest: other.digest });
    await pushBundle(dev(), target, trusted.privateKey, { predicateType: 'https://slsa.dev/provenance/v1' });
    const found = await status(reg.server, USERS.guest, target);
    assert.equal(found.verified, true);
    const reasons = found.signatures.map((s) => (s.valid ? `valid:${s.signer!.name}` : s.reason!)).sort();
    assert.equal(found.signatures.length, 5);
    assert.ok(reasons.includes('valid:release-key'), reasons.join('\n'));
    assert.equal(
      reasons.filter((r) => /no trusted key verifies the signature over the DSSE envelope/.test(r)).length,
      2,
      reasons.join('\n'),
    );
    assert.ok(
      reasons.some((r) => r === `the in-toto statement's subject does not name ${target.digest}`),
      reasons.join('\n'),
    );
    assert.ok(
      reasons.some((r) => /an attestation \(predicateType "https:\/\/slsa.dev\/provenance\/v1"\), not a signature/.test(r)),
      reasons.join('\n'),
    );
  });

  it('Notation: a JWS envelope chaining to the trusted root verifies, naming the root and the signer', async () => {
    const target = await pushed('team/notation');
    await pushNotation(dev(), target, pki.leaf);
    const found = await status(reg.server, USERS.guest, target);
    assert.equal(found.verified, true);
    assert.equal(found.signatures[0]!.format, 'notation');
    assert.equal(found.signatures[0]!.signer!.kind, 'certificate');
    assert.equal(found.signatures[0]!.signer!.name, 'notary-root');
    assert.match(found.signatures[0]!.signer!.subject!, /CN=Trusted signer/);
  });

  it('Notation: an untrusted root, an expired certificate, another digest and a signing time outside the validity are refused', async () => {
    const target = await pushed('team/notation-bad');
    await pushNotation(dev(), target, otherPki.leaf);
    await pushNotation(dev(), target, pki.expired);
    await pushNotation(dev(), target, pki.leaf, { digest: (await pushed('team/notation-else')).digest });
    await pushNotation(dev(), target, pki.leaf, { signingTime: new Date(Date.now() - 3 * 86_400_000) });
    const found = await status(reg.server, USERS.guest, target);
    assert.equal(found.verified, false);
    const reasons = found.signatures.map((s) => s.reason!).join('\n');
    assert.match(reasons, /certificate chain of "CN=Other signer, O=Berth Tests" does not lead to a trusted certificate/);
    assert.match(reasons, /certificate "CN=Trusted expired, O=Berth Tests" expired at /);
    assert.match(reasons, /the payload's targetArtifact is "sha256:[0-9a-f]{64}", not /);
    assert.match(reasons, /certificate "CN=Trusted signer, O=Berth Tests" is not valid before .* \(checked at /);
  });
});
