import assert from 'node:assert/strict';
import net from 'node:net';
import { before, describe, it } from 'node:test';
import { OCI_MANIFEST, makeBlob, makeImage, sha256, type Image } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { assertErrorBody, expectError, rawRequest } from '../http/support.js';

/**
 * Hostile and malformed input (complementing the spec conformance suite in test/http):
 * every case must get the spec's error JSON with the right status, and leave the
 * registry's state exactly as it was.
 */

const REPO = 'bad/app';

interface Snapshot {
  catalog: unknown;
  tags: unknown;
  manifest: string;
  blobs: number[];
}

describe('bad input: hostile requests get spec errors and change nothing', () => {
  let image: Image;
  let baseline: Snapshot;

  const reg = useServer({ log: { level: 'silent' } });
  before(async () => {
    image = makeImage({ layers: 2 });
    await reg.client.pushImage(REPO, 'v1', image);
    baseline = await snapshot();
  });

  /** What a client can observe of the registry: catalog, tags, the manifest, every blob's HEAD status. */
  async function snapshot(): Promise<Snapshot> {
    const json = async (path: string) => (await reg.client.fetch(path)).json();
    const manifest = await reg.client.fetch(`/v2/${REPO}/manifests/v1`);
    const blobs = await Promise.all(
      [image.config, ...image.layers].map(
        async (b) => (await reg.client.fetch(`/v2/${REPO}/blobs/${b.digest}`, { method: 'HEAD' })).status,
      ),
    );
    return {
      catalog: await json('/v2/_catalog'),
      tags: await json(`/v2/${REPO}/tags/list`),
      manifest: sha256(Buffer.from(await manifest.arrayBuffer())),
      blobs,
    };
  }

  async function assertUntouched(what: string): Promise<void> {
    assert.deepEqual(await snapshot(), baseline, `state changed after: ${what}`);
  }

  function putManifest(body: Buffer | string, ref = 'evil', contentType: string | undefined = OCI_MANIFEST): Promise<Response> {
    return reg.client.fetch(`/v2/${REPO}/manifests/${ref}`, {
      method: 'PUT',
      body: new Uint8Array(Buffer.from(body)),
      headers: contentType ? { 'content-type': contentType } : {},
    });
  }

  /** The pushed manifest's text with `"key": <raw JSON text>` added (for values too deep to build with JSON.stringify). */
  function withRaw(key: string, rawValue: string): string {
    const text = image.manifest.data.toString().replace(new RegExp(`,"${key}":\\{[^}]*\\}`), '');
    return `${text.slice(0, -1)},"${key}":${rawValue}}`;
  }

  function configWithPlatform(rawPlatform: string): string {
    const { digest, size } = image.config;
    return `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${digest}","size":${size},"platform":{"x":${rawPlatform}}}`;
  }

  /** A valid manifest document over the pushed image, with `patch` applied. */
  function manifestWith(patch: Record<string, unknown>): string {
    return JSON.stringify({ ...(JSON.parse(image.manifest.data.toString()) as object), ...patch });
  }

  describe('manifests', () => {
    const deep = (n: number, open: string, close: string) => open.repeat(n) + close.repeat(n);
    const cases: [string, () => Buffer | string, string | undefined][] = [
      ['100k nested arrays', () => deep(100_000, '[', ']'), OCI_MANIFEST],
      ['100k nested objects', () => deep(100_000, '{"a":', '}').replace(/}$/, '1}'), OCI_MANIFEST],
      [
        '100k nested arrays inside a valid manifest (annotations)',
        () => withRaw('annotations', `{"a":${deep(100_000, '[', ']')}}`),
        OCI_MANIFEST,
      ],
      [
        '10 001 layers',
        () =>
          manifestWith({ layers: Array.from({ length: 10_001 }, () => ({ mediaType: 'x', digest: image.layers[0]!.digest, size: 1 })) }),
        OCI_MANIFEST,
      ],
      [
        'invalid UTF-8',
        () => Buffer.concat([Buffer.from('{"schemaVersion":2,"mediaType":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]),
        OCI_MANIFEST,
      ],
      ['a byte-order mark before the JSON', () => `\uFEFF${image.manifest.data.toString()}`, OCI_MANIFEST],
      ['a bare JSON string', () => '"manifest"', OCI_MANIFEST],
      ['null', () => 'null', OCI_MANIFEST],
      ['a huge number as schemaVersion', () => manifestWith({ schemaVersion: 1e308 }), OCI_MANIFEST],
      [
        'a negative layer size',
        () => manifestWith({ layers: [{ mediaType: 'x', digest: image.layers[0]!.digest, size: -1 }] }),
        OCI_MANIFEST,
      ],
      [
        'a fractional layer size',
        () => manifestWith({ layers: [{ mediaType: 'x', digest: image.layers[0]!.digest, size: 1.5 }] }),
        OCI_MANIFEST,
      ],
      [
        'a layer size past 2^53',
        () => manifestWith({ layers: [{ mediaType: 'x', digest: image.layers[0]!.digest, size: 2 ** 60 }] }),
        OCI_MANIFEST,
      ],
      [
        'an md5 layer digest',
        () => manifestWith({ layers: [{ mediaType: 'x', digest: 'md5:d41d8cd98f00b204e9800998ecf8427e', size: 1 }] }),
        OCI_MANIFEST,
      ],
      [
        'an upper-case hex digest',
        () =>
          manifestWith({
            layers: [{ mediaType: 'x', digest: image.layers[0]!.digest.toUpperCase().replace('SHA256', 'sha256'), size: 1 }],
          }),
        OCI_MANIFEST,
      ],
      [
        'a truncated digest',
        () => manifestWith({ layers: [{ mediaType: 'x', digest: image.layers[0]!.digest.slice(0, 40), size: 1 }] }),
        OCI_MANIFEST,
      ],
      ['a mediaType of 10 000 characters', () => manifestWith({ mediaType: 'a'.repeat(10_000) }), undefined],
      ['Content-Type text/plain and no mediaType field', () => manifestWith({ mediaType: undefined }), 'text/plain'],
      ['neither Content-Type nor mediaType nor a recognisable shape', () => '{"schemaVersion":2}', undefined],
      ['mediaType as a number', () => manifestWith({ mediaType: 42 }), OCI_MANIFEST],
      ['Content-Type naming a different manifest type', () => image.manifest.data, 'application/vnd.oci.image.index.v1+json'],
    ];
    for (const [name, body, contentType] of cases) {
      it(`${name}: 400 MANIFEST_INVALID`, async () => {
        await expectError(await putManifest(body(), 'evil', contentType), 400, 'MANIFEST_INVALID');
        await assertUntouched(name);
      });
    }

    it('100k nested arrays in a free-form descriptor field (platform) are stored opaquely: same bytes back, no crash', async () => {
      const deepManifest = withRaw('config', configWithPlatform(deep(100_000, '[', ']')));
      const res = await putManifest(deepManifest, 'deep');
      assert.equal(res.status, 201, await res.text());
      const stored = await reg.client.fetch(`/v2/${REPO}/manifests/deep`);
      assert.equal(sha256(Buffer.from(await stored.arrayBuffer())), sha256(deepManifest));
      assert.equal((await reg.client.fetch(`/v2/${REPO}/manifests/${sha256(deepManifest)}`, { method: 'DELETE' })).status, 202);
      await assertUntouched('deep platform');
    });

    it('__proto__ keys neither pollute the server nor slip past validation', async () => {
      const hostile = `{"__proto__":{"polluted":"yes"},${image.manifest.data.toString().slice(1)}`;
      const res = await putManifest(hostile, 'proto');
      // Accepted (it is a valid manifest with an extra key) or refused, but never a 5xx…
      assert.ok([201, 400].includes(res.status), `status ${res.status}`);
      // …and the in-process server's prototypes are untouched.
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      if (res.status === 201) {
        const stored = await reg.client.fetch(`/v2/${REPO}/manifests/proto`);
        assert.equal(await stored.text(), hostile, 'stored byte-for-byte');
        assert.equal((await reg.client.fetch(`/v2/${REPO}/manifests/proto`, { method: 'DELETE' })).status, 202);
        await reg.client.fetch(`/v2/${REPO}/manifests/${sha256(hostile)}`, { method: 'DELETE' });
      }
    });

    const badReferences: [string, number, string][] = [
      ['md5:d41d8cd98f00b204e9800998ecf8427e', 400, 'DIGEST_INVALID'],
      ['sha256:abc', 400, 'DIGEST_INVALID'],
      [`sha256:${'0'.repeat(64)}`, 400, 'DIGEST_INVALID'],
      ['-leading-dash', 400, 'TAG_INVALID'],
      ['.dot', 400, 'TAG_INVALID'],
      ['t'.repeat(129), 400, 'TAG_INVALID'],
    ];
    for (const [ref, status, code] of badReferences) {
      it(`PUT manifests/${ref.slice(0, 24)}${ref.length > 24 ? '…' : ''}: ${status} ${code}`, async () => {
        await expectError(await putManifest(image.manifest.data, ref), status, code);
        await assertUntouched(`PUT ${ref}`);
      });
    }

    it('a tag with percent-encoded space, slash or NUL: 400 (TAG_INVALID or NAME_INVALID), nothing stored', async () => {
      for (const ref of ['a%20b', 'a%2Fb', 'a%00', '%2e%2e']) {
        const res = await rawRequest(reg.url, 'PUT', `/v2/${REPO}/manifests/${ref}`, { 'content-type': OCI_MANIFEST }, image.manifest.data);
        assert.equal(res.status, 400, `${ref}: ${res.body}`);
        assertErrorBody(res.headers['content-type'], res.body.toString(), ref === 'a%2Fb' ? 'TAG_INVALID' : 'TAG_INVALID');
      }
      await assertUntouched('encoded tags');
    });
  });

  describe('digests on blob endpoints', () => {
    for (const digest of [
      'md5:d41d8cd98f00b204e9800998ecf8427e',
      'sha256:xyz',
      `sha256:${'A'.repeat(64)}`,
      `sha512:${'0'.repeat(64)}`,
      'sha256',
      'sha256:',
      `sha256:${'0'.repeat(65)}`,
    ]) {
      it(`GET/HEAD/DELETE blobs/${digest.slice(0, 20)}…: 400 DIGEST_INVALID`, async () => {
        for (const method of ['GET', 'DELETE']) {
          const res = await rawRequest(reg.url, method, `/v2/${REPO}/blobs/${digest}`);
          assert.equal(res.status, 400, `${method} ${digest}: ${res.body}`);
          assertErrorBody(res.headers['content-type'], res.body.toString(), 'DIGEST_INVALID');
        }
        await assertUntouched(digest);
      });
    }

    it('completing an upload with an unsupported digest: 400 DIGEST_INVALID, the session survives and completes later', async () => {
      const blob = makeBlob(500);
      const start = await reg.client.fetch(`/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
      const location = start.headers.get('location')!;
      assert.equal((await reg.client.fetch(location, { method: 'PATCH', body: new Uint8Array(blob.data) })).status, 202);
      await expectError(
        await reg.client.fetch(`${location}?digest=md5:d41d8cd98f00b204e9800998ecf8427e`, { method: 'PUT' }),
        400,
        'DIGEST_INVALID',
      );
      const status = await reg.client.fetch(location);
      assert.equal(status.status, 204);
      assert.equal(status.headers.get('range'), '0-499');
      assert.equal((await reg.client.fetch(`${location}?digest=${blob.digest}`, { method: 'PUT' })).status, 201);
      await reg.client.fetch(`/v2/${REPO}/blobs/${blob.digest}`, { method: 'DELETE' });
    });
  });

  describe('repository names', () => {
    const hostileNames = [
      '..',
      '../etc',
      'bad/../app',
      '%2e%2e/app',
      'bad/%2e%2e',
      'bad//app',
      'bad\\app',
      'bad%5capp',
      'bad%00app',
      'bad/app%00',
      'b%D0%B0d/app', // Cyrillic "а"
      '%EF%BD%82ad/app', // fullwidth "ｂ"
      'Bad/App',
      '-bad/app',
      'bad/app-',
      'bad/app/',
      'a'.repeat(256),
      `${'a/'.repeat(127)}a`.replace(/a$/, 'aa'),
    ];
    for (const name of hostileNames) {
      it(`name "${name.slice(0, 30)}${name.length > 30 ? '…' : ''}": 400 NAME_INVALID on pull and push, nothing created`, async () => {
        for (const [method, path] of [
          ['GET', `/v2/${name}/tags/list`],
          ['GET', `/v2/${name}/manifests/v1`],
          ['POST', `/v2/${name}/blobs/uploads/`],
          ['PUT', `/v2/${name}/manifests/v1`],
        ] as const) {
          const res = await rawRequest(
            reg.url,
            method,
            path,
            { 'content-type': OCI_MANIFEST },
            method === 'PUT' ? image.manifest.data : undefined,
          );
          assert.ok(res.status === 400 || res.status === 404, `${method} ${path.slice(0, 60)} answered ${res.status}`);
          assertErrorBody(res.headers['content-type'], res.body.toString(), res.status === 400 ? 'NAME_INVALID' : 'UNSUPPORTED');
        }
        await assertUntouched(name);
      });
    }
  });

  describe('pagination', () => {
    for (const n of ['-1', '1e9', '99999999999999999999', 'abc', '1.5', '0x10', '%00', '+5', ' 5']) {
      it(`n=${n}: 400 PAGINATION_NUMBER_INVALID on tags and catalog`, async () => {
        for (const path of [`/v2/${REPO}/tags/list?n=${encodeURIComponent(n)}`, `/v2/_catalog?n=${encodeURIComponent(n)}`]) {
          const res = await reg.client.fetch(path);
          await expectError(res, 400, 'PAGINATION_NUMBER_INVALID');
        }
      });
    }

    it('n=1000000000 is capped, not allocated: 200 with every tag', async () => {
      const res = await reg.client.fetch(`/v2/${REPO}/tags/list?n=1000000000`);
      assert.equal(res.status, 200);
      assert.deepEqual(((await res.json()) as { tags: string[] }).tags, ['v1']);
    });

    for (const last of ['%00', '%ff%fe', 'z'.repeat(10_000), '%F0%9F%92%A9', '%27;%20DROP%20TABLE%20tags;%20--']) {
      it(`last=${last.slice(0, 20)}: 200 with a well-formed (possibly empty) list`, async () => {
        for (const path of [`/v2/${REPO}/tags/list?n=5&last=${last}`, `/v2/_catalog?n=5&last=${last}`]) {
          const res = await rawRequest(reg.url, 'GET', path);
          assert.equal(res.status, 200, `${path.slice(0, 80)}: ${res.body}`);
          const body = JSON.parse(res.body.toString()) as { tags?: unknown; repositories?: unknown };
          assert.ok(Array.isArray(body.tags ?? body.repositories));
        }
        await assertUntouched(`last=${last}`);
      });
    }
  });

  describe('upload abuse', () => {
    async function session(repo = REPO): Promise<{ location: string; id: string }> {
      const res = await reg.client.fetch(`/v2/${repo}/blobs/uploads/`, { method: 'POST' });
      assert.equal(res.status, 202);
      return { location: res.headers.get('location')!, id: res.headers.get('docker-upload-uuid')! };
    }
    async function sizeOf(location: string): Promise<number> {
      const res = await reg.client.fetch(location);
      assert.equal(res.status, 204);
      const end = Number(/^0-(\d+)$/.exec(res.headers.get('range')!)![1]);
      return end === 0 ? 0 : end + 1;
    }
    function patch(location: string, data: Buffer, range?: string): Promise<Response> {
      return reg.client.fetch(location, {
        method: 'PATCH',
        body: new Uint8Array(data),
        headers: { 'content-type': 'application/octet-stream', ...(range ? { 'content-range': range } : {}) },
      });
    }

    it('a Content-Range that leaves a gap: 416 with the current Range, session unchanged', async () => {
      const { location } = await session();
      assert.equal((await patch(location, Buffer.alloc(100), '0-99')).status, 202);
      const res = await patch(location, Buffer.alloc(10), '200-209');
      assert.equal(res.headers.get('range'), '0-99');
      await expectError(res, 416, 'RANGE_INVALID');
      assert.equal(await sizeOf(location), 100);
    });

    it('a Content-Range that overlaps what was received: 416, session unchanged', async () => {
      const { location } = await session();
      assert.equal((await patch(location, Buffer.alloc(100), '0-99')).status, 202);
      await expectError(await patch(location, Buffer.alloc(100), '50-149'), 416, 'RANGE_INVALID');
      assert.equal(await sizeOf(location), 100);
    });

    for (const range of ['10-5', 'bytes=abc', '0-', '-5', '0-99999999999999999999', '0-9,20-29']) {
      it(`a malformed Content-Range "${range}": 416, nothing appended`, async () => {
        const { location } = await session();
        await expectError(await patch(location, Buffer.alloc(10), range), 416, 'RANGE_INVALID');
        assert.equal(await sizeOf(location), 0);
      });
    }

    it('Content-Length disagreeing with Content-Range: 416, nothing appended', async () => {
      const { location } = await session();
      const res = await rawSend(reg.url, `PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Range: 0-9\r\nContent-Length: 5\r\n\r\nabcde`);
      assert.equal(statusOf(res), 416, res);
      assert.equal(await sizeOf(location), 0);
    });

    it('a body shorter than its Content-Length (client hangs up): nothing recorded, the session resumes at 0', async () => {
      const { location } = await session();
      const res = await rawSend(
        reg.url,
        `PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Range: 0-99\r\nContent-Length: 100\r\n\r\n${'a'.repeat(50)}`,
        { end: true },
      );
      assertSpecError(res, 400);
      assert.equal(await sizeOf(location), 0);
      const blob = makeBlob(100);
      assert.equal((await untilIdle(() => patch(location, blob.data, '0-99'))).status, 202);
      assert.equal((await reg.client.fetch(`${location}?digest=${blob.digest}`, { method: 'PUT' })).status, 201);
    });

    it('a body longer than its Content-Length: only Content-Length bytes are taken, the excess is a bad next request', async () => {
      const { location } = await session();
      const res = await rawSend(
        reg.url,
        `PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789GARBAGE-NOT-HTTP\r\n\r\n`,
      );
      // The excess is parsed as a next request and refused; the connection closes (possibly
      // before the PATCH's own 202 is written). The session holds all 10 bytes or none.
      assertSpecError(res.slice(res.lastIndexOf('HTTP/1.1 ')), 400);
      await untilIdle(() => reg.client.fetch(location));
      const size = await sizeOf(location);
      assert.ok(size === 0 || size === 10, `size ${size}`);
      if (size === 10) {
        assert.equal(
          (await reg.client.fetch(`${location}?digest=${sha256('0123456789')}`, { method: 'PUT' })).status,
          201,
          'exactly those bytes',
        );
      }
    });

    it('Content-Length together with Transfer-Encoding (request smuggling): 400, connection closed, nothing appended', async () => {
      const { location } = await session();
      const res = await rawSend(
        reg.url,
        `PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`,
      );
      assertSpecError(res, 400);
      assert.match(res, /connection: close/i);
      assert.equal(await sizeOf(location), 0);
    });

    for (const length of ['-1', 'abc', '1e3', '99999999999999999999999']) {
      it(`Content-Length "${length}": 4xx, nothing appended`, async () => {
        const { location } = await session();
        const res = await rawSend(reg.url, `PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n\r\nabc`);
        assertSpecError(res, 400);
        assert.equal(await sizeOf(location), 0);
      });
    }

    it('PATCH, GET and a PUT of another digest on a finished upload: 404 BLOB_UPLOAD_UNKNOWN (the same PUT again: 201, from its receipt)', async () => {
      const { location } = await session();
      const blob = makeBlob(64);
      assert.equal((await patch(location, blob.data)).status, 202);
      assert.equal((await reg.client.fetch(`${location}?digest=${blob.digest}`, { method: 'PUT' })).status, 201);
      await expectError(await patch(location, Buffer.alloc(10), '64-73'), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await reg.client.fetch(`${location}?digest=${makeBlob(65).digest}`, { method: 'PUT' }), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await reg.client.fetch(location), 404, 'BLOB_UPLOAD_UNKNOWN');
      // A re-sent closing PUT (its answer lost) gets the same answer; see docs/robustness.md.
      assert.equal((await reg.client.fetch(`${location}?digest=${blob.digest}`, { method: 'PUT' })).status, 201);
    });

    it('PATCH on a cancelled upload: 404 BLOB_UPLOAD_UNKNOWN', async () => {
      const { location } = await session();
      assert.equal((await reg.client.fetch(location, { method: 'DELETE' })).status, 204);
      await expectError(await patch(location, Buffer.alloc(10)), 404, 'BLOB_UPLOAD_UNKNOWN');
    });

    it("another repository's session id: 404 for PATCH, PUT, GET and DELETE; the session itself is untouched", async () => {
      const { location, id } = await session('bad/victim');
      const blob = makeBlob(100);
      assert.equal((await patch(location, blob.data, '0-99')).status, 202);
      const foreign = `/v2/${REPO}/blobs/uploads/${id}`;
      await expectError(await patch(foreign, Buffer.alloc(10), '100-109'), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await reg.client.fetch(`${foreign}?digest=${blob.digest}`, { method: 'PUT' }), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await reg.client.fetch(foreign), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await reg.client.fetch(foreign, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
      assert.equal(await sizeOf(location), 100, "the victim's session is intact");
      assert.equal((await reg.client.fetch(`/v2/${REPO}/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);
      assert.equal((await reg.client.fetch(location, { method: 'DELETE' })).status, 204, 'its owner can still act on it');
    });

    for (const id of ['00000000-0000-4000-8000-000000000000', '..%2F..%2Fberth.db', 'x'.repeat(300), '%00']) {
      it(`an unknown or malformed session id "${id.slice(0, 24)}": 404 BLOB_UPLOAD_UNKNOWN`, async () => {
        const res = await rawRequest(
          reg.url,
          'PATCH',
          `/v2/${REPO}/blobs/uploads/${id}`,
          { 'content-type': 'application/octet-stream' },
          Buffer.alloc(10),
        );
        assert.equal(res.status, 404, res.body.toString());
        assertErrorBody(res.headers['content-type'], res.body.toString(), 'BLOB_UPLOAD_UNKNOWN');
      });
    }

    it('after all of the above, the registry state is what it was', async () => {
      await assertUntouched('upload abuse');
    });
  });
});

/** Writes raw bytes on a fresh connection; resolves with everything received when the server closes or goes quiet. */
function rawSend(url: string, request: string, options: { end?: boolean } = {}): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    let data = '';
    let quiet: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(quiet);
      socket.destroy();
      resolve(data);
    };
    const armQuiet = () => {
      clearTimeout(quiet);
      quiet = setTimeout(done, 1_000);
    };
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      armQuiet();
    });
    socket.on('error', () => {});
    socket.on('close', done);
    socket.write(request, 'latin1');
    if (options.end) socket.end();
    armQuiet();
  });
}

function statusOf(response: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]);
}

/** A raw response with `status` and a spec error body. */
function assertSpecError(response: string, status: number): void {
  assert.equal(statusOf(response), status, response);
  const body = response.slice(response.indexOf('\r\n\r\n') + 4);
  const parsed = JSON.parse(body) as { errors: { code: string; message: string }[] };
  assert.ok(parsed.errors[0]!.code.length > 0 && parsed.errors[0]!.message.length > 0, body);
}

/**
 * Retries while the server still finishes the aborted request on this session (400
 * BLOB_UPLOAD_INVALID "another request is writing"): the abort is noticed asynchronously.
 */
async function untilIdle(request: () => Promise<Response>): Promise<Response> {
  for (let i = 0; ; i++) {
    const res = await request();
    if (res.status !== 400 || i >= 50) return res;
    const text = await res.clone().text();
    if (!text.includes('another request is writing')) return res;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
