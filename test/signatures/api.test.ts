import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { api, auditLog, useAuthServer } from '../auth/support.js';
import { clientAs, refusal, seedTeam, smallImage, USERS } from '../policies/tags-support.js';
import { cosignKeys, trust } from './support.js';

/**
 * The trust-policy admin API and the signature status endpoint over HTTP: who may read and
 * change a policy (members read, project admins change, others get 404), bad input in the
 * spec's error format, changes audited.
 */
describe('signature trust policy API', () => {
  const reg = useAuthServer('basic', {}, {}, { setup: seedTeam });
  const key = cosignKeys();
  let digest: string;

  before(async () => {
    const image = smallImage();
    await clientAs(reg.server, USERS.dev).pushImage('team/app', 'v1', image);
    digest = image.manifest.digest;
  });

  it('a project without a policy reads as mode off, with the keyless limitation stated', async () => {
    const res = await api(reg.server, 'GET', '/projects/team/signature-policy', USERS.guest);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { mode: string; inheritIndex: boolean; keys: unknown[]; keyless: string };
    assert.deepEqual([body.mode, body.inheritIndex, body.keys], ['off', true, []]);
    assert.match(body.keyless, /keyless signatures .* are not verified by Berth/);
  });

  it('project admins set the mode and add keys and certificates; members read them; the changes are audited', async () => {
    const put = await api(reg.server, 'PUT', '/projects/team/signature-policy', USERS.owner, { mode: 'audit' });
    assert.equal(put.status, 200, await put.clone().text());
    assert.equal(((await put.json()) as { inheritIndex: boolean }).inheritIndex, true, 'default');
    const id = await trust(reg.server, USERS.owner, 'team', 'ci key', key.publicPem);
    const read = (await (await api(reg.server, 'GET', '/projects/team/signature-policy', USERS.guest)).json()) as {
      mode: string;
      keys: { id: number; name: string; kind: string; fingerprint: string; createdBy: string }[];
    };
    assert.equal(read.mode, 'audit');
    assert.deepEqual(
      read.keys.map((k) => [k.id, k.name, k.kind, k.createdBy]),
      [[id, 'ci key', 'key', 'owner']],
    );
    assert.match(read.keys[0]!.fingerprint, /^[0-9a-f]{64}$/);
    const actions = (await auditLog(reg.server)).filter((e) => e.target === 'team/signature-policy').map((e) => e.action);
    assert.deepEqual(actions, ['signature-policy.update', 'signature-key.add']);
  });

  it('refuses bad input: unknown mode, a private key, two PEMs, garbage, a duplicate name, an unknown key id', async () => {
    const bad = async (method: string, path: string, body: unknown, status: number, message: RegExp) => {
      const error = await refusal(await api(reg.server, method, path, USERS.owner, body));
      assert.equal(error.status, status, error.message);
      assert.match(error.message, message);
    };
    await bad('PUT', '/projects/team/signature-policy', { mode: 'strict' }, 400, /mode/);
    await bad('PUT', '/projects/team/signature-policy', { mode: 'enforce', extra: 1 }, 400, /invalid request body/);
    const privatePem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await bad('POST', '/projects/team/signature-policy/keys', { name: 'secret', pem: privatePem }, 400, /this is a private key/);
    await bad('POST', '/projects/team/signature-policy/keys', { name: 'two', pem: key.publicPem + key.publicPem }, 400, /2 PEM blocks/);
    await bad('POST', '/projects/team/signature-policy/keys', { name: 'junk', pem: 'hello' }, 400, /no PEM block/);
    await bad(
      'POST',
      '/projects/team/signature-policy/keys',
      { name: 'ci key', pem: key.publicPem },
      409,
      /already trusts a key named "ci key"/,
    );
    await bad('DELETE', '/projects/team/signature-policy/keys/99999', undefined, 404, /has no trusted key 99999/);
    await bad('DELETE', '/projects/team/signature-policy/keys/abc', undefined, 404, /has no trusted key abc/);
  });

  it("who may: anonymous 401, a developer or guest may not change (403), another project's admin sees nothing (404)", async () => {
    assert.equal((await fetch(`${reg.url}/api/v1/projects/team/signature-policy`)).status, 401);
    for (const who of [USERS.dev, USERS.guest]) {
      assert.equal((await api(reg.server, 'PUT', '/projects/team/signature-policy', who, { mode: 'off' })).status, 403);
      assert.equal(
        (await api(reg.server, 'POST', '/projects/team/signature-policy/keys', who, { name: 'x', pem: key.publicPem })).status,
        403,
      );
      assert.equal((await api(reg.server, 'DELETE', '/projects/team/signature-policy/keys/1', who)).status, 403);
    }
    assert.equal((await api(reg.server, 'GET', '/projects/team/signature-policy', USERS.outsider)).status, 404);
    assert.equal((await api(reg.server, 'PUT', '/projects/team/signature-policy', USERS.outsider, { mode: 'off' })).status, 404);
    assert.equal(
      (await api(reg.server, 'GET', `/projects/team/repositories/app/artifacts/${digest}/signatures`, USERS.outsider)).status,
      404,
    );
    assert.equal((await fetch(`${reg.url}/api/v1/projects/team/repositories/app/artifacts/${digest}/signatures`)).status, 401);
  });

  it('status: members read it; an unknown digest is 404, a malformed one 400', async () => {
    const ok = await api(reg.server, 'GET', `/projects/team/repositories/app/artifacts/${digest}/signatures`, USERS.guest);
    assert.equal(ok.status, 200);
    const body = (await ok.json()) as { repository: string; digest: string; verified: boolean; policy: { mode: string } };
    assert.deepEqual([body.repository, body.digest, body.verified, body.policy.mode], ['team/app', digest, false, 'audit']);
    const unknown = await api(
      reg.server,
      'GET',
      `/projects/team/repositories/app/artifacts/sha256:${'0'.repeat(64)}/signatures`,
      USERS.guest,
    );
    assert.equal(unknown.status, 404);
    const malformed = await refusal(
      await api(reg.server, 'GET', '/projects/team/repositories/app/artifacts/sha256:xyz/signatures', USERS.guest),
    );
    assert.equal(malformed.status, 400);
    assert.equal(malformed.code, 'DIGEST_INVALID');
  });

  it('the endpoints are in openapi.json with their access', async () => {
    const doc = (await (await fetch(`${reg.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { 'x-berth-needs': string }>>;
    };
    assert.equal(doc.paths['/api/v1/projects/{project}/signature-policy']?.put?.['x-berth-needs'], 'manage-project');
    assert.ok(doc.paths['/api/v1/projects/{project}/signature-policy/keys/{id}']?.delete);
    assert.match(
      doc.paths['/api/v1/projects/{project}/repositories/{repository}/artifacts/{digest}/signatures']?.get?.['x-berth-needs'] ?? '',
      /pull/,
    );
  });
});
