// CORS: lets pages served from the origins in CORS_ORIGINS call the API from a browser (fetch,
// EventSource, <img> read by a canvas). Off by default: with CORS_ORIGINS empty no header is added
// and a preflight is a 404, so only the server's own pages (Swagger UI) can read its answers.
//
// CORS is the browser's permission to *read* an answer, not access control: a request with a
// disallowed Origin is still served (curl sends none, and a browser's simple GET or form POST is
// sent before any check), only without the headers, so the page cannot read it. A preflight from
// a disallowed origin is refused (403) so the browser never sends the real request.
import type { FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import { ForbiddenOriginError } from '../http/errors.js';

/** Answer headers a page may read besides the safelisted ones. */
export const EXPOSED_HEADERS = ['x-request-id', 'x-seed', 'x-bits-per-dim', 'etag', 'retry-after'];
const METHODS = 'GET, HEAD, POST';
/** Preflight answers are cached by the browser this long (seconds). */
const MAX_AGE_S = 600;
/** A header name (RFC 9110 token), for what a preflight may ask to send. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export type AllowedOrigins = '*' | ReadonlySet<string>;

/** CORS_ORIGINS as a set of serialized origins (scheme://host[:port], lower case, default port
 * left out, as browsers send them), '*' for any, or null when CORS is off. */
export function parseOrigins(value: string): AllowedOrigins | null {
  const v = value.trim();
  if (!v) return null;
  if (v === '*') return '*';
  return new Set(v.split(',').map((o) => {
    const trimmed = o.trim();
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      throw new Error(`CORS_ORIGINS: '${trimmed}' is not an origin (scheme://host[:port])`);
    }
    return url.origin;
  }));
}

/** Adds a name to the Vary header without dropping the ones already there. */
export function addVary(reply: FastifyReply, name: string): void {
  const had = reply.getHeader('vary');
  const names = typeof had === 'string' && had ? had.split(',').map((s) => s.trim()) : [];
  if (!names.some((n) => n.toLowerCase() === name.toLowerCase() || n === '*')) names.push(name);
  reply.header('vary', names.join(', '));
}

/** The CORS headers of an answer to a request from `origin` (none when CORS_ORIGINS is unset);
 * also used by the router's own refusals, which no hook sees (app.ts, frameworkErrors). */
export function setCorsHeaders(reply: FastifyReply, allowed: AllowedOrigins | null, origin: string | undefined): void {
  if (!allowed) return;
  // the answer depends on Origin unless every origin gets the same '*': caches must know
  if (allowed !== '*') addVary(reply, 'Origin');
  if (origin === undefined || (allowed !== '*' && !allowed.has(origin))) return;
  reply.header('access-control-allow-origin', allowed === '*' ? '*' : origin);
  reply.header('access-control-expose-headers', EXPOSED_HEADERS.join(', '));
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const allowed = parseOrigins(config.CORS_ORIGINS);
    if (!allowed) return;
    const permits = (origin: string | undefined): origin is string => origin !== undefined && (allowed === '*' || allowed.has(origin));

    // Every answer, errors and event streams included (headers set here survive the error handler).
    app.addHook('onRequest', async (request, reply) => setCorsHeaders(reply, allowed, request.headers.origin));

    // Preflight: a browser asks before a POST with a JSON body, or a request with other headers.
    app.options('/*', { schema: { hide: true } }, async (request, reply) => {
      const origin = request.headers.origin;
      const method = request.headers['access-control-request-method'];
      if (origin === undefined || method === undefined) return reply.code(204).header('allow', `${METHODS}, OPTIONS`).send();
      if (!permits(origin)) throw new ForbiddenOriginError(`origin ${origin} may not call this API from a browser (CORS_ORIGINS)`);
      const asked = String(request.headers['access-control-request-headers'] ?? '')
        .split(',').map((h) => h.trim().toLowerCase()).filter((h) => TOKEN.test(h));
      addVary(reply, 'Access-Control-Request-Headers');
      reply
        .code(204)
        .header('access-control-allow-methods', METHODS)
        .header('access-control-max-age', String(MAX_AGE_S));
      if (asked.length) reply.header('access-control-allow-headers', asked.join(', '));
      return reply.send();
    });
  },
  { name: 'cors', fastify: '5.x' },
);
