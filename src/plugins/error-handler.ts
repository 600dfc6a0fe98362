// The one error handler: every error before the first byte of an answer becomes
// `{error, error_type}` with the status from http/error-mapping.ts.
import type { IncomingMessage } from 'node:http';
import type { FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { failureReason, mapError } from '../http/error-mapping.js';
import { connectionAnswers } from '../http/client-error.js';
import { lingerOnClose } from '../http/linger.js';

/** Refused before its body was all in (too large by its Content-Length, a multipart part over the
 * limit, an unknown route): the connection closes after the answer, as HTTP/1.1 asks, instead of
 * staying open while the client sends the rest of a body nobody reads (which the receive timeout
 * then cut with a second answer, a 408, after the first); closed gently (http/linger.ts). */
export function closeIfUnread(raw: IncomingMessage, reply: FastifyReply): void {
  if (raw.complete) return;
  reply.header('connection', 'close');
  lingerOnClose(raw, reply.raw);
}

/** A refused request's error, for its one 'request' log line (app.ts). */
export const refusals = new WeakMap<object, { error: string; error_type: string }>();

export default fp(
  async (app) => {
    app.setErrorHandler(async (err, request, reply) => {
      const mapped = mapError(err);
      // logged as an error only when it is ours; a passed deadline, a shutdown or loading models are not faults
      if (mapped.body.error_type === 'internal') request.log.error({ err }, 'request failed');
      else refusals.set(request, mapped.body);
      const route = request.routeOptions.url;
      // (a request whose connection the receive timeout cut was answered 408 there, and counted)
      if (request.routeOptions.config?.modelWork && route && !connectionAnswers.has(request.raw.socket)) {
        app.metrics.requestFailures.inc({ route, reason: failureReason(mapped.body.error_type) });
      }
      if (mapped.retryAfterSeconds !== undefined) reply.header('retry-after', String(mapped.retryAfterSeconds));
      closeIfUnread(request.raw, reply);
      return reply.code(mapped.statusCode).type('application/json; charset=utf-8').send(mapped.body);
    });

    // every route's path and methods, so that a path the server has, asked with a method it does
    // not take, is 405 with the methods it does take (RFC 9110), not 404
    const routes: { path: RegExp; methods: Set<string> }[] = [];
    app.addHook('onRoute', (route) => {
      if (route.url === '*' || route.url === '/*') return;   // a catch-all (CORS preflights) says nothing of paths
      const path = new RegExp(`^${route.url.split('/').map((seg) => (seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*'
        : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`);
      const methods = [route.method].flat().map((m) => m.toUpperCase());
      if (methods.includes('GET')) methods.push('HEAD');
      const known = routes.find((r) => r.path.source === path.source);
      if (known) for (const m of methods) known.methods.add(m);
      else routes.push({ path, methods: new Set(methods) });
    });
    app.setNotFoundHandler(async (request, reply) => {
      closeIfUnread(request.raw, reply);
      const path = request.url.split('?')[0];
      const allow = [...new Set(routes.filter((r) => r.path.test(path)).flatMap((r) => [...r.methods]))].sort().join(', ');
      if (allow) {
        return reply.code(405).header('allow', allow)
          .send({ error: `${request.method} is not allowed on ${path}; it takes ${allow}`, error_type: 'method_not_allowed' });
      }
      return reply.code(404).send({ error: `no route ${request.method} ${path}`, error_type: 'not_found' });
    });
  },
  { name: 'error-handler', fastify: '5.x', dependencies: ['metrics'] },
);
