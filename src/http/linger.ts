// Closing a connection whose request was refused before its body was all in (plugins/error-handler.ts,
// closeIfUnread), gently: Node ends and destroys the socket as soon as the answer is written, and a
// socket closed with the client's bytes unread is reset (RST), which makes a client still sending
// its body fail with EPIPE or ECONNRESET before it reads the answer (Node's fetch did for 16 of 20
// uploads over BODY_LIMIT). So the answer is followed by our end of the connection only (FIN), the
// rest of what the client sends is read and dropped, and the socket is closed when the client
// closes its side, or after LINGER_MS (nginx's lingering close). Having said `Connection: close`,
// the server processes no further request on it (RFC 9112, 9.6): one that still comes (pipelined
// behind the body, or sent after the answer) is dropped unanswered (app.ts, the first onRequest hook).
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** How long such a connection keeps reading and dropping, at most, before it is closed regardless. */
export const LINGER_MS = 5_000;

/** Connections with a request refused before it was all in (or without a Host), and that request:
 * they end after its answer, and a request that comes after it on them is not processed (one
 * before it, pipelined and still running, is answered first, as HTTP/1.1 orders answers). */
export const closing = new WeakMap<Socket, IncomingMessage>();
/** Those whose answer has been written: what they still receive is read and dropped. */
export const lingering = new WeakSet<Socket>();

/** Sockets whose destroySoon is the lingering close (app.inject's sockets have none of their own). */
const patched = new WeakSet<Socket>();

/** A request that came after the one refused on its connection: not to be processed. */
export function afterRefusal(req: IncomingMessage): boolean {
  const refused = closing.get(req.socket);
  return refused !== undefined && refused !== req;
}

export function lingerOnClose(req: IncomingMessage, answer: { once(event: 'finish', f: () => void): unknown }): void {
  const socket = req.socket;
  answer.once('finish', () => lingering.add(socket));
  if (!closing.has(socket)) closing.set(socket, req);
  if (patched.has(socket)) return;
  patched.add(socket);
  // Node's HTTP server closes a connection that is not kept alive with socket.destroySoon() once
  // the last answer is written (socket.end() where a socket has none)
  socket.destroySoon = function lingeringClose(this: Socket) {
    this.end();
    this.resume();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('end', () => this.destroy());
    this.once('close', () => clearTimeout(timer));
  };
}
