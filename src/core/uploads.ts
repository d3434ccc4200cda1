import { randomUUID, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { newHash, parseDigest, type DigestAlgorithm, type ParsedDigest } from './digest.js';
import { RegistryError, domainError } from './errors.js';
import type { Operation } from './events.js';
import { UploadNotFoundError, type BlobStore, type UploadRecord, type UploadRows } from './ports.js';

export interface UploadLimits {
  /** Largest blob accepted, in bytes; 0 = unlimited. */
  maxBlobSize: number;
  /** Data-carrying upload requests in flight at once. */
  maxConcurrentTransfers: number;
  /** Running hashes kept in memory (default MAX_HELD_HASHES). */
  maxHeldHashes?: number;
  /**
   * Whether a request holds its session in the metadata database against other processes
   * (default true). Only a single process on its own SQLite file can do without.
   */
  claimWriters?: boolean;
}

/** A blob whose bytes are complete and verified, about to be recorded. */
export interface BlobCommit extends Operation {
  repository: string;
  digest: string;
  size: number;
  uploadId: string;
  /** When the session last received bytes (GC's race rule compares it with byte deletions). */
  lastAppendAt: number;
}

/** Where the upload flow hands over to the registry's rules (policies, the commit transaction). */
export interface UploadHooks {
  /** Before a session starts: policies may refuse, sparing the client the transfer. */
  start(repository: string, op: Operation): Promise<void>;
  /** Before the verified bytes move to their content address: policies may refuse early. */
  check(commit: BlobCommit): Promise<void>;
  /** Records and links the blob once its bytes are durable at their content address. */
  commit(commit: BlobCommit): Promise<void>;
}

/** Hooks for a standalone UploadService (e.g. purging from the CLI): nothing to ask, nothing to record. */
export const NO_UPLOAD_HOOKS: UploadHooks = {
  start: async () => undefined,
  check: async () => undefined,
  commit: async () => {
    throw new Error('this UploadService cannot commit blobs');
  },
};

export interface ChunkRange {
  start: number;
  end: number;
}

/** What the HTTP layer reports back to the client after each step. */
export interface UploadStatus {
  id: string;
  repository: string;
  size: number;
}

/**
 * Blob upload sessions: start, append chunks while hashing, verify, commit.
 *
 * The running SHA-256 of each session is kept in memory between chunks. A process
 * that does not hold it (after a restart, or another replica) rebuilds it by re-reading
 * the staged bytes, so any process can continue any session.
 */
export class UploadService {
  /**
   * Running hashes of sessions this process appended to. Bounded: with several replicas an
   * upload is often finished elsewhere and its entry never deleted here; evicting the
   * oldest only costs a rehash of staged bytes if that session comes back.
   */
  private readonly hashes = new Map<string, { hash: Hash; size: number }>();
  /** Sessions a request of this process is writing to or committing, with that request's state. */
  private readonly busy = new Map<string, Writer>();
  private transfers = 0;

  constructor(
    private readonly blobs: BlobStore,
    private readonly sessions: UploadRows,
    private readonly limits: UploadLimits,
    private readonly hooks: UploadHooks = NO_UPLOAD_HOOKS,
  ) {}

  async start(repository: string, op: Operation = {}): Promise<UploadStatus> {
    await this.hooks.start(repository, op);
    const id = randomUUID();
    const staging = await this.blobs.createUpload(id);
    await this.sessions.create({ id, repository, size: 0, staging, createdAt: new Date() });
    return { id, repository, size: 0 };
  }

  /**
   * Where the session stands. It answers with its Range only when its staging area holds the
   * recorded bytes, so the PUT that follows can complete it: a session whose staged bytes are
   * gone (a crash after its bytes moved to their content address but before that was
   * recorded, or power lost before they reached the disk) is dropped here and reported as
   * unknown, before the client re-sends anything.
   */
  async status(repository: string, id: string): Promise<UploadStatus> {
    // A request of this process that is finishing, or whose client went away, settles first: the
    // client asking right after a cut connection gets the durable Range, not one about to change.
    await this.settled(id);
    const record = await this.find(repository, id);
    // Still a request of this process writing or committing it: its staging area is in flux.
    if (!this.busy.has(id)) await this.verifyStaged(record);
    return { id, repository, size: record.size };
  }

  /**
   * Appends a request body to the session. With `range` (PATCH Content-Range), the
   * chunk must start exactly where the upload ends, else 416 with the current range.
   */
  async append(repository: string, id: string, body: Readable, range?: ChunkRange, declaredLength?: number): Promise<UploadStatus> {
    return this.exclusive(
      id,
      async (claim) => {
        const record = await this.find(repository, id);
        if (range) {
          if (range.start !== record.size || range.end < range.start - 1) {
            throw rangeError(record, `chunk range ${range.start}-${range.end} does not continue the upload at offset ${record.size}`);
          }
          const expected = range.end - range.start + 1;
          if (declaredLength !== undefined && declaredLength !== expected) {
            throw rangeError(record, `Content-Length ${declaredLength} does not match Content-Range ${range.start}-${range.end}`);
          }
        }
        if (this.limits.maxBlobSize > 0 && declaredLength !== undefined && record.size + declaredLength > this.limits.maxBlobSize) {
          throw tooBig(this.limits.maxBlobSize);
        }
        const size = await this.transfer(record, body, range ? range.end - range.start + 1 : undefined, claim);
        return { id, repository, size };
      },
      body,
    );
  }

  /**
   * Completes the session: appends the final body if any, verifies `digest` against
   * everything received, makes the bytes durable at their content address and links
   * the blob into the repository. A mismatch discards the upload.
   */
  async complete(
    repository: string,
    id: string,
    digest: string,
    body?: Readable,
    range?: ChunkRange,
    declaredLength?: number,
    op: Operation = {},
  ): Promise<string> {
    const expected = parseDigest(digest);
    try {
      return await this.finish(repository, id, expected, body, range, declaredLength, op);
    } catch (err) {
      // A re-sent closing PUT of a session that already committed this blob: the same answer again.
      if (!isUnknownUpload(err) || !(await this.finishedAs(repository, id, expected.value))) throw err;
      body?.resume();
      return expected.value;
    }
  }

  private async finish(
    repository: string,
    id: string,
    expected: ParsedDigest,
    body: Readable | undefined,
    range: ChunkRange | undefined,
    declaredLength: number | undefined,
    op: Operation,
  ): Promise<string> {
    if (body) {
      // The closing PUT sent twice (its answer was lost; a proxy or the client re-sent it) after the
      // first copy's bytes were appended: the staged bytes are already the blob, the body a copy.
      if (await this.alreadyHolds(repository, id, expected)) body.resume();
      else await this.append(repository, id, body, range, declaredLength);
    }
    return this.exclusive(id, async (claim) => {
      const record = await this.find(repository, id);
      const actual = await this.digestOf(record, expected.algorithm);
      if (actual !== expected.value) {
        await this.discard(record);
        throw new RegistryError('DIGEST_INVALID', `digest mismatch: content hashes to ${actual}, not ${expected.value}`, {
          expected: expected.value,
          actual,
        });
      }
      const commit: BlobCommit = {
        repository,
        digest: expected.value,
        size: record.size,
        uploadId: id,
        lastAppendAt: record.updatedAt.getTime(),
        actor: op.actor,
        ip: op.ip,
      };
      await this.hooks.check(commit);
      await this.blobs.commitUpload(id, record.staging, expected.value, record.size).catch((err) => this.lostIf(record, err));
      await this.hooks.commit(commit);
      // The commit deleted the session row, and its claim with it.
      claim.released = true;
      this.hashes.delete(id);
      // The session row is gone with the commit: only now may its staging area go (best effort:
      // a crash here leaves segments no session names, which fsck --repair removes).
      await this.blobs.abortUpload(id, record.staging).catch(() => undefined);
      return expected.value;
    });
  }

  /**
   * POST ?digest=: one request carries the whole blob. The client never learns the
   * session's id, so a failure of any kind discards the session instead of leaking it.
   */
  async monolithic(repository: string, digest: string, body: Readable, declaredLength?: number, op: Operation = {}): Promise<string> {
    parseDigest(digest);
    const { id } = await this.start(repository, op);
    try {
      return await this.complete(repository, id, digest, body, undefined, declaredLength, op);
    } catch (err) {
      // A digest mismatch has already discarded it; anything else (size limit, early EOF) has not.
      await this.cancel(repository, id).catch(() => undefined);
      throw err;
    }
  }

  async cancel(repository: string, id: string): Promise<void> {
    await this.exclusive(id, async () => this.discard(await this.find(repository, id)));
  }

  /** Deletes sessions idle since before `cutoff` with their staged bytes. Returns how many. */
  async purgeOlderThan(cutoff: Date, batch = 100): Promise<number> {
    await this.sessions.pruneReceipts(new Date(Date.now() - RECEIPT_TTL_MS));
    let purged = 0;
    for (;;) {
      const stale = await this.sessions.listOlderThan(cutoff, batch);
      for (const record of stale) {
        if (this.busy.has(record.id)) continue;
        await this.discard(record);
        purged++;
      }
      if (stale.length < batch) return purged;
    }
  }

  /** Whether session `id` of `repository` already finished by committing `digest` (its receipt says so). */
  private async finishedAs(repository: string, id: string, digest: string): Promise<boolean> {
    if (!SESSION_ID.test(id)) return false;
    const receipt = await this.sessions.receipt(id);
    return receipt !== null && receipt.repository === repository && receipt.digest === digest;
  }

  /**
   * Whether the session's staged bytes already hash to `expected`, so a body sent with the
   * closing PUT can only be a second copy of the last chunk. Costs nothing for a session that
   * has no bytes yet or whose running hash this process holds; otherwise the hash rebuilt here
   * is kept for the append that follows.
   */
  private async alreadyHolds(repository: string, id: string, expected: ParsedDigest): Promise<boolean> {
    if (expected.algorithm !== 'sha256') return false;
    const record = await this.find(repository, id);
    if (record.size === 0 || this.busy.has(id)) return false;
    const state = await this.hashState(record);
    this.rememberHash(id, state);
    return `sha256:${state.hash.copy().digest('hex')}` === expected.value;
  }

  /** Throws 404 BLOB_UPLOAD_UNKNOWN (ending the session) when its staging area lacks recorded bytes. */
  private async verifyStaged(record: UploadRecord): Promise<void> {
    if (!this.blobs.stagedSize) return;
    const staged = await this.blobs.stagedSize(record.id, record.staging);
    if ((staged === null || staged < record.size) && !this.busy.has(record.id)) await this.lost(record);
  }

  private async discard(record: UploadRecord): Promise<void> {
    this.hashes.delete(record.id);
    await this.sessions.delete(record.id);
    await this.blobs.abortUpload(record.id, record.staging);
  }

  private async find(repository: string, id: string): Promise<UploadRecord> {
    const record = SESSION_ID.test(id) ? await this.sessions.get(id) : null;
    // A session of another repository is reported as unknown: ids must not leak across repositories.
    if (!record || record.repository !== repository) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${id.slice(0, 64)} is unknown, finished or cancelled`);
    }
    return record;
  }

  private async transfer(record: UploadRecord, body: Readable, expectedLength: number | undefined, claim: Claim): Promise<number> {
    if (this.transfers >= this.limits.maxConcurrentTransfers) {
      body.resume();
      throw new RegistryError('TOOMANYREQUESTS', `too many uploads in progress (limit ${this.limits.maxConcurrentTransfers}); retry later`);
    }
    this.transfers++;
    try {
      const state = await this.hashState(record);
      const maxSize = this.limits.maxBlobSize > 0 ? this.limits.maxBlobSize - record.size : Infinity;
      const meter = new HashingMeter(state.hash, maxSize);
      let staging;
      const piped = pipeAbortable(body, meter);
      try {
        staging = await this.blobs.appendUpload(record.id, record.staging, record.size, piped.stream);
      } catch (err) {
        // Part of the chunk may have been hashed but not stored: forget the hash, rebuild it next time.
        this.hashes.delete(record.id);
        if (meter.tooBig) throw tooBig(this.limits.maxBlobSize);
        if (err instanceof UploadNotFoundError) return this.lost(record);
        throw storageError(err, piped.clientGone());
      }
      if (expectedLength !== undefined && meter.bytes !== expectedLength) {
        this.hashes.delete(record.id);
        throw rangeError(record, `received ${meter.bytes} bytes, but Content-Range announced ${expectedLength}`);
      }
      const size = record.size + meter.bytes;
      if (!(await this.sessions.update(record.id, record.size, size, staging, claim.renewal ? claim.writer : undefined))) {
        this.hashes.delete(record.id);
        throw new RegistryError('BLOB_UPLOAD_INVALID', 'upload was modified concurrently; query its status and resume');
      }
      claim.released = true;
      this.rememberHash(record.id, { hash: state.hash, size });
      return size;
    } finally {
      this.transfers--;
    }
  }

  /** How many sessions' running hashes this process holds (observability, tests). */
  get heldHashes(): number {
    return this.hashes.size;
  }

  private rememberHash(id: string, state: { hash: Hash; size: number }): void {
    this.hashes.delete(id); // re-insert so iteration order is least-recently-appended first
    if (this.hashes.size >= (this.limits.maxHeldHashes ?? MAX_HELD_HASHES)) this.hashes.delete(this.hashes.keys().next().value!);
    this.hashes.set(id, state);
  }

  /** The running SHA-256 for the session at its current size, rebuilt from staged bytes if needed. */
  private async hashState(record: UploadRecord): Promise<{ hash: Hash; size: number }> {
    const held = this.hashes.get(record.id);
    if (held && held.size === record.size) return held;
    const hash = await this.hashStaged(record, 'sha256');
    return { hash, size: record.size };
  }

  private async digestOf(record: UploadRecord, algorithm: DigestAlgorithm): Promise<string> {
    const held = this.hashes.get(record.id);
    const hash = algorithm === 'sha256' && held && held.size === record.size ? held.hash.copy() : await this.hashStaged(record, algorithm);
    return `${algorithm}:${hash.digest('hex')}`;
  }

  private async hashStaged(record: UploadRecord, algorithm: DigestAlgorithm): Promise<Hash> {
    const hash = newHash(algorithm);
    if (record.size === 0) return hash;
    let read = 0;
    try {
      for await (const chunk of await this.blobs.readUpload(record.id, record.staging, record.size)) {
        hash.update(chunk as Buffer);
        read += (chunk as Buffer).length;
      }
    } catch (err) {
      return this.lostIf(record, err);
    }
    // Fewer bytes staged than recorded: the hash cannot be rebuilt, the session cannot continue.
    if (read < record.size) return this.lost(record);
    return hash;
  }

  /**
   * The staging area is gone although the session row remains: a crash between committing
   * the bytes and recording that. The session cannot continue; drop it and tell the client
   * to start over (404 BLOB_UPLOAD_UNKNOWN, which clients handle by restarting the blob).
   */
  private async lost(record: UploadRecord): Promise<never> {
    this.hashes.delete(record.id);
    await this.sessions.delete(record.id);
    // What is left of the staging area (a partial one) is of no use now; fsck removes it otherwise.
    await this.blobs.abortUpload(record.id, record.staging).catch(() => undefined);
    throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${record.id} lost its staged data (interrupted commit); start the upload again`);
  }

  private async lostIf(record: UploadRecord, err: unknown): Promise<never> {
    if (err instanceof UploadNotFoundError) return this.lost(record);
    throw err;
  }

  /**
   * Runs `fn` as the only request on session `id` in this process. A request whose client
   * went away mid-body (`body` closed before its end) is still unwinding for a moment; a
   * request that arrives meanwhile (the client resuming at once) waits for it instead of
   * being refused. A live writer makes a second request fail at once.
   */
  private async exclusive<T>(id: string, fn: (claim: Claim) => Promise<T>, body?: Readable): Promise<T> {
    if (!(await this.settled(id))) throw anotherWriter();
    let release!: () => void;
    const writer: Writer = {
      receiving: body !== undefined && !body.readableEnded,
      done: new Promise<void>((resolve) => (release = resolve)),
    };
    // The body ended, or its client went away (cut mid-body): either way nothing more arrives.
    const received = () => (writer.receiving = false);
    for (const event of ['end', 'close', 'aborted']) body?.once(event, received);
    this.busy.set(id, writer);
    let claim: Claim | null = null;
    try {
      claim = await this.claim(id);
      return await fn(claim);
    } finally {
      for (const event of ['end', 'close', 'aborted']) body?.off(event, received);
      if (claim) await this.unclaim(id, claim);
      this.busy.delete(id);
      release();
    }
  }

  /**
   * Holds session `id` in the metadata database for this request, against requests of other
   * processes (the server's other workers, other replicas): two of them appending at once would
   * write the same staging bytes. Renewed while the request works; a crashed holder's claim runs
   * out after WRITER_STALE_MS without renewals. A session another process holds is waited for briefly (a request
   * whose client went away there is unwinding), then refused like a writer of this process.
   * Unknown sessions pass here: the request's own look-up reports them.
   */
  private async claim(id: string): Promise<Claim> {
    const claim: Claim = { writer: `${WRITER_PREFIX}${randomUUID()}`, released: false, renewal: null };
    if (this.limits.claimWriters === false || !SESSION_ID.test(id)) return claim;
    const started = Date.now();
    for (;;) {
      const now = Date.now();
      // Taken when free, expired, or not renewed for WRITER_STALE_MS: the holder's process died (a
      // killed worker or replica), and its client, resuming at once elsewhere, must not wait out the TTL.
      if (await this.sessions.claim(id, claim.writer, now + WRITER_TTL_MS - WRITER_STALE_MS, now + WRITER_TTL_MS)) break;
      if ((await this.sessions.get(id)) === null) return claim;
      if (Date.now() - started >= OTHER_PROCESS_WAIT_MS) throw anotherWriter();
      await sleep(25);
    }
    claim.renewal = setInterval(() => {
      const now = Date.now();
      this.sessions.claim(id, claim.writer, now, now + WRITER_TTL_MS).catch(() => undefined);
    }, WRITER_RENEW_MS);
    claim.renewal.unref();
    return claim;
  }

  private async unclaim(id: string, claim: Claim): Promise<void> {
    if (claim.renewal) clearInterval(claim.renewal);
    // Freed already by the size update that recorded the request's bytes, or never taken.
    if (claim.released || !claim.renewal) return;
    // Best effort: a claim left behind is taken over once stale (WRITER_STALE_MS).
    await this.sessions.unclaim(id, claim.writer).catch(() => undefined);
  }

  /**
   * Waits until no request of this process works on session `id`; true when none does. A
   * request that received its whole body, or whose client went away, only has to finish or
   * unwind: waited for (up to SETTLING_WAIT_MS). One still receiving its body gets a short
   * grace (a disconnect may reach this process a moment after the client's next request).
   */
  private async settled(id: string): Promise<boolean> {
    const started = Date.now();
    for (let holder = this.busy.get(id); holder; holder = this.busy.get(id)) {
      if (Date.now() - started >= (holder.receiving ? RECEIVING_WRITER_GRACE_MS : SETTLING_WAIT_MS)) return false;
      await Promise.race([holder.done, sleep(25, undefined, { ref: false })]);
    }
    return true;
  }
}

