import assert from 'node:assert/strict';
import http from 'node:http';
import type { RegistryClient } from '../helpers/registry-client.js';

/**
 * Assertions and raw-HTTP helpers shared by the /v2 conformance tests (test/http/*.test.ts).
 */

export interface SpecError {
  code: string;
  message: string;
  detail: unknown;
}

/**
 * Asserts a spec error response: exact status, a JSON body of the form
 * {"errors":[{"code","message","detail"}]} and the expected first code. Returns the error.
 */
export async function expectError(res: Response, status: number, code: string): Promise<SpecError> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${text}`);
  return assertErrorBody(res.headers.get('content-type'), text, code);
}

export function assertErrorBody(contentType: string | null | undefined, text: string, code: string): SpecError {
  assert.match(contentType ?? '', /^application\/json/);
  const body = JSON.parse(text) as { errors?: SpecError[] };
  assert.ok(Array.isArray(body.errors) && body.errors.length > 0, `no errors array in ${text}`);
  const first = body.errors[0]!;
  assert.deepEqual(Object.keys(first).sort(), ['code', 'detail', 'message']);
  assert.equal(first.code, code, text);
  assert.equal(typeof first.message, 'string');
  assert.ok(first.message.length > 0);
  return first;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A request through node:http with the path sent exactly as given. fetch() normalises
 * paths ("..", "%2e%2e", "//"), which would hide exactly what the name tests probe.
 */
export function rawRequest(
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** POST /v2/<repo>/blobs/uploads/ and return the session's Location (asserting 202). */
export async function openUpload(client: RegistryClient, repo: string): Promise<string> {
  const res = await client.fetch(`/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(res.status, 202, await res.text());
  const location = res.headers.get('location');
  assert.ok(location);
  return location;
}

/** Appends `?digest=` (or `&digest=`) to an upload Location. */
export function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`;
}

/** PATCH one chunk with a Content-Range header. */
export function patchChunk(client: RegistryClient, location: string, chunk: Buffer, start: number): Promise<Response> {
  return client.fetch(location, {
    method: 'PATCH',
    body: new Uint8Array(chunk),
    headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${start + chunk.length - 1}` },
  });
}

/** A fetch body streamed with chunked transfer encoding (no Content-Length), as docker sends. */
export function streamBody(parts: Buffer[]): { body: ReadableStream<Uint8Array>; duplex: 'half' } {
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < parts.length) controller.enqueue(new Uint8Array(parts[i++]!));
      else controller.close();
    },
  });
  return { body, duplex: 'half' };
}

export async function bytesOf(res: Response): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer());
}
