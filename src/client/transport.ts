/**
 * One HTTP request to a registry, with everything every call needs done in one place:
 * base URL resolution, authentication challenges (auth.ts), retries with backoff
 * (retry.ts) and redirects. Operations (blobs.ts, manifests.ts) describe requests; this
 * file sends them. `send` never throws for an HTTP status — the operation decides which
 * statuses are success — only for a network failure after the last retry.
 *
 * Uses Node's built-in fetch (undici): no dependency, and streaming bodies both ways.
 */
import { Readable } from 'node:stream';
import { Authenticator, parseChallenge, type Credentials } from './auth.js';
import { RegistryClientError } from './errors.js';
import { backoffDelay, DEFAULT_RETRY, isIdempotentMethod, isRetryableStatus, parseRetryAfter, sleep, type RetryPolicy } from './retry.js';

/** Buffers and strings can be sent again; streams only once. */
export type RequestBody = Buffer | Uint8Array | string | Readable | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

export interface ClientRequest {
  method: string;
  /** A path (`/v2/…`) resolved against the registry, or an absolute URL (an upload Location). */
  url: string | URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Token scopes the request needs (`repository:library/alpine:pull`), for the token flow. */
  scopes?: readonly string[];
  /**
   * Overrides the method's idempotency for retries: an upload PATCH with a Buffer and a
   * Content-Range may be repeated, a POST starting an upload only leaks a session.
   */
  idempotent?: boolean;
  signal?: AbortSignal;
  /** `manual` hands redirects back to the caller (a test asserting on the 307 itself). */
  redirect?: 'follow' | 'manual';
}

export interface TransportOptions {
  /** The registry, e.g. `http://127.0.0.1:5000`. */
  baseUrl: string;
  credentials?: Credentials;
  /** Headers sent with every request (a User-Agent, a fixed Authorization). */
  headers?: Record<string, string>;
  retry?: Partial<RetryPolicy>;
  /** Redirects followed per request (307 to a presigned URL, then none). */
  maxRedirects?: number;
  /**
   * Answer 401 challenges (default true). Off for callers that assert on the 401 itself
   * (the spec tests), so the client never fetches a token behind their back.
   */
  answerChallenges?: boolean;
  /**
   * The fetch to send with (default: Node's global fetch). A caller with TLS options Node's
   * fetch cannot take per request (a CA bundle, skipping verification for an `insecure`
   * endpoint: src/registries/tls-fetch.ts) passes its own; token requests use it too.
   */
  fetch?: typeof fetch;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** A 401 is answered at most this often per request: one token, then one wider token for insufficient_scope. */
const MAX_AUTH_ROUNDS = 2;

export class Transport {
  readonly base: URL;
  readonly retry: RetryPolicy;
  private readonly auth: Authenticator;
  private readonly headers: Record<string, string>;
  private readonly maxRedirects: number;
  private readonly answerChallenges: boolean;
  private readonly fetch: typeof fetch;

  constructor(options: TransportOptions) {
    this.base = new URL(options.baseUrl);
    // `https://user:pass@host` is a common way to configure a registry; fetch refuses such
    // URLs, and they would leak into error messages. Take them as credentials instead.
    let credentials = options.credentials;
    if (this.base.username) {
      credentials ??= { username: decodeURIComponent(this.base.username), password: decodeURIComponent(this.base.password) };
      this.base.username = '';
      this.base.password = '';
    }
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.headers = lowerKeys(options.headers ?? {});
    this.maxRedirects = options.maxRedirects ?? 5;
    this.answerChallenges = options.answerChallenges ?? true;
    const send = options.fetch ?? ((input: Parameters<typeof fetch>[0], init?: RequestInit) => fetch(input, init));
    this.fetch = send;
    this.auth = new Authenticator(credentials, (url, headers) => send(url, { headers }));
  }

  resolve(url: string | URL): URL {
    return new URL(url, this.base);
  }