/** This request's hold on a session in the metadata database (see UploadService.claim). */
interface Claim {
  writer: string;
  /** The size update that recorded this request's bytes freed the session too. */
  released: boolean;
  /** Renews the claim while the request works (null: nothing was claimed, the session is unknown). */
  renewal: NodeJS.Timeout | null;
}

function anotherWriter(): RegistryError {
  return new RegistryError('BLOB_UPLOAD_INVALID', 'another request is writing to this upload; wait for it, then resume');
}

/** How long a session's writer holds it without renewing, whatever others think of it. */
const WRITER_TTL_MS = 15_000;
/** How often a working request renews its claim. */
const WRITER_RENEW_MS = 500;
/** A claim not renewed for this long is taken over: its holder is gone (four missed renewals). */
const WRITER_STALE_MS = 2_000;
/**
 * How long a request waits for a writer of another process to leave the session: longer than
 * WRITER_STALE_MS, so a dead holder's claim is taken over within the wait instead of refused.
 */
const OTHER_PROCESS_WAIT_MS = 2_500;
/** Tells an operator which process holds a session (`uploads.writer`). */
const WRITER_PREFIX = `${process.pid}:`;

/** A request on an upload session, as seen by the next one. */
interface Writer {
  /** Its body is still arriving (else it only has to finish, or unwind after a disconnect). */
  receiving: boolean;
  /** Settles when it has left the session. */
  done: Promise<void>;
}

