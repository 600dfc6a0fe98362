// Connections that never become a request Fastify can route: a client too slow to send its request
// (RECEIVE_TIMEOUT_MS), headers over Node's limit, or bytes that are not HTTP. Node reports these
// as 'clientError' on the socket; they are answered here in the service's one error shape, counted,
// and the socket closed. Without a receive timeout a client that sends headers and then stalls its
// body holds a connection (and its buffered bytes) for ever.
import http from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { lingering } from './linger.js';

export type ClientErrorReason = 'request_timeout' | 'headers_too_large' | 'malformed';
export const CLIENT_ERROR_REASONS: readonly ClientErrorReason[] = ['request_timeout', 'headers_too_large', 'malformed'];

/** Node's server timing for a receive timeout: the whole request within `ms`, the headers within
 * the shorter of it and 60 s, checked often enough that a stalled client is cut close to `ms`
 * (Node checks every 30 s by default, which would let it stay up to twice as long). */
export function receiveTimeouts(ms: number): { requestTimeout: number; headersTimeout: number; connectionsCheckingInterval: number } {
  if (ms <= 0) return { requestTimeout: 0, headersTimeout: 60_000, connectionsCheckingInterval: 30_000 };
  return { requestTimeout: ms, headersTimeout: Math.min(60_000, ms), connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(ms / 4))) };
}

function classify(code: string | undefined): { status: number; error: string; reason: ClientErrorReason } {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, error: 'the request was not received in time', reason: 'request_timeout' };
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, error: 'the request headers are too large', reason: 'headers_too_large' };
  return { status: 400, error: 'the request is not valid HTTP', reason: 'malformed' };
}

/** Sockets answered here, with the status written: a request routed before its connection was cut
 * here (its body still being read at a receive timeout) is counted as that answer (metrics, error
 * handler), not as a client that hung up or a failure of its route. */
export const connectionAnswers = new WeakMap<Socket, number>();

/** Fastify's clientErrorHandler: bound to the instance, so its metrics are reachable once registered. */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nobody to answer; nor has one the client closed in the middle of its
  // request (HPE_INVALID_EOF_STATE): a hang-up, not bytes that are not HTTP. If the request was
  // routed, its route sees the hang-up as its body's read failing (499 cancelled, 'aborted').
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // a connection already answered and closing (http/linger.ts): the receive timeout or bytes after
  // the body have nobody left to answer, and are not counted as a second refusal
  if (lingering.has(socket)) {
    socket.destroy();
    return;
  }
  if (err.code === 'HPE_INVALID_EOF_STATE') {
    socket.destroy();
    return;
  }
  if (answering.has(socket)) return;   // (a parser that failed once fails again on every later chunk)
  answering.add(socket);
  const { status, error, reason } = classify(err.code);
  (this as Partial<FastifyInstance>).metrics?.clientErrors.inc({ reason });
  this.log.debug({ err, reason }, 'client error');
  socket.pause();   // (nothing more is read from a connection that sent bytes that are not HTTP)
  clientErrorAnswer(err, socket, status, error, reason);
}

/** Sockets whose client error is being answered. */
const answering = new WeakSet<Socket>();

function clientErrorAnswer(err: Error, socket: Socket, status: number, error: string, reason: ClientErrorReason): void {
  // Bytes that are not HTTP after whole requests on the same connection (pipelined): those requests
  // are answered first, in order, and this answer after them (it was written at once, and read by
  // the client as the answer to the first of them, whose work was lost with the connection). A
  // request still being received (a receive timeout) is the one answered, at once.
  const inFlight = (socket as Socket & { _httpMessage?: http.ServerResponse })._httpMessage;
  if (inFlight && !inFlight.writableFinished && inFlight.req.complete && status !== 408 && !socket.destroyed) {
    inFlight.once('close', () => clientErrorAnswer(err, socket, status, error, reason));
    return;
  }
  connectionAnswers.set(socket, status);
  // (an answer given before the body was all in closes its connection: plugins/error-handler.ts)
  if (socket.writable) {
    const body = JSON.stringify({ error, error_type: reason });
    socket.write(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`
      + `Content-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}
