import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Client } from 'ldapts';
import { lazyPackage } from '../../core/lazy.js';

/** The LDAP client library, loaded at the first directory call: a registry without LDAP never loads it (idle memory). */
export const ldapts = lazyPackage<typeof import('ldapts')>('ldapts');

/** How to reach the directory: URL, TLS (ldaps:// or StartTLS with a CA) and timeouts. */
export interface DirectoryEndpoint {
  url: string;
  starttls: boolean;
  /** PEM of the CA(s) the server certificate must chain to (undefined: the system's). */
  ca?: string;
  timeoutMs: number;
}

/** A connected client, TLS set up as configured (StartTLS done), not yet bound. */
export async function connect(endpoint: DirectoryEndpoint): Promise<Client> {
  const tlsOptions = tlsFor(endpoint);
  // ldapts speaks TLS from the first byte whenever tlsOptions are given: only for ldaps://; StartTLS gets them below.
  const implicit = endpoint.url.startsWith('ldaps:');
  const client = new (ldapts().Client)({
    url: endpoint.url,
    timeout: endpoint.timeoutMs,
    connectTimeout: endpoint.timeoutMs,
    ...(implicit ? { tlsOptions } : {}),
    strictDN: false,
  });
  try {
    if (endpoint.starttls) await withTimeout(client.startTLS(tlsOptions), endpoint.timeoutMs, 'StartTLS');
    return client;
  } catch (err) {
    await discard(client);
    throw err;
  }
}

/** Closes a client, ignoring a connection already gone. */
export async function discard(client: Client): Promise<void> {
  await client.unbind().catch(() => undefined);
}

function tlsFor(endpoint: DirectoryEndpoint): ConnectionOptions {
  const host = new URL(endpoint.url).hostname.replace(/^\[|\]$/g, '');
  return {
    host,
    // SNI takes host names only; the certificate is still checked against an IP literal.
    ...(isIP(host) ? {} : { servername: host }),
    ...(endpoint.ca ? { ca: endpoint.ca } : {}),
    minVersion: 'TLSv1.2',
  };
}

/** Reads the CA file once at start (a missing file is a startup error). */
export function readCa(path: string | undefined): string | undefined {
  return path === undefined ? undefined : readFileSync(path, 'utf8');
}

/** StartTLS has no timeout of its own in ldapts beyond the operation's: bound it here too. */
async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Service connections (bound as the service account) for user and group searches, reused
 * across logins: at most `size` open; a caller waits for a free one. A connection that failed
 * an operation is closed, never returned to the pool. User binds never use these (a bind
 * changes who the connection is).
 */
export class ServicePool {
  private readonly idle: Client[] = [];
  private open = 0;
  private readonly waiting: Array<(client: Client | null) => void> = [];
  private closed = false;

  constructor(
    private readonly endpoint: DirectoryEndpoint,
    private readonly bindDn: string,
    private readonly bindPassword: string,
    private readonly size: number,
    /** Counts binds (tests, diagnostics). */
    private readonly onBind: () => void = () => {},
  ) {}

  /**
   * Runs `work` on a service connection; the connection is closed instead of reused when `work`
   * throws. A reused connection that fails (the directory or a firewall dropped it while idle)
   * is replaced by a new one and `work` tried once more.
   */
  async use<T>(work: (client: Client) => Promise<T>, retry = true): Promise<T> {
    const { client, reused } = await this.acquire();
    try {
      const result = await work(client);
      this.release(client);
      return result;
    } catch (err) {
      this.open--;
      void discard(client);
      this.wake();
      if (reused && retry) return this.use(work, false);
      throw err;
    }
  }

  private async acquire(): Promise<{ client: Client; reused: boolean }> {
    if (this.closed) throw new Error('the LDAP connection pool is closed');
    const idle = this.idle.pop();
    if (idle && idle.isConnected) return { client: idle, reused: true };
    if (idle) {
      this.open--;
      void discard(idle);
    }
    if (this.open < this.size) {
      this.open++;
      try {
        return { client: await this.create(), reused: false };
      } catch (err) {
        this.open--;
        this.wake();
        throw err;
      }
    }
    const client = await new Promise<Client | null>((resolve) => this.waiting.push(resolve));
    return client ? { client, reused: true } : this.acquire();
  }

  private async create(): Promise<Client> {
    const client = await connect(this.endpoint);
    try {
      // An empty bind DN searches anonymously (no bind at all: an empty-password simple bind would be an unauthenticated bind).
      if (this.bindDn !== '') {
        this.onBind();
        await client.bind(this.bindDn, this.bindPassword);
      }
      return client;
    } catch (err) {
      await discard(client);
      throw err;
    }
  }

  private release(client: Client): void {
    const next = this.waiting.shift();
    if (next) return next(client);
    if (this.closed) {
      this.open--;
      void discard(client);
      return;
    }
    this.idle.push(client);
  }

  /** A slot freed (a connection closed): the next waiter opens a new one. */
  private wake(): void {
    this.waiting.shift()?.(null);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const resolve of this.waiting.splice(0)) resolve(null);
    const idle = this.idle.splice(0);
    this.open -= idle.length;
    await Promise.all(idle.map(discard));
  }
}
