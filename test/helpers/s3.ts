import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import S3rver from '@20minutes/s3rver';

/** A running local S3 endpoint and the bucket created in it. */
export interface LocalS3 {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Every request the server received so far (method, URL, copy source), oldest first. */
  requests: S3Request[];
  /** Where s3rver keeps the bucket's objects. */
  directory: string;
  close(): Promise<void>;
}

export interface S3Request {
  method: string;
  url: string;
  copySource?: string;
}

/**
 * Starts s3rver (a real S3-speaking HTTP server that checks SigV4 signatures, storing
 * objects in a temporary directory) in this process on 127.0.0.1 with a random port.
 * s3rver lacks ListMultipartUploads, ListParts and AbortMultipartUpload and mishandles
 * suffix ranges; see docs/storage.md for how the S3 adapter copes without them.
 */
export async function startLocalS3(bucket = 'berth-test'): Promise<LocalS3> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'berth-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    vhostBuckets: false,
    configureBuckets: [{ name: bucket }],
  });
  const address = await server.run();
  const requests: S3Request[] = [];
  server.httpServer!.prependListener('request', (req: IncomingMessage) => {
    const copySource = req.headers['x-amz-copy-source'];
    requests.push({ method: req.method!, url: req.url!, ...(typeof copySource === 'string' ? { copySource } : {}) });
  });
  // Connections keep the process alive while in use; the listening socket alone does not.
  server.httpServer!.unref();
  return {
    requests,
    directory,
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    // s3rver's only account; it rejects requests signed with any other key.
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    async close() {
      server.httpServer?.closeAllConnections();
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/**
 * `storage.s3` settings (as in berth.yaml) pointing at a local S3 under key prefix `root`,
 * with the smallest chunk size S3 allows so multi-segment uploads stay quick to test.
 */
export function localS3Settings(s3: LocalS3, root: string) {
  return {
    bucket: s3.bucket,
    region: 'us-east-1',
    regionendpoint: s3.endpoint,
    forcepathstyle: true,
    accesskey: s3.accessKeyId,
    secretkey: s3.secretAccessKey,
    rootdirectory: root,
    chunksize: 5 * 1024 * 1024,
    redirect: false,
  };
}

let shared: Promise<LocalS3> | undefined;

/**
 * One local S3 for the whole test process (BERTH_TEST_STORAGE=s3 points every test server
 * at it, each under its own key prefix). It does not keep the process alive, and its
 * directory is removed when the process exits.
 */
export function sharedLocalS3(): Promise<LocalS3> {
  shared ??= startLocalS3('berth-shared').then((s3) => {
    process.once('exit', () => rmSync(s3.directory, { recursive: true, force: true }));
    return s3;
  });
  return shared;
}

/**
 * Environment that selects the blob storage under test. With BERTH_TEST_STORAGE=s3 every
 * test server stores blobs in the shared local S3, under a key prefix derived from its data
 * directory (restarting on the same directory finds the same blobs, as with the filesystem).
 * A test that chooses its storage itself (`given` sets BERTH_STORAGE_FILESYSTEM_* or
 * BERTH_STORAGE_S3_*) is left alone.
 */
export async function testStorageEnv(dataDir: string | undefined, given: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv> {
  if (process.env.BERTH_TEST_STORAGE !== 's3') return {};
  if (Object.entries(given).some(([name, value]) => value !== undefined && /^BERTH_STORAGE_(FILESYSTEM|S3)_/.test(name))) return {};
  const s3 = await sharedLocalS3();
  const deployment = createHash('sha256')
    .update(path.resolve(dataDir ?? 'data'))
    .digest('hex')
    .slice(0, 16);
  const settings = localS3Settings(s3, `deployment-${deployment}`);
  return {
    BERTH_STORAGE_S3_BUCKET: settings.bucket,
    BERTH_STORAGE_S3_REGIONENDPOINT: settings.regionendpoint,
    BERTH_STORAGE_S3_FORCEPATHSTYLE: 'true',
    BERTH_STORAGE_S3_ACCESSKEY: settings.accesskey,
    BERTH_STORAGE_S3_SECRETKEY: settings.secretkey,
    BERTH_STORAGE_S3_ROOTDIRECTORY: settings.rootdirectory,
    BERTH_STORAGE_S3_CHUNKSIZE: String(settings.chunksize),
  };
}
