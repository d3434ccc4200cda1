import autocannon, { type Result } from 'autocannon';
import { BenchClient, OCI_MANIFEST, smallImage } from './client.js';
import type { BenchOptions } from './options.js';
import { readTreeCpuSeconds } from './rss.js';
import type { BenchServer } from './servers.js';
import { CheckFailed, type WorkloadContext } from './workload.js';

export interface LoadRequest {
  /** Names the request in check messages, e.g. "manifest GET by tag". */
  label: string;
  path: string;
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  /** Every response body must equal this (autocannon counts mismatches). */
  expectBody?: string;
  /**
   * Do not collect bodies. autocannon appends every body chunk to a string; for 1 MiB
   * bodies that decoding is so slow the client, not the server, sets the pace (a few
   * MB/s). Bodies are then checked outside the load instead.
   */
  discardBodies?: boolean;
}

type Client = { parser: object; pipelinedRequests?: { addBody(data: Buffer): void } };

export interface LoadFigures {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** 2xx responses, for byte accounting. */
  ok: number;
  /** Bytes received, headers included. */
  bytes: number;
  seconds: number;
}

/**
 * autocannon's HTTP parser waits for a HEAD response's Content-Length worth of body that
 * never comes; the parser honours "skip body" when onHeadersComplete returns 1, so wrap the
 * handler autocannon installs right after setupClient runs.
 */
function skipHeadBodies(client: Client): void {
  const parser = client.parser as Record<number, unknown>;
  const ON_HEADERS_COMPLETE = 2; // HTTPParser.kOnHeadersComplete in http-parser-js
  let wrapped: unknown;
  Object.defineProperty(parser, ON_HEADERS_COMPLETE, {
    configurable: true,
    get: () => wrapped,
    set: (handler: (info: unknown) => unknown) => {
      wrapped = (info: unknown) => {
        handler(info);
        return 1;
      };
    },
  });
}

/** Runs autocannon against one URL and fails the run on any error, non-2xx or body mismatch. */
export async function runLoad(ctx: WorkloadContext, request: LoadRequest): Promise<LoadFigures> {
  const method = request.method ?? 'GET';
  const result: Result = await autocannon({
    url: `${ctx.server.url}${request.path}`,
    method,
    headers: request.headers,
    connections: ctx.options.connections,
    duration: ctx.options.durationSeconds,
    timeout: 30,
    expectBody: request.expectBody,
    setupClient: (client: Client) => {
      if (method === 'HEAD') skipHeadBodies(client);
      if (request.discardBodies && client.pipelinedRequests) client.pipelinedRequests.addBody = () => undefined;
    },
  });
  const what = `${request.label} under load`;
  ctx.check(result['2xx'] > 0, `${what}: some requests completed`);
  ctx.check(
    result.errors === 0 && result.timeouts === 0,
    `${what}: no errors or timeouts`,
    `${result.errors} errors, ${result.timeouts} timeouts`,
  );
  ctx.check(result.non2xx === 0, `${what}: every response 2xx`, `${result.non2xx} were not: ${JSON.stringify(result.statusCodeStats)}`);
  ctx.check(result.mismatches === 0, `${what}: every body as expected`, `${result.mismatches} mismatches`);
  return {
    requestsPerSecond: result['2xx'] / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    ok: result['2xx'],
    bytes: result.throughput.total,
    seconds: result.duration,
  };
}

/**
 * Manifest GET by tag under load on a fresh server (a small image pushed first), with the
 * server's CPU time per request: steadier than throughput when others share the machine.
 * The overhead benches (--metrics-overhead, --policies-overhead) measure their GET side with it.
 */
export async function measureManifestGets(
  server: BenchServer,
  options: BenchOptions,
  repo: string,
): Promise<{ perSecond: number; cpuMicros: number }> {
  const client = new BenchClient(server.url);
  const image = smallImage(`${repo}-gets`);
  await client.uploadBlob(repo, image.config);
  await client.uploadBlob(repo, image.layer);
  await client.putManifest(repo, 'latest', image.manifest);
  return measureRequest(server, options, {
    label: 'manifest GET by tag',
    path: `/v2/${repo}/manifests/latest`,
    headers: { accept: OCI_MANIFEST },
    expectBody: image.manifest.data.toString('utf8'),
  });
}

/** Requests per second and the server's CPU µs per answered request of `request` under load (any failure throws); a cluster's CPU is its primary's and workers' together. */
export async function measureRequest(
  server: BenchServer,
  options: BenchOptions,
  request: LoadRequest,
): Promise<{ perSecond: number; cpuMicros: number }> {
  const before = readTreeCpuSeconds(server.pid) ?? 0;
  const figures = await runLoad(
    {
      server,
      options,
      startMeasuring: () => undefined,
      check: (ok, what, detail) => {
        if (!ok) throw new CheckFailed(`${what}${detail ? ` (${detail})` : ''}`);
      },
      note: () => undefined,
    },
    request,
  );
  return { perSecond: figures.requestsPerSecond, cpuMicros: (((readTreeCpuSeconds(server.pid) ?? 0) - before) * 1e6) / figures.ok };
}