/** How long a request waits for one on the same session that is finishing or unwinding. */
const SETTLING_WAIT_MS = 10_000;
/** How long a request waits for one on the same session that is still receiving its body. */
const RECEIVING_WRITER_GRACE_MS = 250;

/** Upload session ids as this service makes them (UUIDs), or clients could probe with anything else. */
const SESSION_ID = /^[A-Za-z0-9-]{1,64}$/;

/**
 * How long a finished session's receipt answers a re-sent closing PUT, at least (the
 * upload-purge job, hourly by default, prunes older ones). A lost answer is re-sent within
 * seconds to minutes.
 */
const RECEIPT_TTL_MS = 60 * 60 * 1000;

function isUnknownUpload(err: unknown): boolean {
  return err instanceof RegistryError && err.code === 'BLOB_UPLOAD_UNKNOWN';
}

/** Upper bound on running hashes held in memory (each is a few hundred bytes of OpenSSL state). */
export const MAX_HELD_HASHES = 4096;

/** Passes bytes through while hashing and counting them; fails once `maxSize` is exceeded. */
class HashingMeter extends Transform {
  bytes = 0;
  tooBig = false;

  constructor(
    private readonly hash: Hash,
    private readonly maxSize: number,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxSize) {
      this.tooBig = true;
      done(new Error('blob exceeds the size limit'));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }
}

