// The UI's generated API client matches the OpenAPI document the server serves: the committed
// ui/src/api/schema.d.ts is byte-for-byte what `npm run ui:api` generates, and every operation a
// running Berth serves at /api/v1/openapi.json is the same in the document it was generated from.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { SCHEMA_FILE, fullOpenApiDocument, generateSchema } from '../../scripts/ui-api.js';
import { adminAuth, startAuthServer } from '../auth/support.js';
import type { TestServer } from '../helpers/server.js';

let server: TestServer;
before(async () => {
  server = await startAuthServer('token');
});
after(async () => server?.destroy());

type Paths = Record<string, Record<string, unknown>>;

test('the committed schema.d.ts is what the OpenAPI document generates (run `npm run ui:api`)', async () => {
  const generated = await generateSchema(fullOpenApiDocument());
  const committed = readFileSync(SCHEMA_FILE, 'utf8');
  assert.ok(committed === generated, 'ui/src/api/schema.d.ts is out of date with the route table: run `npm run ui:api` and commit it');
});

test('the served /api/v1/openapi.json describes every operation as the generator saw it', async () => {
  const response = await fetch(`${server.url}/api/v1/openapi.json`, { headers: { authorization: adminAuth() } });
  assert.equal(response.status, 200);
  const served = (await response.json()) as { paths: Paths };
  const full = fullOpenApiDocument() as { paths: Paths };
  const servedOps = Object.entries(served.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
  );
  assert.ok(servedOps.length > 50, `the server serves ${servedOps.length} operations`);
  for (const [path, ops] of Object.entries(served.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      assert.deepEqual(
        full.paths[path]?.[method],
        op,
        `${method.toUpperCase()} ${path} differs between the served document and the generator's`,
      );
    }
  }
  // And the generated types name every served path.
  const schema = readFileSync(SCHEMA_FILE, 'utf8');
  for (const path of Object.keys(served.paths)) assert.ok(schema.includes(`"${path}": {`), `schema.d.ts lacks ${path}`);
});
