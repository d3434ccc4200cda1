import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the receiver got. */
export interface Received {
  /** When the request arrived (its answer may come later: see `delay`). */
  at: number;
  answeredAt: number;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

export type Arrival = Omit<Received, 'status' | 'answeredAt'>;

/**
 * A real HTTP webhook receiver: records every POST and answers what `respond` says (200 by
 * default). It can be stopped and started again on the same port (a receiver that is down).
 */
export class Receiver {
  /** Every answered request (status as answered). */
  readonly requests: Received[] = [];
  /** Every request as it arrived, before its (possibly delayed) answer: a sender killed meanwhile never saw the answer. */
  readonly arrivals: Arrival[] = [];
  respond: (request: Arrival) => number = () => 200;
  /** Milliseconds to hold each answer (a slow receiver). */
  delay: (request: Arrival) => number = () => 0;
  private server: Server | null = null;
  private port = 0;

  static async start(): Promise<Receiver> {
    const receiver = new Receiver();
    await receiver.listen();
    return receiver;
  }

  async listen(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const request = { at: Date.now(), path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.arrivals.push(request);
        const status = this.respond(request);
        const answer = () => {
          this.requests.push({ ...request, status, answeredAt: Date.now() });
          res.writeHead(status).end();
        };
        const wait = this.delay(request);
        if (wait > 0) setTimeout(answer, wait).unref();
        else answer();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Requests to `path` that were answered 2xx. */
  delivered(path: string): Received[] {
    return this.requests.filter((r) => r.path === path && r.status < 300);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Waits (at most `timeoutMs`) until `done()` holds; fails naming `what`. */
  async waitFor(what: string, done: () => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}; received: ${JSON.stringify(this.requests.map((r) => [r.path, r.status, r.body.slice(0, 200)]))}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

/** Config for fast delivery in tests: events dispatched and queues polled every 100 ms. */
export function fastWebhooks(endpoints: Record<string, unknown>[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    events: { interval: '100ms', pullflushinterval: '1h' },
    notifications: { interval: '100ms', maxbackoff: '2s', ...extra, endpoints },
    gc: { enabled: false },
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function json(request: Received): any {
  return JSON.parse(request.body);
}
