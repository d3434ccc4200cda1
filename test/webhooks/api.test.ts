import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, addProject, addUser, adminAuth, api, basic } from '../auth/support.js';
import { RegistryClient, makeImage } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Receiver, fastWebhooks, json } from './support.js';

const SECRET = 'policy-secret-Zq81';
const AUTH_HEADER = 'Bearer receiver-token-7Hk2';

/**
 * Per-project webhook policies over real HTTP: who may manage them (project admins of that
 * project, system admins; another tenant's project is 404), secrets sealed at rest and never
 * returned, filters, the delivery log and redelivery.
 */
describe('webhooks: project policies through the admin API', () => {
  let receiver: Receiver;
  let server: TestServer;
  let pusher: RegistryClient;
  const alice = basic('alice', 'alice-pass-1');
  const dev = basic('dev', 'dev-pass-1');
  let policyId: number;
  let betaPolicyId: number;
  const responses: string[] = [];

  const call = async (method: string, path: string, authorization: string, body?: unknown) => {
    const res = await api(server, method, path, authorization, body);
    const text = await res.text();
    responses.push(text);
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  before(async () => {
    receiver = await Receiver.start();
    server = await startTestServer({
      ...fastWebhooks([]),
      auth: { mode: 'basic', admin: { password: ADMIN_PASSWORD } },
      secrets: { key: randomBytes(32).toString('base64') },
    });
    await addProject(server, 'alpha');
    await addProject(server, 'beta');
    await addUser(server, 'alice', 'alice-pass-1');
    await addUser(server, 'dev', 'dev-pass-1');
    assert.equal((await api(server, 'PUT', '/projects/alpha/members/alice', adminAuth(), { role: 'project-admin' })).status, 204);
    assert.equal((await api(server, 'PUT', '/projects/alpha/members/dev', adminAuth(), { role: 'developer' })).status, 204);
    pusher = new RegistryClient(server.url, { authorization: adminAuth() });
  });
  after(async () => {
    await server?.destroy();
    await receiver?.stop();
  });

  it('a project admin creates a policy; the answer says a secret and an Authorization header are set, never what they are', async () => {
    const created = await call('POST', '/projects/alpha/webhooks', alice, {
      name: 'ci',
      url: receiver.url('/alpha'),
      format: 'harbor',
      events: ['artifact.pushed'],
      repositories: ['app-*'],
      tags: ['v*'],
      authHeader: AUTH_HEADER,
      secret: SECRET,
    });
    assert.equal(created.status, 201);
    policyId = created.body.id;
    assert.equal(created.body.hasSecret, true);
    assert.equal(created.body.hasAuthHeader, true);
    assert.equal(created.body.secret, undefined);
    const admins = await call('POST', '/projects/beta/webhooks', adminAuth(), { name: 'b', url: receiver.url('/beta') });
    assert.equal(admins.status, 201, 'a system admin manages any project');
    betaPolicyId = admins.body.id;
    const listed = await call('GET', '/projects/alpha/webhooks', alice);
    assert.deepEqual(
      listed.body.map((p: { name: string }) => p.name),
      ['ci'],
    );
  });

  it('the secret and the Authorization header are sealed in the database', async () => {
    const db = server.stores.metadata.db as unknown as {
      selectFrom(t: string): {
        select(c: string[]): {
          where(c: string, o: string, v: number): { executeTakeFirstOrThrow(): Promise<{ secret: string; auth_header: string }> };
        };
      };
    };
    const row = await db
      .selectFrom('webhook_policies')
      .select(['secret', 'auth_header'])
      .where('id', '=', policyId)
      .executeTakeFirstOrThrow();
    assert.match(row.secret, /^berth:v1:/);
    assert.match(row.auth_header, /^berth:v1:/);
    assert.ok(!row.secret.includes(SECRET) && !row.auth_header.includes('receiver-token'));
  });

  it('refusals: 401 without credentials, 403 for a member who is not its admin, 404 for another tenant, 400 for a bad body', async () => {
    assert.equal((await fetch(`${server.url}/api/v1/projects/alpha/webhooks`)).status, 401);
    assert.equal((await call('GET', '/projects/alpha/webhooks', dev)).status, 403);
    assert.equal((await call('POST', '/projects/alpha/webhooks', dev, { name: 'x', url: receiver.url('/x') })).status, 403);
    assert.equal((await call('GET', '/projects/beta/webhooks', alice)).status, 404, 'beta is not hers: not found, not forbidden');
    assert.equal((await call('GET', '/projects/nope/webhooks', alice)).status, 404);
    assert.equal((await call('GET', `/projects/alpha/webhooks/${betaPolicyId}`, alice)).status, 404, "beta's policy id under alpha");
    assert.equal((await call('DELETE', `/projects/beta/webhooks/${betaPolicyId}`, alice)).status, 404);
    assert.equal((await call('GET', '/webhooks/deliveries', alice)).status, 403, 'the global log is for system admins');
    const bad = await call('POST', '/projects/alpha/webhooks', alice, { name: 'bad', url: 'ftp://x', format: 'xml' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].code, 'INVALID_ARGUMENT');
    assert.equal((await call('POST', '/projects/alpha/webhooks', alice, { name: 'ci', url: receiver.url('/dup') })).status, 409);
  });

  it('only matching pushes are sent, with the Authorization header and the signature', async () => {
    await pusher.pushImage('alpha/other', 'v1', makeImage({ layers: 1, layerSize: 32 }));
    await pusher.pushImage('alpha/app-1', 'latest', makeImage({ layers: 1, layerSize: 32 }));
    const image = makeImage({ layers: 1, layerSize: 32 });
    await pusher.pushImage('alpha/app-1', 'v2', image);
    await receiver.waitFor('the v2 push', () => receiver.delivered('/alpha').length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const got = receiver.delivered('/alpha');
    assert.equal(got.length, 1, 'alpha/other (repository filter) and :latest (tag filter) are not sent');
    assert.equal(json(got[0]!).event_data.resources[0].tag, 'v2');
    assert.equal(json(got[0]!).event_data.resources[0].digest, image.manifest.digest);
    assert.equal(json(got[0]!).operator, 'admin');
    assert.equal(json(got[0]!).event_data.repository.repo_type, 'private');
    assert.equal(got[0]!.headers.authorization, AUTH_HEADER);
    assert.equal(got[0]!.headers['x-berth-signature'], `sha256=${createHmac('sha256', SECRET).update(got[0]!.body).digest('hex')}`);
    assert.equal(receiver.delivered('/beta').length, 0);
  });

  it('the delivery log and a redelivery, through the project and the admin endpoints', async () => {
    const log = await call('GET', `/projects/alpha/webhooks/${policyId}/deliveries`, alice);
    assert.equal(log.status, 200);
    assert.equal(log.body.length, 1);
    const [entry] = log.body;
    assert.equal(entry.status, 'delivered');
    assert.equal(entry.attempts, 1);
    assert.equal(entry.lastStatusCode, 200);
    assert.equal(typeof entry.lastLatencyMs, 'number');
    assert.equal(entry.body, undefined, 'listings leave bodies out');
    assert.equal((await call('GET', `/projects/alpha/webhooks/${policyId}/deliveries?status=bogus`, alice)).status, 400);

    const again = await call('POST', `/projects/alpha/webhooks/${policyId}/deliveries/${entry.id}/redeliver`, alice);
    assert.equal(again.status, 202);
    assert.equal(again.body.redeliveryOf, entry.id);
    assert.equal(again.body.eventId, entry.eventId);
    await receiver.waitFor('the redelivery', () => receiver.delivered('/alpha').length === 2);
    assert.equal(receiver.delivered('/alpha')[1]!.headers['x-berth-event-id'], entry.eventId);
    assert.equal((await call('POST', `/projects/alpha/webhooks/${policyId}/deliveries/${entry.id}/redeliver`, dev)).status, 403);
    assert.equal(
      (await call('POST', `/projects/beta/webhooks/${betaPolicyId}/deliveries/${entry.id}/redeliver`, adminAuth())).status,
      404,
      "alpha's delivery is not beta's",
    );

    const one = await call('GET', `/webhooks/deliveries/${entry.id}`, adminAuth());
    assert.equal(one.status, 200);
    assert.equal(one.body.contentType, 'application/json');
    assert.equal(JSON.parse(one.body.body).type, 'PUSH_ARTIFACT');
    const all = await call('GET', '/webhooks/deliveries?endpoint=policy:' + policyId, adminAuth());
    assert.equal(all.body.length, 2);
    assert.equal((await call('POST', '/webhooks/deliveries/999999/redeliver', adminAuth())).status, 404);
  });

  it('PATCH keeps omitted fields, null clears the secret; DELETE removes the policy', async () => {
    const patched = await call('PATCH', `/projects/alpha/webhooks/${policyId}`, alice, { enabled: false, secret: null });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.enabled, false);
    assert.equal(patched.body.hasSecret, false);
    assert.equal(patched.body.hasAuthHeader, true);
    assert.deepEqual(patched.body.tags, ['v*']);
    assert.equal((await call('DELETE', `/projects/alpha/webhooks/${policyId}`, alice)).status, 204);
    assert.equal((await call('GET', `/projects/alpha/webhooks/${policyId}`, alice)).status, 404);
  });

  it('no API answer ever contained the secret or the Authorization header', () => {
    for (const text of responses) {
      assert.ok(!text.includes(SECRET) && !text.includes('receiver-token'), text);
    }
  });
});
