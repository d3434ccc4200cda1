import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { RegistryClient, makeImage, type Image } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Receiver, fastWebhooks, json, type Received } from './support.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SECRET = 'shared-secret-1';

/**
 * One push, one (batched) pull, a tag delete, a manifest delete and a GC run, sent to four
 * configured endpoints — one per format — on a real HTTP receiver; each body checked field by field.
 */
describe('webhooks: the three formats, field by field', () => {
  let receiver: Receiver;
  let server: TestServer;
  let client: RegistryClient;
  let image: Image;
  let byDigest: Image;
  const repo = 'shop/web';

  before(async () => {
    receiver = await Receiver.start();
    const endpoint = (name: string, format: string, extra: Record<string, unknown> = {}) => ({
      name,
      url: receiver.url(`/${name}`),
      format,
      ...extra,
    });
    server = await startTestServer(
      fastWebhooks([
        endpoint('dist', 'distribution', { secret: SECRET, headers: { 'X-Token': ['abc'] } }),
        endpoint('dist3', 'distribution-v2', { ignore: { actions: ['pull'] } }),
        endpoint('harbor', 'harbor'),
        endpoint('ce', 'cloudevents'),
      ]),
    );
    client = new RegistryClient(server.url);
    image = makeImage({ layers: 1, layerSize: 64 });
    byDigest = makeImage({ layers: 1, layerSize: 64 });
    await client.pushImage(repo, 'v1', image);
    assert.equal((await client.fetch(`/v2/${repo}/manifests/v1`)).status, 200);
    assert.equal((await client.fetch(`/v2/${repo}/manifests/v1`)).status, 200);
    await server.composition.pulls.flush();
    assert.equal((await client.fetch(`/v2/${repo}/manifests/v1`, { method: 'DELETE' })).status, 202);
    await client.pushImage(repo, byDigest.manifest.digest, byDigest);
    assert.equal((await client.fetch(`/v2/${repo}/manifests/${byDigest.manifest.digest}`, { method: 'DELETE' })).status, 202);
    await server.gc.collector.run();
    // dist and dist3 carry no gc event; ce and harbor get 5 each (push, pull, tag delete, push, delete) + gc.
    await receiver.waitFor(
      'every delivery',
      () =>
        receiver.delivered('/dist').length === 5 &&
        receiver.delivered('/dist3').length === 4 &&
        receiver.delivered('/harbor').length === 6 &&
        receiver.delivered('/ce').length === 6,
    );
  });
  after(async () => {
    await server?.destroy();
    await receiver?.stop();
  });

  const at = (path: string, i: number): Received => receiver.delivered(path)[i]!;

  it('Distribution 2.8 envelope (application/vnd.docker.distribution.events.v1+json): push, pull, tag and manifest deletes', () => {
    const push = at('/dist', 0);
    assert.equal(push.headers['content-type'], 'application/vnd.docker.distribution.events.v1+json');
    assert.equal(push.headers['x-token'], 'abc');
    const envelope = json(push);
    assert.deepEqual(Object.keys(envelope), ['events']);
    assert.equal(envelope.events.length, 1);
    const e = envelope.events[0];
    assert.match(e.id, UUID);
    assert.equal(push.headers['x-berth-event-id'], e.id);
    assert.ok(!Number.isNaN(Date.parse(e.timestamp)) && e.timestamp.endsWith('Z'));
    assert.equal(e.action, 'push');
    assert.deepEqual(e.target, {
      mediaType: image.mediaType,
      size: image.manifest.size,
      length: image.manifest.size,
      digest: image.manifest.digest,
      repository: repo,
      url: `${new URL(e.target.url).origin}/v2/${repo}/manifests/${image.manifest.digest}`,
      tag: 'v1',
    });
    assert.deepEqual(Object.keys(e.request).sort(), ['addr', 'host', 'id', 'method', 'useragent']);
    assert.equal(e.request.method, 'PUT');
    assert.deepEqual(e.actor, {});
    assert.deepEqual(Object.keys(e.source).sort(), ['addr', 'instanceID']);
    assert.match(e.source.instanceID, UUID);

    const pull = json(at('/dist', 1)).events[0];
    assert.equal(pull.action, 'pull');
    assert.equal(pull.request.method, 'GET');
    assert.equal(pull.target.digest, image.manifest.digest);
    assert.equal(pull.target.repository, repo);

    const tagDelete = json(at('/dist', 2)).events[0];
    assert.equal(tagDelete.action, 'delete');
    assert.deepEqual(tagDelete.target, { repository: repo, tag: 'v1' });

    const pushByDigest = json(at('/dist', 3)).events[0];
    assert.equal(pushByDigest.target.tag, undefined);
    const manifestDelete = json(at('/dist', 4)).events[0];
    assert.equal(manifestDelete.action, 'delete');
    assert.deepEqual(manifestDelete.target, { digest: byDigest.manifest.digest, repository: repo });
  });

  it('X-Berth-Signature is sha256=HMAC-SHA256(secret, body), only for endpoints with a secret', () => {
    for (const request of receiver.delivered('/dist')) {
      assert.equal(request.headers['x-berth-signature'], `sha256=${createHmac('sha256', SECRET).update(request.body).digest('hex')}`);
    }
    assert.equal(at('/harbor', 0).headers['x-berth-signature'], undefined);
  });

  it('Distribution 3.x (…events.v2+json) with ignore.actions: pull left out', () => {
    const requests = receiver.delivered('/dist3');
    assert.ok(requests.every((r) => r.headers['content-type'] === 'application/vnd.docker.distribution.events.v2+json'));
    assert.deepEqual(
      requests.map((r) => json(r).events[0].action),
      ['push', 'delete', 'push', 'delete'],
    );
  });

  it('the event id is the same in every format and stable per event', () => {
    const ids = (path: string) => receiver.delivered(path).map((r) => r.headers['x-berth-event-id']);
    const dist = ids('/dist');
    assert.deepEqual(ids('/harbor').slice(0, 5), dist);
    assert.deepEqual(ids('/ce').slice(0, 5), dist);
    assert.equal(new Set(ids('/ce')).size, 6);
  });

  it("Harbor's Default JSON: type, occur_at, operator, event_data.resources and repository", () => {
    const push = at('/harbor', 0);
    assert.equal(push.headers['content-type'], 'application/json');
    const body = json(push);
    assert.deepEqual(Object.keys(body).sort(), ['event_data', 'occur_at', 'operator', 'type']);
    assert.equal(body.type, 'PUSH_ARTIFACT');
    assert.ok(Number.isInteger(body.occur_at) && Math.abs(body.occur_at - Date.now() / 1000) < 120);
    assert.equal(body.operator, 'anonymous');
    const host = new URL(server.config.http.host ?? json(at('/dist', 0)).events[0].target.url).host;
    assert.deepEqual(body.event_data.resources, [{ digest: image.manifest.digest, tag: 'v1', resource_url: `${host}/${repo}:v1` }]);
    assert.deepEqual(body.event_data.repository, { name: 'web', namespace: 'shop', repo_full_name: repo, repo_type: 'private' });

    const pull = json(at('/harbor', 1));
    assert.equal(pull.type, 'PULL_ARTIFACT');
    assert.deepEqual(pull.event_data.resources, [
      { digest: image.manifest.digest, resource_url: `${host}/${repo}@${image.manifest.digest}` },
    ]);
    assert.equal(pull.event_data.custom_attributes.pulls, '2');
    assert.equal(json(at('/harbor', 2)).type, 'DELETE_TAG');
    assert.equal(json(at('/harbor', 4)).type, 'DELETE_ARTIFACT');
    const gc = json(at('/harbor', 5));
    assert.equal(gc.type, 'GC_FINISHED');
    assert.equal(gc.event_data.custom_attributes.errors, '0');
  });

  it('CloudEvents 1.0 structured JSON: specversion, id, source, type, time, subject, data', () => {
    const push = at('/ce', 0);
    assert.equal(push.headers['content-type'], 'application/cloudevents+json; charset=utf-8');
    const ce = json(push);
    assert.equal(ce.specversion, '1.0');
    assert.equal(ce.id, push.headers['x-berth-event-id']);
    assert.equal(ce.type, 'io.berth.artifact.pushed');
    assert.ok(URL.canParse(ce.source));
    assert.ok(!Number.isNaN(Date.parse(ce.time)));
    assert.equal(ce.datacontenttype, 'application/json');
    assert.equal(ce.subject, `${repo}@${image.manifest.digest}`);
    assert.deepEqual(ce.data, {
      project: 'shop',
      repository: repo,
      digest: image.manifest.digest,
      mediaType: image.mediaType,
      size: image.manifest.size,
      tags: ['v1'],
    });
    const types = receiver.delivered('/ce').map((r) => json(r).type);
    assert.deepEqual(types, [
      'io.berth.artifact.pushed',
      'io.berth.artifact.pulled',
      'io.berth.tag.deleted',
      'io.berth.artifact.pushed',
      'io.berth.artifact.deleted',
      'io.berth.gc.finished',
    ]);
    assert.equal(json(at('/ce', 1)).data.pulls, 2);
    const gc = json(at('/ce', 5));
    assert.equal(gc.subject, undefined);
    assert.equal(typeof gc.data.bytesFreed, 'number');
  });
});
