import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type ProxyMode = 'pass' | 'down' | 'ratelimit' | 'hang' | 'corrupt';

/**
 * A tiny HTTP proxy in front of an upstream registry that counts the requests it forwards
 * (method + path) and can play a failing upstream: `down` drops connections, `ratelimit`
 * answers 429, `hang` never answers, `corrupt` flips one byte in the middle of every blob GET's
 * body (same length). Tests count upstream fetches with it.
 */
export class CountingProxy {
  mode: ProxyMode = 'pass';
  readonly requests: string[] = [];
  private readonly server: http.Server;
  private readonly hung = new Set<http.ServerResponse>();

  private constructor(private readonly target: URL) {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  static async start(target: string): Promise<CountingProxy> {
    const proxy = new CountingProxy(new URL(target));
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** How many forwarded requests match `method` and a path containing `fragment`. */
  count(method: string, fragment: string): number {
    return this.requests.filter((r) => r.startsWith(`${method} `) && r.includes(fragment)).length;
  }

  reset(): void {
    this.requests.length = 0;
  }

  async stop(): Promise<void> {
    for (const res of this.hung) res.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.mode === 'down') return void req.socket.destroy();
    if (this.mode === 'hang') {
      this.hung.add(res);
      return;
    }
    if (this.mode === 'ratelimit') {
      res
        .writeHead(429, { 'content-type': 'application/json', 'retry-after': '0' })
        .end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'pull rate limit' }] }));
      return;
    }
    this.requests.push(`${req.method} ${req.url}`);
    const upstream = http.request(
      {
        host: this.target.hostname,
        port: this.target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: this.target.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        const length = Number(answer.headers['content-length']);
        if (this.mode !== 'corrupt' || req.method !== 'GET' || !req.url?.includes('/blobs/sha256:') || !(length > 0))
          return void answer.pipe(res);
        const middle = Math.floor(length / 2);
        let at = 0;
        answer.on('data', (chunk: Buffer) => {
          if (middle >= at && middle < at + chunk.length) {
            chunk = Buffer.from(chunk);
            chunk[middle - at] = chunk[middle - at]! ^ 0xff;
          }
          at += chunk.length;
          if (!res.write(chunk)) answer.pause();
        });
        res.on('drain', () => answer.resume());
        answer.on('end', () => res.end());
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }
}
