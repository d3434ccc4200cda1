import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
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
    // Imported here, not at the top: with ui.enabled false (or no build) @fastify/static and
    // its dependencies (send, mime's table, glob: ~1 MB of heap) are never loaded (issue 19).
    void app.register(async (scope) => {
      const { default: fastifyStatic } = await import('@fastify/static');
      await scope.register(fastifyStatic, {
        root: path.join(options.root, 'assets'),
        prefix: '/assets/',
        index: false,
        dotfiles: 'deny',
        cacheControl: true,
        maxAge: 365 * 24 * 60 * 60 * 1000,
        immutable: true,
        etag: true,
        setHeaders: (res) => res.setHeader('x-content-type-options', 'nosniff'),
      });
    });
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

function acceptsHtml(accept: string | undefined): boolean {
  return typeof accept === 'string' && /(?:^|,)\s*text\/html\s*(?:[;,]|$)/i.test(accept);
}
