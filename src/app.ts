// Builds the whole application, for the server and for every test alike.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IncomingMessage } from 'node:http';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { Config } from './config.js';
import { nonFinitePath } from './http/finite.js';
import metrics from './plugins/metrics.js';
import lifecycle from './plugins/lifecycle.js';
import runtime, { type RuntimeDeps } from './plugins/runtime.js';
import errorHandler from './plugins/error-handler.js';
import swagger from './plugins/swagger.js';
import cors, { parseOrigins, setCorsHeaders } from './plugins/cors.js';
import apiKeys from './plugins/api-keys.js';
import healthRoutes from './routes/health.js';
import modelRoutes from './routes/models.js';
import metricsRoutes from './routes/metrics.js';
import sampleRoutes from './routes/sample.js';
import likelihoodRoutes from './routes/likelihood.js';
import demoRoutes from './routes/demo.js';
import v2Routes from './routes/v2.js';
import { schemaErrorFormatter } from './http/validation-message.js';
import { validatorFactory } from './http/validators.js';
import { inflateBody } from './http/content-encoding.js';
import { clientErrorHandler, receiveTimeouts } from './http/client-error.js';
import { afterRefusal, closing, lingerOnClose } from './http/linger.js';
import { traceContext } from './http/trace.js';
import { closeIfUnread, refusals } from './plugins/error-handler.js';

export interface AppDeps extends RuntimeDeps {
  /** a pino logger or Fastify logger options; default: JSON logs at LOG_LEVEL */
  logger?: FastifyServerOptions['logger'];
}

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
// read from its package file: the main thread never loads onnxruntime's native binding
const ortVersion = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;

/** Routes that probes and scrapers call every few seconds: their request lines are at debug level. */
const PROBES = /^\/(health\/|v2\/health\/|metrics$)/;

/** One log line per request, when it is answered: its id, method, URL, status and time, and for a
 * refusal its error and error_type (Fastify writes two, 'incoming request' and 'request completed';
 * a refusal was a third, 'request refused'). */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const url = request.url.length > 200 ? `${request.url.slice(0, 200)}...` : request.url;
    const line = { method: request.method, url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ...refusals.get(request) };
    if (error) request.log.error({ ...line, err: error }, 'request');
    else if (PROBES.test(request.routeOptions.url ?? '') && reply.statusCode < 400) request.log.debug(line, 'request');
    else request.log.info(line, 'request');
  }
}

/** A caller's request id (from a proxy), if it is a plain token: ids are echoed and logged, so one of
 * 3,000 characters, or two headers joined into 'a, b', gets a fresh id instead. */
export function requestId(header: string | string[] | undefined): string {
  return typeof header === 'string' && /^[A-Za-z0-9._:@\/+=-]{1,128}$/.test(header) ? header : randomUUID();
}

