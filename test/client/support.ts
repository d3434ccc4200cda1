import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import net from 'node:net';
import type { Readable } from 'node:stream';

/**
 * Real-socket stand-ins for a bad network and a misbehaving registry, for the client's
 * resume and retry tests: no mocks, the client talks TCP/HTTP to these.
 */

/**
 * A TCP forwarder that, once armed with cutAfter(n), resets the connection after n more
 * bytes flowed from the registry to the client — a connection dropping mid-body.
 */
export class CuttingProxy {
  private budget: number | undefined;
  /** How many connections were cut so far. */
  cuts = 0;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  static async start(targetUrl: string): Promise<CuttingProxy> {
    const url = new URL(targetUrl);
    const proxy = new CuttingProxy(net.createServer(), { host: url.hostname, port: Number(url.port) });
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** The next response loses its connection after `bytes` more bytes (headers included). */
  cutAfter(bytes: number): void {
    this.budget = bytes;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => this.sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.on('data', (data: Buffer) => {
      if (this.budget !== undefined && data.length >= this.budget) {
        client.write(data.subarray(0, this.budget));
        this.budget = undefined;
        this.cuts++;
        // Flush what was allowed, then drop both sides mid-body.
        client.end(() => client.destroy());
        upstream.destroy();
        return;
      }
      if (this.budget !== undefined) this.budget -= data.length;
      if (!client.write(data)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
    upstream.on('end', () => client.end());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}

/**
 * An HTTP server answering the first `failures` requests with `status` (and Retry-After),
 * then forwarding to `target` — a registry behind an overloaded load balancer.
 */
export class FlakyFront {
  /** Every request seen: method, path and headers. */
  readonly seen: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];

  private constructor(
    private readonly server: Server,
    public failures: number,
  ) {}

  static async start(target: string, failures: number, status = 503, retryAfter = '0'): Promise<FlakyFront> {
    const targetUrl = new URL(target);
    const front: FlakyFront = new FlakyFront(
      createServer((req, res) => {
        front.seen.push({ method: req.method!, url: req.url!, headers: req.headers });
        if (front.failures > 0) {
          front.failures--;
          req.resume();
          res.writeHead(status, { 'retry-after': retryAfter, 'content-type': 'application/json' });
          res.end(JSON.stringify({ errors: [{ code: status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', message: 'try later' }] }));
          return;
        }
        const upstream = httpRequest(
          {
            host: targetUrl.hostname,
            port: targetUrl.port,
            method: req.method,
            path: req.url,
            headers: { ...req.headers, host: targetUrl.host },
          },
          (up) => {
            res.writeHead(up.statusCode!, up.headers);
            up.pipe(res);
          },
        );
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      }),
      failures,
    );
    await new Promise<void>((resolve) => front.server.listen(0, '127.0.0.1', resolve));
    return front;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A plain HTTP server with a handler, on a random port of `host`. */
export async function httpServer(
  handler: Parameters<typeof createServer>[1],
  host = '127.0.0.1',
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://${host === '127.0.0.1' ? '127.0.0.1' : host}:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Fast retries for tests: same policy shape, milliseconds instead of seconds. */
export const FAST_RETRY = { attempts: 4, baseDelayMs: 5, maxDelayMs: 50 };
