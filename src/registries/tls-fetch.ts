import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { NODE_BODY } from '../client/transport.js';
import { READ_INTO, readIntoAgent, socketReads, type ReadSink } from './socket-reads.js';

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
  // Connections read with onread: a blob body can then be read straight into a download's memory (socket-reads.ts).
  const agent = readIntoAgent(
    new https.Agent({
      keepAlive: true,
      rejectUnauthorized: !tls.insecure,
      ...(tls.caBundle ? { ca: [...rootCertificates, tls.caBundle] } : {}),
    }),
  );
  const plain = readIntoAgent(new http.Agent({ keepAlive: true }));
  return (input, init) => nodeFetch(new URL(input instanceof Request ? input.url : String(input)), init ?? {}, agent, plain);
}

const NO_BODY = new Set([101, 204, 205, 304]);

function nodeFetch(url: URL, init: RequestInit, agent: https.Agent, plain: http.Agent): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, key) => (headers[key] = value));
    const method = (init.method ?? 'GET').toUpperCase();
    const secure = url.protocol === 'https:';
    const req = (secure ? https : http).request(
      url,
      { method, headers, agent: secure ? agent : plain, signal: init.signal ?? undefined },
      (res) => {
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
            return rawBody(res) ?? res;
          },
        });
        resolve(response);
      },
    );
    // As fetch does: an aborted request rejects with the signal's reason (a TimeoutError of
    // AbortSignal.timeout tells a hung upstream from an unreachable one).
    req.on('error', (err) =>
      reject(init.signal?.aborted ? (init.signal.reason as Error) : Object.assign(new TypeError('fetch failed'), { cause: err })),
    );
    const body = init.body as unknown;
    if (body === undefined || body === null) return void req.end();
    if (typeof body === 'string' || body instanceof Uint8Array) return void req.end(body);
    const source =
      body instanceof ReadableStream
        ? Readable.fromWeb(body as import('node:stream/web').ReadableStream)
        : Readable.from(body as AsyncIterable<Uint8Array>);
    source.on('error', (err) => req.destroy(err));
    source.pipe(req);
  });
}

/** Body bytes a raw body passes on per push before it waits for its reader (the socket is paused meanwhile). */
const RAW_HIGH_WATER_MARK = 1024 * 1024;

const CLOSED_EARLY = 'the upstream body was closed before its last byte';

/**
 * The body of a Content-Length response read from its socket directly, past Node's HTTP parser,
 * or null where that is not possible (chunked, already complete, a socket or a Node version
 * without the expected `socketOnData` listener): then `res` itself is the body.
 *
 * Why: Node's HTTP client copies every body chunk out of the socket's read buffer
 * (`Buffer::Copy` in the parser's on_body), one more 64 KiB allocation and memcpy per read,
 * and a second buffer per read for the garbage collector. Reading 1 GiB through the parser
 * cost 2.1–2.2 CPU-s against 1.0 read raw (the two in one process, loopback). Once the
 * response head is parsed, the bytes that follow on the connection are the body's
 * `content-length` bytes, so they are taken as the socket delivers them: first what the parser
 * already pushed into `res`, then the socket's chunks themselves. The connection is never
 * reused (destroyed at the end: the agent then forgets it), and a connection that ends or
 * fails before the last byte fails the body, as a short response through `res` would.
 *
 * On a connection of readIntoAgent (every one of endpointFetch's), the body can instead be read
 * straight into a sink's memory (bodyReader in socket-reads.ts): the stream side then stops.
 */
export function rawBody(res: http.IncomingMessage): Readable | null {
  const socket = res.socket;
  const length = Number(res.headers['content-length']);
  if (
    !socket ||
    socket.destroyed ||
    res.destroyed ||
    res.complete ||
    res.readableEnded ||
    res.headers['transfer-encoding'] !== undefined ||
    !Number.isSafeInteger(length)
  )
    return null;
  const parserData = socket.listeners('data').filter((l) => (l as { name?: string }).name === 'socketOnData');
  if (parserData.length !== 1) return null;
  socket.removeListener('data', parserData[0] as (...args: unknown[]) => void);
  // The HTTP client still watches the socket (its end and close abort `res`): nobody reads `res` any more.
  res.on('error', () => undefined);
  // Stop the parser's own flow control from resuming the socket behind ours.
  res.pause();
  let received = 0;
  let ended = false;
  /** Set once the body is read into a sink: the stream side no longer moves the socket. */
  let intoSink = false;
  const reads = socketReads(socket);
  const body = new Readable({
    highWaterMark: RAW_HIGH_WATER_MARK,
    read() {
      if (!intoSink) socket.resume();
    },
    destroy(err, callback) {
      detach();
      reads?.abort(err ?? new Error(CLOSED_EARLY));
      socket.destroy();
      callback(err);
    },
  });
  if (reads) {
    Object.defineProperty(body, READ_INTO, {
      value: async (sink: ReadSink): Promise<void> => {
        if (intoSink) throw new Error('the body is already being read into a sink');
        intoSink = true;
        socket.pause();
        detach();
        // Its errors (a destroy with a reason: an idle timeout) come out of the read below; nobody reads the stream side.
        body.on('error', () => undefined);
        // What the stream side holds (bytes that came with the head, or read since), then the rest from the socket.
        const chunks: Buffer[] = [];
        for (let chunk = body.read() as Buffer | null; chunk !== null; chunk = body.read() as Buffer | null) chunks.push(chunk);
        if (body.destroyed) throw body.errored ?? new Error(CLOSED_EARLY);
        try {
          await reads.readInto(sink, Buffer.concat(chunks), length - received, length);
        } finally {
          ended = true;
          // Never back to the agent's pool: the parser did not see the body, so the connection's state is ours.
          socket.destroy();
        }
      },
    });
  }
  const take = (chunk: Buffer): void => {
    if (ended) return;
    let bytes = chunk;
    if (received + bytes.length > length) bytes = bytes.subarray(0, length - received);
    received += bytes.length;
    const more = body.push(bytes);
    if (received === length) {
      ended = true;
      detach();
      // Never back to the agent's pool: the parser did not see the body, so the connection's state is ours.
      socket.destroy();
      body.push(null);
    } else if (!more) socket.pause();
  };
  const cut = (err?: Error): void => {
    if (ended) return;
    ended = true;
    detach();
    body.destroy(err ?? new Error(`the upstream connection closed after ${received} of ${length} body bytes`));
  };
  const onEnd = () => cut();
  const onClose = () => cut();
  const onError = (err: Error) => cut(err);
  function detach(): void {
    socket!.off('data', take);
    socket!.off('end', onEnd);
    socket!.off('close', onClose);
    socket!.off('error', onError);
  }
  // What the parser already pushed (bytes that came with the head), then the socket's chunks.
  for (let chunk = res.read() as Buffer | null; chunk !== null && !ended; chunk = res.read() as Buffer | null) take(chunk);
  if (!ended) {
    socket.on('data', take);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('error', onError);
    // A connection that ended before the body was taken sends no more events: fail now rather than hang.
    if (socket.readableEnded) cut();
  }
  return body;
}
