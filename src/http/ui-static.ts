import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Where the built SPA is and whether to serve it (config ui.enabled, ui.root). */
export interface UiStaticOptions {
  /** The directory `npm run build` writes (index.html + assets/). */
  root: string;
}

/**
 * The page's policy: scripts and styles only from Berth itself (Vite emits no inline scripts),
 * no framing, no plugins; the API is same-origin.
 */
export const UI_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': UI_CSP,
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
};

/** Paths that belong to the registry and API: never answered with the SPA. */
const RESERVED = /^\/(?:v2|api|token|metrics|healthz|readyz|assets)(?:[/?]|$)/;

const NOT_BUILT =
  'The Berth web UI is not built. Run `npm run build` (it writes dist/ui/), then restart `berth serve`.\n' +
  'The registry (/v2/) and the API (/api/v1/) work without it; set ui.enabled: false to stop serving the UI.\n';

/**
 * Serves the web UI from the same process (docs/api.md#web-ui-api): /assets/* (hashed names: cached for a
 * year, immutable), / and — for browser navigations (GET accepting text/html) outside the
 * registry and API prefixes — index.html, never cached, with a strict CSP. Returns the
 * fallback the not-found handler asks first: true when it answered the request with the SPA.
 */
export function registerUiStatic(
  app: FastifyInstance,
  options: UiStaticOptions,
): (request: FastifyRequest, reply: FastifyReply) => Promise<boolean> {
  const index = path.join(options.root, 'index.html');
  const built = existsSync(index);
  if (built) {
    registerAssets(app, path.join(options.root, 'assets'));
  }
  const serveIndex = async (reply: FastifyReply): Promise<FastifyReply> => {
    if (!built || !existsSync(index)) {
      return reply.code(404).header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-cache').send(NOT_BUILT);
    }
    // Read at each navigation (a few KiB): a rebuilt UI is served without a restart.
    const html = await readFile(index);
    return reply
      .code(200)
      .headers({ ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' })
      .send(html);
  };
  app.get('/', async (_request, reply) => serveIndex(reply));
  return async (request, reply) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    const url = request.url;
    if (RESERVED.test(url) || !acceptsHtml(request.headers.accept)) return false;
    await serveIndex(reply);
    return true;
  };
}

/** Content types of what Vite emits into assets/ (anything else is served as bytes). */
const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

/** A name under assets/: path segments of safe characters, none a dotfile (so no `..`). */
const ASSET_NAME = /^(?:[A-Za-z0-9_~-][A-Za-z0-9._~-]*\/)*[A-Za-z0-9_~-][A-Za-z0-9._~-]*$/;

/**
 * GET/HEAD /assets/*: Vite's hashed files, cached for a year (immutable), with a weak ETag
 * (size + mtime) and 304 on If-None-Match. A few lines instead of @fastify/static, which with
 * its dependencies (send, glob, lru-cache, mime…) held ~0.9 MB of every worker's heap for two
 * files (docs/performance.md › Memory at idle). A missing or unsafe name is the ordinary 404.
 */
function registerAssets(app: FastifyInstance, dir: string): void {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/assets/*',
    handler: async (request, reply) => {
      const name = (request.params as { '*': string })['*'];
      if (!ASSET_NAME.test(name)) return notFound(reply);
      const file = path.join(dir, name);
      const info = await stat(file).catch(() => null);
      if (!info?.isFile()) return notFound(reply);
      const etag = `W/"${info.size.toString(16)}-${Math.trunc(info.mtimeMs).toString(16)}"`;
      reply.headers({
        'content-type': CONTENT_TYPES[path.extname(name).toLowerCase()] ?? 'application/octet-stream',
        'cache-control': 'public, max-age=31536000, immutable',
        etag,
        'last-modified': info.mtime.toUTCString(),
        'x-content-type-options': 'nosniff',
      });
      if (request.headers['if-none-match'] === etag) return reply.code(304).send();
      reply.header('content-length', info.size);
      if (request.method === 'HEAD') return reply.send();
      return reply.send(createReadStream(file));
    },
  });
}

/** The ordinary 404 (the not-found handler), awaited through the returned reply. */
function notFound(reply: FastifyReply): FastifyReply {
  reply.callNotFound();
  return reply;
}

function acceptsHtml(accept: string | undefined): boolean {
  return typeof accept === 'string' && /(?:^|,)\s*text\/html\s*(?:[;,]|$)/i.test(accept);
}
