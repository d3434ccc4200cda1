import { pipeline, Transform, type Readable } from 'node:stream';
import type { MetricsRegistry } from '../core/metrics.js';
import type { BlobStore, ByteRange, StagingState } from '../core/ports.js';

/** Distribution's storage buckets are its HTTP ones; object stores need the long tail. */
const STORAGE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type Action =
  | 'stat'
  | 'openRange'
  | 'delete'
  | 'createUpload'
  | 'appendUpload'
  | 'adoptUpload'
  | 'readUpload'
  | 'commitUpload'
  | 'abortUpload'
  | 'stagedSize'
  | 'redirectUrl'
  | 'check';

/**
 * Every BlobStore adapter, wrapped once by the composition root (as Distribution's
 * storage/driver/base wraps every driver): the latency of each operation as
 * `registry_storage_action_seconds{driver,action}`, Distribution's name, failures included.
 * Streams are timed until they are open (the first byte can flow), not until the client has
 * read them; appendUpload until the chunk is durably staged.
 */
export function instrumentBlobStore(store: BlobStore, driver: string, metrics: MetricsRegistry): BlobStore {
  const histogram = metrics.histogram<'driver' | 'action'>({
    name: 'registry_storage_action_seconds',
    help: 'Storage back-end operation latency by driver and action (Distribution-compatible)',
    labels: ['driver', 'action'],
    buckets: STORAGE_BUCKETS,
  });
  const errors = metrics.counter<'driver' | 'action'>({
    name: 'berth_storage_errors_total',
    help: 'Storage back-end operations that failed, by driver and action (a missing blob is not a failure)',
    labels: ['driver', 'action'],
  });
  const received = metrics.counter({
    name: 'berth_registry_blob_bytes_received_total',
    help: 'Blob bytes received by uploads and staged in storage',
  });
  const labels = new Map<Action, { driver: string; action: Action }>();
  const timed = async <T>(action: Action, work: () => Promise<T>): Promise<T> => {
    let bound = labels.get(action);
    if (!bound) labels.set(action, (bound = { driver, action }));
    const start = process.hrtime.bigint();
    try {
      return await work();
    } catch (err) {
      if (!isNotFound(err)) errors.inc(bound);
      throw err;
    } finally {
      histogram.observe(bound, Number(process.hrtime.bigint() - start) / 1e9);
    }
  };

  const wrapped: BlobStore = {
    stat: (digest) => timed('stat', () => store.stat(digest)),
    openRange: (digest: string, range?: ByteRange): Promise<Readable> => timed('openRange', () => store.openRange(digest, range)),
    delete: (digest) => timed('delete', () => store.delete(digest)),
    createUpload: (id) => timed('createUpload', () => store.createUpload(id)),
    appendUpload: (id, state: StagingState, offset, source) =>
      timed('appendUpload', async () => {
        const counted = counting(source);
        const staged = await store.appendUpload(id, state, offset, counted.stream);
        received.inc(undefined, counted.bytes());
        return staged;
      }),
    readUpload: (id, state, length) => timed('readUpload', () => store.readUpload(id, state, length)),
    commitUpload: (id, state, digest, size) => timed('commitUpload', () => store.commitUpload(id, state, digest, size)),
    abortUpload: (id, state) => timed('abortUpload', () => store.abortUpload(id, state)),
    check: () => timed('check', () => store.check()),
    close: () => store.close(),
  };
  // Optional methods stay optional: core and fsck test for their presence.
  if (store.stagedSize) wrapped.stagedSize = (id, state) => timed('stagedSize', () => store.stagedSize!(id, state));
  if (store.redirectUrl) wrapped.redirectUrl = (digest) => timed('redirectUrl', () => store.redirectUrl!(digest));
  if (store.adoptUpload) wrapped.adoptUpload = (id, file) => timed('adoptUpload', () => store.adoptUpload!(id, file));
  if (store.listBlobs) wrapped.listBlobs = () => store.listBlobs!();
  if (store.listUploads) wrapped.listUploads = () => store.listUploads!();
  return wrapped;
}

/**
 * `source` through a byte counter. pipeline() carries an early end or an error of the request
 * on to the adapter, which sees it as it would have seen it on `source` itself.
 */
function counting(source: Readable): { stream: Readable; bytes: () => number } {
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  pipeline(source, counter, () => undefined);
  return { stream: counter, bytes: () => bytes };
}

function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name;
  return name === 'BlobNotFoundError' || name === 'UploadNotFoundError';
}
