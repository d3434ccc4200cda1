import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { errorCode } from '../helpers/registry-client.js';
import { ADMIN_PASSWORD, useAuthServer } from './support.js';

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A GET with headers fetch() will not send as given (Host). */
function rawGet(url: string, path: string, headers: Record<string, string>): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET', headers, setHost: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const INJECTIONS = [
  'evil.example"',
  'a.example",error="x',
  'a.example, Basic realm=x',
  'a.example/path',
  'a b.example',
  'a.example:99999999',
];

/** Issue 12: the Host header must not be copied unescaped into WWW-Authenticate. */
describe('Bearer challenge realm: built from the Host only when it is a plain host[:port]', () => {
  const reg = useAuthServer('token', {}, { http: { trustproxy: true } });

  it('a plain Host (or X-Forwarded-Host behind a trusted proxy) makes the realm', async () => {
    const res = await rawGet(reg.url, '/v2/', { host: 'registry.example.com:5000' });
    assert.equal(res.status, 401);
    assert.match(String(res.headers['www-authenticate']), /^Bearer realm="http:\/\/registry\.example\.com:5000\/token",service="berth"/);
    const container = await rawGet(reg.url, '/v2/', { host: 'berth_registry_1:5000' });
    assert.match(String(container.headers['www-authenticate']), /^Bearer realm="http:\/\/berth_registry_1:5000\/token"/);
    const proxied = await rawGet(reg.url, '/v2/', {
      host: 'internal:5000',
      'x-forwarded-host': '[2001:db8::1]:443',
      'x-forwarded-proto': 'https',
    });
    assert.match(String(proxied.headers['www-authenticate']), /^Bearer realm="https:\/\/\[2001:db8::1\]:443\/token"/);
  });

  it('a Host or X-Forwarded-Host with quotes, commas, spaces or a path answers 400 and never reaches a challenge (/v2, /api/v1)', async () => {
    for (const host of INJECTIONS) {
      for (const [path, headers] of [
        ['/v2/', { host }],
        ['/v2/', { host: 'ok.example', 'x-forwarded-host': host }],
        ['/api/v1/me', { host }],
      ] as const) {
        const res = await rawGet(reg.url, path, headers);
        assert.equal(res.status, 400, `${path} ${JSON.stringify(headers)}`);
        assert.equal(res.headers['www-authenticate'], undefined);
        assert.equal((JSON.parse(res.body) as { errors: { code: string }[] }).errors[0]!.code, 'INVALID_ARGUMENT');
      }
    }
  });
});

describe('Bearer challenge realm with http.host set', () => {
  const reg = useAuthServer('token', {}, { http: { host: 'https://registry.example.com' } });

  it('comes from http.host, whatever the Host header says', async () => {
    const res = await rawGet(reg.url, '/v2/', { host: 'evil.example"' });
    assert.equal(res.status, 401);
    assert.match(String(res.headers['www-authenticate']), /^Bearer realm="https:\/\/registry\.example\.com\/token",service="berth"/);
  });
});

/** Issue 12: malformed Basic credentials on /token used to yield an anonymous token. */
describe('malformed Authorization on /token and /api/v1', () => {
  const reg = useAuthServer('token');
  const MALFORMED = [
    'Basic',
    'Basic !!!!',
    'Basic Zm9v' /* "foo": no colon */,
    'Basic Og==' /* ":" empty username */,
    'Basic YWRtaW46eA=' /* bad padding */,
    'Bearer abc',
    'Digest x',
  ];

  it('GET /token answers 401 UNAUTHORIZED with a spec error body and a Basic challenge, never a token', async () => {
    for (const authorization of MALFORMED) {
      const res = await fetch(`${reg.url}/token?service=berth&scope=repository:x/y:pull`, { headers: { authorization } });
      assert.equal(res.status, 401, authorization);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm=/);
      const body = (await res.json()) as { token?: string; errors?: { code: string; message: string }[] };
      assert.equal(body.token, undefined);
      assert.equal(body.errors?.[0]?.code, 'UNAUTHORIZED', authorization);
      assert.match(body.errors![0]!.message, /malformed Authorization/);
    }
    // Well-formed credentials (padding included) still work; no header at all is still anonymous.
    const good = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;
    assert.equal((await fetch(`${reg.url}/token?service=berth`, { headers: { authorization: good } })).status, 200);
    assert.equal((await fetch(`${reg.url}/token?service=berth`)).status, 200);
  });

  it('/api/v1 answers malformed Basic with 401, not as an anonymous caller', async () => {
    for (const authorization of MALFORMED.filter((a) => a.startsWith('Basic'))) {
      const res = await fetch(`${reg.url}/api/v1/openapi.json`, { headers: { authorization } });
      assert.equal(res.status, 401, authorization);
      assert.equal(await errorCode(res), 'UNAUTHORIZED');
    }
  });
});
