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
  return {
    requests,
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
