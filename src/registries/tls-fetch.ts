import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { NODE_BODY } from '../client/transport.js';

/** TLS options of an endpoint that Node's global fetch cannot take per request. */
export interface TlsOptions {
  /** Skip certificate verification. */
  insecure: boolean;
  /** PEM CA certificates trusted in addition to the system's. */
  caBundle: string | null;
}

/**
 * A `fetch` for an endpoint, sent with node:http(s) and agents of its own (keep-alive; for
 * https `rejectUnauthorized: false` for an insecure endpoint, the system roots plus the CA
 * bundle otherwise). It does what the client's Transport asks of fetch: any method, streamed
 * request and response bodies, headers, `redirect: 'manual'` (it never follows one), an
 * AbortSignal. Its responses also hand out the raw Node body (`nodeBody` of src/client):
 * blob downloads read the socket's chunks without a WHATWG stream in between, which is why
 * endpoints without TLS options use it too rather than Node's global fetch.
 */
export function endpointFetch(tls: TlsOptions): typeof fetch {
  const agent = new https.Agent({
    keepAlive: true,
    rejectUnauthorized: !tls.insecure,
    ...(tls.caBundle ? { ca: [...rootCertificates, tls.caBundle] } : {}),
  });
  const plain = new http.Agent({ keepAlive: true });
  return (input, init) => nodeFetch(new URL(input instanceof Request ? input.url : String(input)), init ?? {}, agent, plain);
}

const NO_BODY = new Set([101, 204, 205, 304]);

function nodeFetch(url: URL, init: RequestInit, agent: https.Agent, plain: http.Agent): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, key) => (headers[key] = value));
    const method = (init.method ?? 'GET').toUpperCase();
    const secure = url.protocol === 'https:';
    const req = (secure ? https : http).request(url, { method, headers, agent: secure ? agent : plain, signal: init.signal ?? undefined }, (res) => {
      const responseHeaders = new Headers();
      for (const [key, value] of Object.entries(res.headers)) {
        if (value === undefined) continue;
        for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(key, v);
      }
      const status = res.statusCode ?? 502;
      const empty = NO_BODY.has(status) || method === 'HEAD';
      if (empty) res.resume();
      // The web body reads `res` only when pulled (highWaterMark 0), so until then the raw
      // stream can be taken instead (NODE_BODY): one or the other, never both.
      let taken: 'web' | 'node' | null = null;
      let chunks: AsyncIterator<Buffer> | null = null;
      const web = empty
        ? null
        : new ReadableStream<Uint8Array>(
            {
              async pull(controller) {
                if (taken === 'node') throw new TypeError('the body was taken as a Node stream');
                taken = 'web';
                chunks ??= res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
                const { value, done } = await chunks.next();
                if (done) controller.close();
                else controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
              },
              cancel() {
                res.destroy();
              },
            },
            { highWaterMark: 0 },
          );
      const response = new Response(web, { status, statusText: res.statusMessage, headers: responseHeaders });
      Object.defineProperty(response, 'url', { value: url.toString() });
      Object.defineProperty(response, NODE_BODY, {
        value: (): Readable | null => {
          if (empty || taken !== null) return null;
          taken = 'node';
          return res;
        },
      });
      resolve(response);
    });
    // As fetch does: an aborted request rejects with the signal's reason (a TimeoutError of
    // AbortSignal.timeout tells a hung upstream from an unreachable one).
    req.on('error', (err) => reject(init.signal?.aborted ? (init.signal.reason as Error) : Object.assign(new TypeError('fetch failed'), { cause: err })));
    const body = init.body as unknown;
    if (body === undefined || body === null) return void req.end();
    if (typeof body === 'string' || body instanceof Uint8Array) return void req.end(body);
    const source = body instanceof ReadableStream ? Readable.fromWeb(body as import('node:stream/web').ReadableStream) : Readable.from(body as AsyncIterable<Uint8Array>);
    source.on('error', (err) => req.destroy(err));
    source.pipe(req);
  });
}
