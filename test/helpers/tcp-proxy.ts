import net from 'node:net';

/**
 * A TCP forwarder between Berth and a real dependency (PostgreSQL, S3), to take it "away"
 * without stopping the shared server: `refuse()` resets every connection and every new
 * one (database down), `blackhole()` keeps sockets open but stops moving bytes (network
 * partition / hung server), `restore()` forwards again. `resetNextReply()` cuts one reply
 * in the middle (the server going away while Berth reads from it).
 */
export type ProxyMode = 'forward' | 'refuse' | 'blackhole';

export class TcpProxy {
  private mode: ProxyMode = 'forward';
  /** The next request starting with `prefix` gets its reply cut by a reset after `afterBytes`. */
  private cut: { prefix: string; afterBytes: number } | null = null;
  /** Replies cut by resetNextReply() so far. */
  repliesCut = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(
    private readonly target: { host: string; port: number },
    server: net.Server,
  ) {
    this.server = server;
    server.on('connection', (socket) => this.accept(socket));
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target, net.createServer());
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Rewrites a PostgreSQL URL to go through the proxy. */
  urlFor(url: string): string {
    const parsed = new URL(url);
    parsed.host = `127.0.0.1:${this.port}`;
    return parsed.toString();
  }

  refuse(): void {
    this.mode = 'refuse';
    this.resetAll();
  }

  blackhole(): void {
    this.mode = 'blackhole';
    for (const socket of this.sockets) {
      socket.unpipe();
      socket.pause();
    }
  }

  /** Resets the connection of the next request whose bytes start with `prefix` (e.g. 'GET ') once `afterBytes` of its reply went through. */
  resetNextReply(prefix: string, afterBytes: number): void {
    this.cut = { prefix, afterBytes };
  }

  /** Forwards new connections again; connections stalled by a blackhole are reset, as a healed partition would. */
  restore(): void {
    if (this.mode === 'blackhole') this.resetAll();
    this.mode = 'forward';
  }

  async close(): Promise<void> {
    this.resetAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    this.track(client);
    if (this.mode === 'blackhole') {
      client.pause();
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    this.track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('data', (request: Buffer) => {
      const cut = this.cut;
      if (!cut || request.subarray(0, cut.prefix.length).toString() !== cut.prefix) return;
      this.cut = null;
      let relayed = 0;
      upstream.on('data', (reply: Buffer) => {
        relayed += reply.length;
        if (relayed < cut.afterBytes || client.destroyed) return;
        this.repliesCut++;
        client.resetAndDestroy();
      });
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.sockets.delete(socket);
    });
  }

  private resetAll(): void {
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
  }
}
