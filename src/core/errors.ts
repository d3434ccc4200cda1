/**
 * Every error Berth can answer with, in ONE table. Each row is a distinct condition (its
 * key) with the wire `code` clients see in the error body, its HTTP status and a default
 * message. Several rows may share a wire code — an oversized manifest is still
 * MANIFEST_INVALID on the wire, but 413 instead of 400 — so nothing ever overrides a
 * status: code that needs another status needs another row.
 *
 * The first block is the OCI distribution-spec table; the rest are registry-wide
 * conditions (named as CNCF Distribution does where it has a name) and the conditions of
 * the admin API (/api/v1), which has no OCI code to borrow.
 */
export const ERRORS = {
  // ── OCI distribution-spec codes ──────────────────────────────────────────────────────
  BLOB_UNKNOWN: { code: 'BLOB_UNKNOWN', status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { code: 'BLOB_UPLOAD_INVALID', status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { code: 'BLOB_UPLOAD_UNKNOWN', status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { code: 'DIGEST_INVALID', status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: {
    code: 'MANIFEST_BLOB_UNKNOWN',
    status: 400,
    message: 'manifest references a manifest or blob unknown to registry',
  },
  MANIFEST_INVALID: { code: 'MANIFEST_INVALID', status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { code: 'MANIFEST_UNKNOWN', status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { code: 'NAME_INVALID', status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { code: 'NAME_UNKNOWN', status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { code: 'SIZE_INVALID', status: 400, message: 'provided length did not match content length' },
  TAG_INVALID: { code: 'TAG_INVALID', status: 400, message: 'manifest tag did not match URI' },
  RANGE_INVALID: { code: 'RANGE_INVALID', status: 416, message: 'invalid content range' },
  PAGINATION_NUMBER_INVALID: { code: 'PAGINATION_NUMBER_INVALID', status: 400, message: 'invalid number of results requested' },
  UNAUTHORIZED: { code: 'UNAUTHORIZED', status: 401, message: 'authentication required' },
  DENIED: { code: 'DENIED', status: 403, message: 'requested access to the resource is denied' },
  /** The operation exists but this registry does not allow it (e.g. deletes disabled). */
  UNSUPPORTED: { code: 'UNSUPPORTED', status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { code: 'TOOMANYREQUESTS', status: 429, message: 'too many requests' },

  // ── Same wire codes, other statuses (what clients expect) ────────────────────────────
  /** A manifest over limits.manifestsize: 413 with the spec's MANIFEST_INVALID code (as zot; Distribution sends 400). */
  MANIFEST_TOO_LARGE: { code: 'MANIFEST_INVALID', status: 413, message: 'manifest exceeds the size limit' },
  /** A blob over limits.blobsize, or over what the storage back end can assemble. */
  BLOB_TOO_LARGE: { code: 'SIZE_INVALID', status: 413, message: 'blob exceeds the size limit' },
  /** A request body over the framework's limit (e.g. a JSON body to /api over 1 MiB). */
  BODY_TOO_LARGE: { code: 'SIZE_INVALID', status: 413, message: 'request body is too large' },
  /** The path exists but not with this method (the response carries Allow). */
  METHOD_NOT_ALLOWED: { code: 'UNSUPPORTED', status: 405, message: 'method not allowed' },
  /** No endpoint at this path. */
  ENDPOINT_NOT_FOUND: { code: 'UNSUPPORTED', status: 404, message: 'no such endpoint' },
  /** A request the HTTP layer cannot make sense of (bad framing, bad headers). */
  MALFORMED_REQUEST: { code: 'UNSUPPORTED', status: 400, message: 'malformed HTTP request' },
  REQUEST_TIMEOUT: { code: 'UNSUPPORTED', status: 408, message: 'request took too long' },
  UNSUPPORTED_MEDIA_TYPE: { code: 'UNSUPPORTED', status: 415, message: 'unsupported content type' },
  HEADERS_TOO_LARGE: { code: 'UNSUPPORTED', status: 431, message: 'request headers are too large' },

  // ── Admin API (/api/v1) and token server conditions ──────────────────────────────────
  /** An argument, query parameter or body field is invalid. */
  INVALID_ARGUMENT: { code: 'INVALID_ARGUMENT', status: 400, message: 'invalid argument' },
  /** A user, project, member or robot that does not exist (or that the caller may not see). */
  NOT_FOUND: { code: 'NOT_FOUND', status: 404, message: 'not found' },
  /** The object already exists, or its state forbids the change (a project still holding repositories). */
  CONFLICT: { code: 'CONFLICT', status: 409, message: 'conflict' },
  /** A condition the request states (If-Match, current password…) does not hold. */
  PRECONDITION_FAILED: { code: 'PRECONDITION_FAILED', status: 412, message: 'precondition failed' },

  // ── Server-side conditions (not in the OCI table; named as CNCF Distribution does) ───
  UNAVAILABLE: { code: 'UNAVAILABLE', status: 503, message: 'service unavailable' },
  /** A pull-through cache's upstream could not be reached or answered an error (502), or did not answer in time (504). */
  UPSTREAM_FAILED: { code: 'UNAVAILABLE', status: 502, message: 'upstream registry failed' },
  UPSTREAM_TIMEOUT: { code: 'UNAVAILABLE', status: 504, message: 'upstream registry did not answer in time' },
  STORAGE_FULL: { code: 'STORAGE_FULL', status: 507, message: 'insufficient storage' },
  UNKNOWN: { code: 'UNKNOWN', status: 500, message: 'unknown error' },
} as const satisfies Record<string, { code: string; status: number; message: string }>;

/** A row of the table: the condition. */
export type ErrorKind = keyof typeof ERRORS;
/** A wire code, as clients see it in `errors[].code`. */
export type ErrorCode = (typeof ERRORS)[ErrorKind]['code'];

export class RegistryError extends Error {
  /** The table row this error is. */
  readonly kind: ErrorKind;
  /** The wire code (`errors[].code`). */
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers the error must carry (e.g. `Range` on a 416). */
  readonly headers: Record<string, string>;

  constructor(kind: ErrorKind, message?: string, detail?: unknown, headers: Record<string, string> = {}) {
    const row = ERRORS[kind];
    super(message ?? row.message);
    this.name = 'RegistryError';
    this.kind = kind;
    this.code = row.code;
    this.status = row.status;
    this.detail = detail;
    this.headers = headers;
  }
}

/**
 * Framework-level client errors (Fastify's 4xx, Node's HTTP parser) by status, so they
 * answer through the same table. A status without a row becomes MALFORMED_REQUEST (400).
 */
export function clientErrorKind(status: number): ErrorKind {
  switch (status) {
    case 408:
      return 'REQUEST_TIMEOUT';
    case 413:
      return 'BODY_TOO_LARGE';
    case 415:
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 429:
      return 'TOOMANYREQUESTS';
    case 431:
      return 'HEADERS_TOO_LARGE';
    default:
      return 'MALFORMED_REQUEST';
  }
}

/**
 * Domain errors adapters throw: they say what happened, not how to answer it. The core
 * (src/core/uploads.ts storageError) or the HTTP error handler maps them through ERRORS.
 */

/** A blob is larger than the storage back end can hold (e.g. S3's 10,000-part limit). → BLOB_TOO_LARGE */
export class BlobTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BlobTooLargeError';
  }
}

/** The disk, quota or database is full; nothing was stored. → STORAGE_FULL */
export class StorageFullError extends Error {
  constructor(message = 'storage is full', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageFullError';
  }
}

/** Maps a domain error to its row's RegistryError; null for anything else. */
export function domainError(err: unknown): RegistryError | null {
  if (err instanceof RegistryError) return err;
  if (err instanceof BlobTooLargeError) return new RegistryError('BLOB_TOO_LARGE', err.message);
  if (err instanceof StorageFullError)
    return new RegistryError('STORAGE_FULL', 'storage is full: nothing was stored; retry once space is freed');
  return null;
}

/**
 * Driver codes of a conflict between concurrent transactions that the database resolved by
 * aborting one of them: a deadlock or a serialization failure (PostgreSQL, MySQL/MariaDB).
 * The aborted transaction, run again from its start, normally goes through.
 */
const CONFLICT_CODES = new Set(['40P01', '40001', 'ER_LOCK_DEADLOCK']);

/**
 * Driver codes of a database refusal that the same work, tried again, gets past: a conflict
 * (above), or a lock wait that ran out (PostgreSQL, MySQL/MariaDB, SQLite).
 */
const TRANSIENT_DATABASE_CODES = new Set([...CONFLICT_CODES, '55P03', 'ER_LOCK_WAIT_TIMEOUT', 'SQLITE_BUSY']);

function hasDriverCode(err: unknown, codes: Set<string>): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && codes.has(code)) return true;
  }
  return false;
}

/** True for a database refusal that a retry resolves (see TRANSIENT_DATABASE_CODES), also when it is the `cause` of another error. */
export function isTransientDatabaseError(err: unknown): boolean {
  return hasDriverCode(err, TRANSIENT_DATABASE_CODES);
}

/**
 * True for a transaction the database aborted to resolve a conflict with another (deadlock,
 * serialization failure), also as a `cause`: the metadata adapters run such a transaction
 * again at once. Lock waits that ran out are not among them: they already waited a statement
 * timeout, and their callers decide (retry later, re-queue).
 */
export function isDatabaseConflict(err: unknown): boolean {
  return hasDriverCode(err, CONFLICT_CODES);
}
