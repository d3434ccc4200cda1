import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../helpers/server.js';
import { useServer } from '../helpers/use-server.js';
import { adminAuth, useAuthServer } from '../auth/support.js';

const INDEX =
  '<!doctype html><html><head><script type="module" src="/assets/index-3f2a1b.js"></script></head><body><div id="root"></div></body></html>';
const SCRIPT = 'console.log("berth ui");';

function fakeBuild(): string {
  const root = tempDir('berth-ui-');
  mkdirSync(path.join(root, 'assets'));
  writeFileSync(path.join(root, 'index.html'), INDEX);
  writeFileSync(path.join(root, 'assets', 'index-3f2a1b.js'), SCRIPT);
  return root;
}

const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

describe('web UI static files', () => {
  const root = fakeBuild();
  const reg = useAuthServer('token', {}, { ui: { root } });

  it('/ answers index.html, not cached, with CSP, X-Frame-Options DENY and Referrer-Policy', async () => {
    const res = await fetch(`${reg.url}/`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), INDEX);
    assert.match(res.headers.get('content-type')!, /^text\/html/);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const csp = res.headers.get('content-security-policy')!;
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('referrer-policy'), 'same-origin');
  });

  it('/assets/* are served immutable for a year; a missing asset is a 404, not the SPA', async () => {
    const res = await fetch(`${reg.url}/assets/index-3f2a1b.js`, { headers: HTML });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), SCRIPT);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.match(res.headers.get('content-type')!, /javascript/);
    const missing = await fetch(`${reg.url}/assets/nope-000.js`, { headers: HTML });
    assert.equal(missing.status, 404);
    assert.notEqual(await missing.text(), INDEX);
    const traversal = await fetch(`${reg.url}/assets/..%2findex.html`);
    assert.ok(traversal.status === 400 || traversal.status === 404, `traversal answered ${traversal.status}`);
    assert.notEqual(await traversal.text(), INDEX);
  });

  it('browser navigations to SPA routes get index.html; API, registry and non-HTML requests do not', async () => {
    for (const route of ['/projects/team', '/repositories/team%2Fapp/tags', '/settings?tab=users']) {
      const res = await fetch(`${reg.url}${route}`, { headers: HTML });
      assert.equal(res.status, 200, route);
      assert.equal(await res.text(), INDEX, route);
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
    }
    const json = await fetch(`${reg.url}/projects/team`, { headers: { accept: 'application/json' } });
    assert.equal(json.status, 404);
    assert.ok(((await json.json()) as { errors: { code: string }[] }).errors[0]!.code, 'the JSON error format');
    for (const route of ['/v2/nothing/here', '/api/v1/nothing', '/token/x', '/metricsx/../metrics', '/healthz/x']) {
      const res = await fetch(`${reg.url}${route}`, { headers: { ...HTML, authorization: adminAuth() } });
      assert.notEqual(await res.text(), INDEX, route);
    }
    const post = await fetch(`${reg.url}/projects/team`, { method: 'POST', headers: HTML });
    assert.equal(post.status, 404);
    // The registry itself is unchanged.
    assert.equal((await fetch(`${reg.url}/v2/`, { headers: HTML })).status, 401);
  });
});

describe('web UI not built', () => {
  const reg = useServer({ ui: { root: path.join(tempDir('berth-ui-missing-'), 'dist-ui') } });

  it('/ answers 404 with a text saying to run npm run build', async () => {
    const res = await fetch(`${reg.url}/`);
    assert.equal(res.status, 404);
    assert.match(await res.text(), /npm run build/);
    assert.equal((await fetch(`${reg.url}/v2/`)).status, 200);
  });
});

describe('web UI disabled (ui.enabled: false)', () => {
  const root = fakeBuild();
  const reg = useServer({ ui: { enabled: false, root } });

  it('serves neither / nor assets', async () => {
    assert.equal((await fetch(`${reg.url}/`, { headers: HTML })).status, 404);
    assert.equal((await fetch(`${reg.url}/assets/index-3f2a1b.js`)).status, 404);
    assert.equal((await fetch(`${reg.url}/projects/x`, { headers: HTML })).status, 404);
  });
});
