/**
 * The one error type the client throws. It carries what a caller needs to decide what to
 * do next (the HTTP status and the spec error codes) and what a human needs to find the
 * failing call (method and URL) — but never credentials: user info and signed query
 * parameters (presigned URLs) are redacted before the URL is stored, because these
 * errors end up in logs.
 */

import { redactUrl as maskUrl } from '../config/redact.js';

/** One entry of the spec's `{"errors":[{code,message,detail}]}` body. */
export interface SpecError {
  code: string;
  message?: string;
  detail?: unknown;
}

export class RegistryClientError extends Error {
  override readonly name = 'RegistryClientError';

  constructor(
    message: string,
    /** The HTTP status; 0 when the failure happened on the client side (network, digest). */
    readonly status: number,
    readonly method: string,
    /** The request URL with credentials and signatures redacted. */
    readonly url: string,
    readonly errors: readonly SpecError[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The first spec error code (`MANIFEST_UNKNOWN`, `DENIED`, …), or undefined. */
  get code(): string | undefined {
    return this.errors[0]?.code;
  }

  /** Builds the error from a non-success response, reading (and so releasing) its body. */
  static async fromResponse(method: string, url: string | URL, res: Response): Promise<RegistryClientError> {
    const errors = method === 'HEAD' ? [] : await readSpecErrors(res);
    const safeUrl = redactUrl(url);
    const codes = errors.map((e) => e.code).join(', ');
    const text = `${method} ${safeUrl}: HTTP ${res.status}${codes ? ` ${codes}` : ''}${errors[0]?.message ? ` (${errors[0].message})` : ''}`;
    return new RegistryClientError(text, res.status, method, safeUrl, errors);
  }

  /** A client-side failure (digest mismatch, network error after the last retry). */
  static local(method: string, url: string | URL, message: string, code: string, cause?: unknown): RegistryClientError {
    const safeUrl = redactUrl(url);
    return new RegistryClientError(`${method} ${safeUrl}: ${message}`, 0, method, safeUrl, [{ code, message }], { cause });
  }
}

async function readSpecErrors(res: Response): Promise<SpecError[]> {
  try {
    const text = await res.text();
    const body = JSON.parse(text) as { errors?: unknown };
    if (!Array.isArray(body.errors)) return [];
    return body.errors
      .filter((e): e is SpecError => typeof e === 'object' && e !== null && typeof (e as SpecError).code === 'string')
      .map((e) => ({ code: e.code, message: e.message, detail: e.detail }));
  } catch {
    // Not JSON (a proxy's HTML error page, an empty body): the status alone must do.
    return [];
  }
}

/**
 * Credentials in error messages are masked the one way Berth masks URLs (src/config/redact.ts);
 * the client also drops the user name, which some registries take as a token by itself.
 */
export function redactUrl(input: string | URL): string {
  return maskUrl(input, { dropUser: true });
}