export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const { requestTimeout, headersTimeout, connectionsCheckingInterval } = receiveTimeouts(config.RECEIVE_TIMEOUT_MS);
  const corsOrigins = parseOrigins(config.CORS_ORIGINS);
  const app = Fastify({
    logger: deps.logger ?? { level: config.LOG_LEVEL },
    logController: new OneLinePerRequest(),
    bodyLimit: config.BODY_LIMIT,
    // A client must send its whole request within RECEIVE_TIMEOUT_MS (408 past it); these and
    // other connection-level failures are answered in the one error shape and counted.
    requestTimeout,
    // Node answers an HTTP/1.1 request without Host with a bare 400 of its own; the hook below
    // answers it in the one error shape and counts it
    http: { connectionsCheckingInterval, requireHostHeader: false },
    clientErrorHandler,
    // Keep a caller's request id (from a proxy) so logs line up across hops; make one otherwise.
    requestIdHeader: false,
    genReqId: (req) => requestId(req.headers['x-request-id']),
    // A caller's W3C traceparent puts its trace id on this request's log lines.
    childLoggerFactory: (logger, bindings, opts, raw) => logger.child({ ...bindings, ...traceContext(raw.headers.traceparent) }, opts),
    // Unknown fields are refused (400 naming them), not silently dropped.
    // strictTypes off: binary bodies are `{format: 'binary'}` without a type on purpose (see plugins/swagger.ts).
    ajv: { customOptions: { removeAdditional: false, strictTypes: false } },
    // JSON bodies without Ajv's type coercion, text with it (http/validators.ts)
    schemaController: { compilersFactory: { buildValidator: validatorFactory() } },
    schemaErrorFormatter,
    // The router's own refusals (a bad percent-encoding, a path parameter over maxParamLength) in
    // the one error shape; the fuzz test found them answering Fastify's default body.
    // No hook runs for them: the CORS headers and the duration metric are added here.
    frameworkErrors: (err, request, raw) => {
      // (a request after a refusal that closes its connection is dropped, as in the first onRequest hook below)
      if (afterRefusal(request.raw)) return void request.raw.resume();
      const reply = raw as unknown as FastifyReply;
      const status = err.statusCode ?? 400;
      const error = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is over 100 characters'
        : err.code === 'FST_ERR_BAD_URL' ? 'the URL is not valid (a bad percent-encoding)' : err.message;
      setCorsHeaders(reply, corsOrigins, request.headers.origin);
      closeIfUnread(request.raw, reply);
      void reply.code(status).header('x-request-id', request.id).header('cache-control', 'no-store')
        .type('application/json; charset=utf-8').send({ error, error_type: 'bad_request' });
      app.metrics?.httpDuration.observe({ method: request.method, route: 'unmatched', status_class: `${Math.floor(status / 100)}xx` }, reply.elapsedTime / 1000);
    },
  });

  app.server.headersTimeout = headersTimeout;


  // No route takes plain text; without its parser such bodies get 415 instead of reaching a handler.
  app.removeContentTypeParser('text/plain');
  // Fastify's JSON parser (prototype poisoning refused), with a message that says what is wrong:
  // its own is 'Body is not valid JSON' for JSON with a __proto__ key too
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    json(request, body as string, (err: (Error & { code?: string }) | null, value?: unknown) => {
      if (err?.code !== 'FST_ERR_CTP_INVALID_JSON_BODY') return done(err, value);
      let message: string;
      try {
        JSON.parse(body as string);
        message = 'the body has a __proto__ key, or a constructor key holding a prototype: refused (prototype poisoning)';
      } catch (e) {
        message = `the body is not valid JSON: ${(e as Error).message}`;
      }
      done(Object.assign(new Error(message), { statusCode: 400 }), undefined);
    });
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // An error is not the representation a validator set before it names (a seeded PNG's ETag),
    // and is not cached: every error answer, whichever handler gave it
    if (reply.statusCode >= 400) {
      reply.removeHeader('etag');
      reply.header('cache-control', 'no-store');
    }
  });

  // A request after one refused before its body was in, on the same connection (pipelined behind
  // that body, or sent after the answer), is not processed (RFC 9112, 9.6): that answer says
  // `Connection: close`, and the connection ends after it (http/linger.ts); this one is dropped
  // unanswered, its body read and discarded
  app.addHook('onRequest', async (request, reply) => {
    if (!afterRefusal(request.raw)) return;
    reply.hijack();
    request.raw.resume();
  });
  // A request without Host is refused (below), and a request pipelined behind it in the same bytes
  // is emitted before that refusal's hook runs: it is marked here, as Node emits it, so that the
  // next one is seen as coming after it
  app.server.prependListener('request', (req: IncomingMessage) => {
    if (req.headers.host === undefined && req.httpVersion === '1.1' && !closing.has(req.socket)) closing.set(req.socket, req);
  });

  // HTTP/1.1 requires Host (RFC 9112, 3.2): refused as not valid HTTP, as Node would, but in the
  // error shape and counted with the other connection-level refusals
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') {
      app.metrics.clientErrors.inc({ reason: 'malformed' });
      // its connection ends after this answer, as after any refusal that closes it: what comes
      // after is not processed, and a body still coming is read and dropped (http/linger.ts)
      lingerOnClose(request.raw, reply.raw);
      return reply.code(400).header('connection', 'close').type('application/json; charset=utf-8')
        .send({ error: 'an HTTP/1.1 request needs a Host header', error_type: 'malformed' });
    }
  });

  // gzip and deflate bodies inflated; other encodings 415 (http/content-encoding.ts)
  app.addHook('preParsing', inflateBody);

  // Expect: 100-continue (curl sends it for bodies over 1 MB): Node writes 100 Continue at once
  // unless something listens for 'checkContinue' (which it emits for HTTP/1.1 requests that expect
  // exactly that), so a client whose upload was to be refused from its headers sent its whole body
  // first. Here 100 Continue goes out once the request has passed the checks made on its headers
  // (a key: 401; a multipart batch's Content-Length: 411, 413; its encoding: 415) and its body is
  // about to be read, unless its Content-Length is over the body limit of a body read whole (not a
  // multipart form where a route reads it part by part): that is 413 next, the final answer at once
  // (RFC 9110, 10.1.1). (Other refusals, such as 404 or an unsupported media type, still read or
  // send 100 first, as Node did for all.)
  const expectsContinue = new WeakSet<object>();
  app.server.on('checkContinue', (req, res) => {
    expectsContinue.add(req);
    app.server.emit('request', req, res);
  });
  app.addHook('preParsing', async (request, reply) => {
    if (!expectsContinue.has(request.raw)) return;
    const length = Number(request.headers['content-length']);
    // (where a route reads multipart forms, part by part, the form's length is not held to the limit)
    const whole = !(/^multipart\/form-data/i.test(request.headers['content-type'] ?? '') && request.server.hasContentTypeParser('multipart/form-data'));
    if (whole && Number.isFinite(length) && length > (request.routeOptions.bodyLimit ?? config.BODY_LIMIT)) return;   // (413 next)
    reply.raw.writeContinue();
  });

  // after validation: no non-finite number gets past a schema's bounds (http/finite.ts)
  app.addHook('preHandler', async (request) => {
    const bad = nonFinitePath(request.query, 'querystring') ?? nonFinitePath(request.body, 'body');
    if (bad) throw Object.assign(new Error(`${bad} must be a finite number`), { validation: [], statusCode: 400 });
  });

  await app.register(metrics);
  app.metrics.buildInfo.set({ version, node: process.versions.node, onnxruntime: ortVersion }, 1);
  // the error handler before the plugins with routes (cors' preflight), which take the one in
  // force when they are added; cors before lifecycle: CORS headers are set by an onRequest hook,
  // and lifecycle refuses model work while shutting down (503) by throwing from its own, after
  // which no hook runs
  await app.register(errorHandler);
  await app.register(cors, { config });
  await app.register(lifecycle);
  await app.register(apiKeys, { config });
  await app.register(swagger, { version });
  await app.register(runtime, { config, runtime: deps.runtime, createRuntime: deps.createRuntime });

  await app.register(healthRoutes);
  await app.register(metricsRoutes);
  await app.register(modelRoutes);
  await app.register(sampleRoutes, { config });
  await app.register(likelihoodRoutes, { config });
  await app.register(demoRoutes);
  await app.register(v2Routes, { config, version });
  return app;
}