  async send(req: ClientRequest): Promise<Response> {
    let method = req.method.toUpperCase();
    let url = this.resolve(req.url);
    let body = req.body;
    const scopes = req.scopes ?? [];
    const oneShot = body !== undefined && !isReplayable(body);
    const retryable = !oneShot && (req.idempotent ?? isIdempotentMethod(method));
    const explicit = lowerKeys(req.headers ?? {});
    // A caller's own Authorization (or a fixed one from the options) wins over the flow.
    const fixed = explicit.authorization ?? this.headers.authorization;
    let authorization = fixed ?? this.auth.preemptive(scopes);
    let bodySent = false;
    let attempt = 0;
    let authRounds = 0;
    let redirects = 0;

    for (;;) {
      attempt++;
      if (oneShot && bodySent) throw RegistryClientError.local(method, url, 'cannot resend a streamed request body', 'BODY_NOT_REPLAYABLE');
      const headers: Record<string, string> = { ...this.headers, ...explicit };
      delete headers.authorization;
      // Credentials go to the registry's own origin only: a redirect to a presigned
      // storage URL must not receive them (the signature is the credential there). A
      // header the caller fixed still goes to the URL the caller named, on any origin.
      const ownOrigin = url.origin === this.base.origin;
      if (authorization && (ownOrigin || (redirects === 0 && authorization === fixed))) headers.authorization = authorization;

      let res: Response;
      try {
        res = await this.fetch(url, {
          method,
          headers,
          body: toFetchBody(body),
          redirect: 'manual',
          signal: req.signal,
          ...(oneShot ? { duplex: 'half' } : {}),
        } as RequestInit);
      } catch (err) {
        if (req.signal?.aborted) throw err;
        bodySent ||= oneShot;
        if (retryable && attempt < this.retry.attempts) {
          await sleep(backoffDelay(attempt, this.retry), req.signal);
          continue;
        }
        throw RegistryClientError.local(method, url, `network error: ${describe(err)}`, 'NETWORK', err);
      }
      bodySent ||= oneShot;

      if (res.status === 401 && this.answerChallenges && ownOrigin && authRounds < MAX_AUTH_ROUNDS && !oneShot) {
        const challenge = parseChallenge(res.headers.get('www-authenticate'));
        const next = challenge ? await this.auth.respond(challenge, scopes, authorization) : undefined;
        if (next) {
          await discard(res);
          authRounds++;
          attempt--; // an auth round is not a failure
          authorization = next;
          continue;
        }
      }

      const location = res.headers.get('location');
      if (
        REDIRECTS.has(res.status) &&
        location &&
        req.redirect !== 'manual' &&
        redirects < this.maxRedirects &&
        (method === 'GET' || method === 'HEAD' || !oneShot)
      ) {
        await discard(res);
        redirects++;
        attempt--;
        url = new URL(location, url);
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
          method = method === 'HEAD' ? 'HEAD' : 'GET';
          body = undefined;
        }
        continue;
      }

      if (isRetryableStatus(res.status) && retryable && attempt < this.retry.attempts) {
        const wait = backoffDelay(attempt, this.retry, parseRetryAfter(res.headers.get('retry-after')));
        await discard(res);
        await sleep(wait, req.signal);
        continue;
      }
      return res;
    }
  }

  /** Sends the request and throws a RegistryClientError unless the status is one of `ok`. */
  async expect(req: ClientRequest, ok: readonly number[]): Promise<Response> {
    const res = await this.send(req);
    if (ok.includes(res.status)) return res;
    throw await RegistryClientError.fromResponse(req.method.toUpperCase(), res.url || this.resolve(req.url), res);
  }
}

function isReplayable(body: RequestBody): body is Buffer | Uint8Array | string {
  return typeof body === 'string' || body instanceof Uint8Array;
}

function toFetchBody(body: RequestBody | undefined): BodyInit | undefined {
  if (body === undefined || typeof body === 'string') return body;
  // A fresh view each time: fetch may detach the buffer it is given.
  if (body instanceof Uint8Array) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength) as unknown as BodyInit;
  return body as unknown as BodyInit;
}

/**
 * A fetch implementation that reads responses with node:http (src/registries/tls-fetch.ts)
 * attaches, under this key, a function handing out the Node stream behind the Response's body,
 * as long as nobody has read the web body. A blob download then reads the socket's chunks
 * directly: a WHATWG stream (and Readable.fromWeb on top) costs about 0.8 CPU-s per GiB more.
 */
export const NODE_BODY = Symbol.for('berth.client.nodeBody');

/**
 * The response body as a Node Readable: the raw one when the fetch offers it (see NODE_BODY),
 * otherwise the web body adapted; null for a response without a body. Take it once, instead
 * of reading `res.body`.
 */
export function nodeBody(res: Response): Readable | null {
  const take = (res as unknown as { [NODE_BODY]?: () => Readable | null })[NODE_BODY];
  const raw = take?.() ?? null;
  if (raw) return raw;
  return res.body ? Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>) : null;
}

/** Reads and drops a response body so the keep-alive connection can be reused. */
export async function discard(res: Response): Promise<void> {
  try {
    await res.arrayBuffer();
  } catch {
    // The connection is gone anyway.
  }
}

function lowerKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

/** undici wraps the socket error in `cause`; that is the useful part (ECONNRESET, ECONNREFUSED). */
export function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  const text = cause ? `${e.message ?? String(err)} (${cause})` : (e.message ?? String(err));
  // Messages may quote a URL; never let user info through.
  return text.replace(/\/\/[^/@\s]+@/g, '//');
}

/** The target of a `Link: <…>; rel="next"` header (RFC 8288), or null on the last page. */
export function nextLink(header: string | null): string | null {
  if (!header) return null;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /<([^>]+)>\s*;(.*)$/.exec(part.trim());
    if (m && /\brel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?/.test(m[2]!)) return m[1]!;
  }
  return null;
}
