import http from 'node:http';
import type { Duplex } from 'node:stream';
import { RegistryError } from '../core/errors.js';
import { errorBody } from './errors.js';

const MESSAGES: Record<number, string> = {
  400: 'malformed HTTP request',
  408: 'request headers took longer than http.headerstimeout',
  431: 'request headers are too large',
};

/**
 * Requests Node's HTTP parser rejects (bad framing, Content-Length together with
 * Transfer-Encoding, an invalid Content-Length, header overflow, a headers timeout) never
 * reach a route. They still get the spec's error body (code UNSUPPORTED, as errors.ts does
 * for framework-level 4xx), then the connection is closed: after a framing error the rest
 * of the stream cannot be trusted.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const message = `${MESSAGES[status]}${err.code ? ` (${err.code})` : ''}`;
  const body = errorBody(new RegistryError('UNSUPPORTED', message));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
