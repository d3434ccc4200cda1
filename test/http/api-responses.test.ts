// Every /api/v1 route that answers with a JSON body declares its response schema (openapi.json
// publishes it, the web UI's types are generated from it), and with BERTH_API_CHECK_RESPONSES=1
// (set for every test server by test/helpers/server.ts) an answer its schema refuses is a 500.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiRoutes } from '../../src/http/api/index.js';
import type { ApiFeatures } from '../../src/http/api/route.js';
import { userRoutes } from '../../src/http/api/users.js';
import { fullOpenApiDocument } from '../../scripts/ui-api.js';
import { ADMIN_PASSWORD, adminAuth } from '../auth/support.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const on = true as never;
const everyFeature = {
  oidc: on,
  gc: on,
  jobs: on,
  quotas: on,
  retention: on,
  tags: on,
  webhooks: on,
  signatures: on,
  scanning: on,
  sbom: on,
  supplyChain: on,
  vulnPolicy: on,
  registries: on,
  proxyCache: on,
  proxyCacheDefaultTtlMs: on,
  replication: on,
  sessions: on,
  browse: on,
} as ApiFeatures;

describe('response schemas', () => {
  it('every route that answers with a body (not 204, not a 302 redirect) declares its response schema', () => {
    const routes = apiRoutes(everyFeature);
    assert.ok(routes.length > 90, `${routes.length} routes`);
    const missing = routes.filter((r) => r.status !== 204 && r.status !== 302 && !r.response).map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(missing, []);
    const bodiless = routes.filter((r) => (r.status === 204 || r.status === 302) && r.response).map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(bodiless, [], 'a 204 or 302 route sends no body to describe');
  });

  it('openapi.json publishes them, with the named ones under components.schemas', () => {
    const doc = fullOpenApiDocument() as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>;
      components: { schemas: Record<string, unknown> };
    };
    const project = doc.paths['/api/v1/projects/{project}']!.get!.responses['200']!.content!['application/json']!.schema;
    assert.deepEqual(project, { $ref: '#/components/schemas/ProjectDetail' });
    for (const id of ['Project', 'Quota', 'TagRow', 'Artifact', 'Robot', 'WebhookPolicy', 'RetentionRun', 'Session', 'SystemInfo']) {
      assert.ok(doc.components.schemas[id], `components.schemas lacks ${id}`);
    }
    // Every reference resolves.
    const text = JSON.stringify(doc);
    for (const [, id] of text.matchAll(/"#\/components\/schemas\/([^"]+)"/g)) assert.ok(doc.components.schemas[id!], `dangling $ref ${id}`);
    assert.ok(!text.includes('#/$defs/'), 'no $defs reference is left');
  });
});

describe('the response check (BERTH_API_CHECK_RESPONSES=1)', () => {
  let server: TestServer;
  const me = userRoutes.find((r) => r.path === '/me' && r.method === 'GET')!;
  const original = me.handler;

  before(async () => {
    assert.equal(process.env.BERTH_API_CHECK_RESPONSES, '1', 'the test server helper turns the check on');
    // A handler that answers something its schema does not allow: admin as a string.
    me.handler = async (ctx) => ({ ...((await original(ctx)) as object), admin: 'yes' });
    server = await startTestServer({ auth: { mode: 'token', admin: { password: ADMIN_PASSWORD } } });
  });
  after(async () => {
    me.handler = original;
    await server?.destroy();
  });

  it('answers 500 naming the route and the zod issue when a handler sends what its schema refuses', async () => {
    // The patched handler lives in this process, not in the cluster pass's `berth serve` children.
    const response = await fetch(`${server.inProcessUrl}/api/v1/me`, { headers: { authorization: adminAuth() } });
    assert.equal(response.status, 500);
    const body = (await response.json()) as { errors: { code: string; message: string; detail: { route: string } }[] };
    assert.equal(body.errors[0]!.code, 'UNKNOWN');
    assert.match(body.errors[0]!.message, /GET \/api\/v1\/me does not match its schema: admin: /);
    assert.equal(body.errors[0]!.detail.route, 'GET /api/v1/me');
  });

  it('lets a true answer through', async () => {
    const response = await fetch(`${server.url}/api/v1/projects`, { headers: { authorization: adminAuth() } });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), []);
  });
});