/**
 * `source.pipe(dest)`, plus: a client that disconnects mid-body fails `dest` (pipe() alone
 * would leave it waiting forever). Unlike pipeline(), a failing `dest` does not destroy
 * `source`, so the request socket stays usable for an error response.
 */
function pipeAbortable(source: Readable, dest: Transform): { stream: Transform; clientGone: () => boolean } {
  let gone = false;
  const abort = (err?: Error) => {
    if (source.readableEnded) return;
    gone = true;
    dest.destroy(err ?? Object.assign(new Error('request body ended early'), { code: 'ECONNRESET' }));
  };
  source.once('error', abort);
  source.once('close', () => abort());
  dest.once('close', () => source.off('error', abort));
  // The store subscribes to `dest` only after its own awaits (open, stat…). An error before
  // that (size limit, client gone) must not be an unhandled 'error' event, which would kill
  // the process; the store still sees it, since `dest` is destroyed and its pipeline rejects.
  dest.on('error', () => {});
  source.pipe(dest);
  return { stream: dest, clientGone: () => gone };
}

function rangeError(record: UploadRecord, message: string): RegistryError {
  return new RegistryError(
    'RANGE_INVALID',
    message,
    { offset: record.size },
    {
      Range: `0-${Math.max(record.size - 1, 0)}`,
      Location: `/v2/${record.repository}/blobs/uploads/${record.id}`,
      'Docker-Upload-UUID': record.id,
    },
  );
}

function tooBig(limit: number): RegistryError {
  return new RegistryError('BLOB_TOO_LARGE', `blob exceeds the configured size limit of ${limit} bytes`);
}

/**
 * Maps a failed append to an API error a client can act on. A connection reset or premature
 * close is the client's body ending early only when that body did fail (`clientGone`); the same
 * codes from the storage back end's own connection (S3 going away while a staged segment was
 * read back) mean the storage is unavailable, and the client should retry, not resume.
 */
function storageError(err: unknown, clientGone: boolean): Error {
  const mapped = domainError(err);
  if (mapped) return mapped;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new RegistryError('STORAGE_FULL', 'storage is full: the upload was not stored');
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ABORT_ERR') {
    if (clientGone) return new RegistryError('BLOB_UPLOAD_INVALID', 'the request body ended early; query the upload status and resume');
    return Object.assign(new RegistryError('UNAVAILABLE', 'blob storage unavailable; retry later'), { cause: err });
  }
  return err as Error;
}
