import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { ERRORS, RegistryError, type ErrorKind } from '../core/errors.js';
import { errorBody } from './errors.js';

const MESSAGES: Partial<Record<ErrorKind, string>> = {
  REQUEST_TIMEOUT: 'request headers took longer than http.headerstimeout',
};

/**
 * Requests Node's HTTP parser rejects (bad framing, Content-Length together with
 * Transfer-Encoding, an invalid Content-Length, header overflow, a headers timeout) never
 * reach a route. They still get the spec's error body (rows MALFORMED_REQUEST, REQUEST_TIMEOUT
 * and HEADERS_TOO_LARGE of src/core/errors.ts), then the connection is closed: after a
 * framing error the rest of the stream cannot be trusted.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const kind: ErrorKind =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? 'REQUEST_TIMEOUT'
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? 'HEADERS_TOO_LARGE'
        : 'MALFORMED_REQUEST';
  const error = new RegistryError(kind, `${MESSAGES[kind] ?? ERRORS[kind].message}${err.code ? ` (${err.code})` : ''}`);
  const status = error.status;
  const body = errorBody(error);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * onRequest hook: a request with more than one Host header answers 400 (RFC 9112 §3.2: a
 * server MUST). Node keeps the first and drops the others from `headers`, so the raw list is
 * counted: a loop over the header names, with no allocation, on every request.
 */
export function refuseDuplicateHost(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const raw = request.raw.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) {
      done(new RegistryError('MALFORMED_REQUEST', 'more than one Host header (RFC 9112 section 3.2 requires exactly one)'));
      return;
    }
  }
  done();
}
