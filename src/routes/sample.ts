// POST /sample: draw images, answered as an event stream (slice by slice), JSON, or one PNG.
// GET /sample: the same with the options in the query string (EventSource, <img>), no condition.
import { createHash, randomInt } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Config } from '../config.js';
import { UnknownModelError } from '../runtime/errors.js';
import { stageIndex } from '../runtime/plan.js';
import type { ModelSummary, SampleEvent } from '../runtime/types.js';
import { API_KEY_SECURITY, ErrorBody, errors, NoQuery } from '../schemas/common.js';
import { EVENT_STREAM_DESCRIPTION, MAX_SEED, SampleBody, SampleQuery, SampleResult, SliceEventData, StageEventData } from '../schemas/sample.js';
import { toCondition } from '../http/condition.js';
import { effectiveTimeout, requestAbort } from '../http/deadline.js';
import { NotAcceptableError } from '../http/errors.js';
import { failureReason, mapError } from '../http/error-mapping.js';
import { negotiate } from '../http/negotiate.js';
import { encodePng, grid } from '../http/png.js';
import { SampleOutput } from '../http/sample-output.js';
import { EventStream } from '../http/sse.js';
import { addVary } from '../plugins/cors.js';

const OFFERS = ['application/json', 'text/event-stream', 'image/png'] as const;

/** The seeded PNG's identity: the weights, the provider that ran them, and every option. */
function sampleEtag(model: ModelSummary, body: SampleBody, seed: number): string {
  const key = JSON.stringify([model.name, model.version, model.provider, body.count, seed, body.temperature, body.stopAfter ?? null, 'image/png']);
  return `"${createHash('sha256').update(key).digest('hex').slice(0, 32)}"`;
}

/** Whether If-None-Match (a list of entity tags, or *) holds this one; W/ prefixes compare weakly. */
function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').map((t) => t.trim().replace(/^W\//, '')).some((t) => t === '*' || t === etag);
}

type Outcome = { ok: true; value: IteratorResult<SampleEvent> } | { ok: false; error: unknown };

/**
 * The runtime refuses at once (overloaded, bad input) on the generator's first step, before any
 * await that waits for a place; one macrotask is enough to tell that apart from waiting in the queue.
 * Refusals then get a real status code instead of an in-band error.
 */
async function settledSoon(p: Promise<IteratorResult<SampleEvent>>): Promise<Outcome | undefined> {
  const outcome = p.then((value): Outcome => ({ ok: true, value }), (error): Outcome => ({ ok: false, error }));
  return Promise.race([outcome, new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)))]);
}

export default async function sampleRoutes(app: FastifyInstance, { config }: { config: Config }) {
  const responses = {
    200: {
      description: 'the samples',
      content: {
        'application/json': { schema: Type.Ref(SampleResult) },
        'text/event-stream': { schema: Type.String({ description: EVENT_STREAM_DESCRIPTION }) },
        'image/png': { schema: Type.String({ format: 'binary' }) },
      },
    },
    ...errors(400, 401, 404, 406, 413, 415, 422, 429, 500, 503, 504),
  };
  /** The id of a stream's last event (`done`, or an in-band `error`); the others are `<seed>:<n>`, n from 1. */
  const STREAM_END_ID = 'end';
  const EVENT_ID = /^(\d+):(\d+)$/;
  /** The header an event-stream client sends when it reconnects. */
  const resumeHeaders = (description: string) => Type.Object({ 'last-event-id': Type.Optional(Type.String({ description })) });
  const ResumeHeaders = resumeHeaders('sent by an EventSource when it reconnects: `end` (the stream had ended: 204) or `<seed>:<n>` (a dropped stream: the rest of it, from event n + 1; ignored when the query names another seed)');
  const PostResumeHeaders = resumeHeaders('sent by a fetch-based event-stream client when it retries (a browser\'s EventSource cannot POST): `<seed>:<n>` (a dropped stream: the rest of it, from event n + 1; ignored when the body names another seed); `end` is ignored');

  app.post<{ Body: SampleBody }>('/sample', {
    config: { modelWork: true, apiKey: true },
    schema: {
      tags: ['generation'],
      security: API_KEY_SECURITY,
      summary: 'sample images',
      description: `Answers JSON (default), a PNG (\`Accept: image/png\`; a grid when count > 1; seed in \`X-Seed\`), or an event stream. ${EVENT_STREAM_DESCRIPTION}`,
      body: SampleBody,
      querystring: NoQuery,
      headers: PostResumeHeaders,
      response: responses,
    },
  }, async (request, reply) => sample(request, request.body, reply));

  // The same without a body, for clients that can only GET: a browser's EventSource, an <img> tag,
  // a link. No conditional sampling (its image does not fit a URL).
  app.get<{ Querystring: SampleQuery }>('/sample', {
    config: { modelWork: true, apiKey: true },
    // HEAD is its own route below: Fastify's automatic one would run the model for headers
    exposeHeadRoute: false,
    schema: {
      tags: ['generation'],
      security: API_KEY_SECURITY,
      summary: 'sample images, the options in the query string',
      description: `POST /sample for clients that can only GET (\`new EventSource('/sample?seed=7')\`, \`<img src="/sample?count=16">\`): the same answers from the same options, but no \`condition\`. ${EVENT_STREAM_DESCRIPTION}`,
      querystring: SampleQuery,
      headers: ResumeHeaders,
      response: {
        ...responses,
        204: Type.Null({ description: "an EventSource reconnecting after its stream ended (`Last-Event-ID: end`): no content, so the browser stops reconnecting and the model does not run" }),
        304: Type.Null({ description: 'not modified: a seeded PNG whose ETag the client sent in If-None-Match (the model does not run)' }),
      },
    },
  }, async (request, reply) => sample(request, request.query, reply));

  // HEAD: what GET would answer, without running the model (link checkers, prefetchers, caches
  // revalidating a PNG): the same refusals, media type, cache headers and ETag (304 on a match).
  app.head<{ Querystring: SampleQuery }>('/sample', {
    config: { apiKey: true },
    schema: {
      tags: ['generation'],
      security: API_KEY_SECURITY,
      summary: 'the headers GET /sample would answer, without sampling',
      description: 'Validates the query and Accept as GET does and answers its status, Content-Type, Cache-Control and, for a seeded PNG, its ETag (304 when If-None-Match holds it). The model does not run, so there is no Content-Length.',
      querystring: SampleQuery,
      response: {
        200: Type.Null({ description: 'GET would sample: the headers it would carry' }),
        304: Type.Null({ description: 'not modified: a seeded PNG whose ETag the client sent in If-None-Match' }),
        ...errors(400, 401, 404, 406, 422, 503),
      },
    },
  }, async (request, reply) => {
    const { accept, seed, notModified } = prepare(request, request.query, reply);
    if (notModified) return reply.code(304).send();
    if (streamEnded(request, accept)) return reply.code(204).header('cache-control', 'no-store').send();
    if (accept === 'text/event-stream') reply.header('cache-control', 'no-cache, no-transform');
    if (accept === 'image/png' && request.query.seed !== undefined) reply.header('x-seed', String(seed));
    return reply.code(200).type(accept === 'application/json' ? 'application/json; charset=utf-8' : accept === 'text/event-stream' ? 'text/event-stream; charset=utf-8' : accept).send();
  });

  /** The Last-Event-ID of an event-stream client reconnecting: an EventSource (GET), or a fetch-based
   * client retrying a POST (as @microsoft/fetch-event-source does). */
  function lastEventId(request: FastifyRequest, accept: string): string | undefined {
    if (accept !== 'text/event-stream') return undefined;
    const id = request.headers['last-event-id'];
    return typeof id === 'string' ? id.trim() : undefined;
  }

  /** An EventSource reconnecting to GET /sample after its stream ended (the last event's id). A POST
   * is never reconnected by a browser after its end: there the id is ignored, and it samples. */
  function streamEnded(request: FastifyRequest, accept: string): boolean {
    return request.method !== 'POST' && lastEventId(request, accept) === STREAM_END_ID;
  }

  /**
   * Where a client reconnecting in the middle of a stream left off: its seed, and how many events
   * it has. The same seed and options (and condition) make the same events in the same order, so
   * the stream is sampled again and its first `events` are not sent. A query or body naming another
   * seed, or an id that is not one of ours, starts a new stream.
   */
  function resumePoint(request: FastifyRequest, accept: string, namedSeed: number | undefined): { seed: number; events: number } | undefined {
    const m = EVENT_ID.exec(lastEventId(request, accept) ?? '');
    if (!m) return undefined;
    const seed = Number(m[1]);
    if (seed > MAX_SEED || (namedSeed !== undefined && namedSeed !== seed)) return undefined;
    return { seed, events: Number(m[2]) };   // past the stream's length (however many digits): only done
  }

  /** What every method checks first: Accept, the model, the seed; for GET and HEAD the cache
   * headers, and whether the client already holds this seeded PNG. */
  function prepare(request: FastifyRequest, body: SampleBody, reply: FastifyReply) {
    const acceptHeader = request.headers.accept;
    const accept = negotiate(acceptHeader, OFFERS);
    if (!accept) throw new NotAcceptableError(`cannot answer ${acceptHeader}; offers: ${OFFERS.join(', ')}`);
    const modelName = body.model ?? app.defaultModel();
    const model = app.runtime.model(modelName);
    if (!model) throw new UnknownModelError(modelName);
    stageIndex(model, body.stopAfter);   // 422 for a stage the model lacks, before any ETag or 304
    const resume = resumePoint(request, accept, body.seed);
    const seed = body.seed ?? resume?.seed ?? randomInt(0, MAX_SEED + 1);
    let notModified = false;
    if (request.method === 'GET' || request.method === 'HEAD') {
      // A GET that names its seed asking for a PNG always gets the same bytes from the same weights:
      // it has an ETag, and a client that has them is answered 304 without running the model.
      // (JSON and streams carry timings, and an unseeded GET is new every time: not cacheable.)
      if (body.seed === undefined || accept !== 'image/png') reply.header('cache-control', 'no-store');
      else {
        const etag = sampleEtag(model, body, seed);
        reply.header('etag', etag).header('cache-control', 'no-cache');
        addVary(reply, 'Accept');
        notModified = ifNoneMatch(request.headers['if-none-match'], etag);
      }
    }
    return { accept, model, seed, notModified, skipEvents: resume?.events ?? 0 };
  }

  async function sample(request: FastifyRequest, body: SampleBody, reply: FastifyReply): Promise<FastifyReply> {
    const { accept, model, seed, notModified, skipEvents } = prepare(request, body, reply);
    if (notModified) return reply.code(304).send();
    // A browser's EventSource reconnects whenever a stream ends, and would sample again and again:
    // the last event's id tells the reconnection that this stream had ended, and 204 stops it.
    if (streamEnded(request, accept)) return reply.code(204).header('cache-control', 'no-store').send();
    const runtime = app.runtime;
    const given = body.condition ? await toCondition(body.condition, model, config.MAX_IMAGE_PIXELS) : undefined;
    const condition = given?.condition;

    const { ac, finish } = requestAbort(app.lifecycle, reply, effectiveTimeout(config.REQUEST_TIMEOUT_MS, body.timeoutMs));

    const events = runtime.sample({
      model: model.name, count: body.count, seed, temperature: body.temperature, stopAfter: body.stopAfter, condition, signal: ac.signal,
    });
    const out = new SampleOutput(model, body, app.metrics, given && { mode: given.condition.mode, input: given.input });

    if (accept === 'text/event-stream') {
      const first = events.next();
      const early = await settledSoon(first);
      if (early && !early.ok) {
        finish();
        throw early.error;
      }
      if (skipEvents > 0) app.metrics.streamResumes.inc({ method: request.method });
      return stream(reply, events, early?.value ?? first, out, ac, finish, seed, skipEvents);
    }

    try {
      let done: SampleResult | undefined;
      let images;
      for await (const ev of events) {
        if (ev.type === 'slice') out.slice(ev, false);
        else if (ev.type === 'done') {
          done = out.done(ev);
          images = ev.images;
        }
      }
      if (!done || !images) throw new Error('sampling ended without a result');
      if (accept === 'image/png') {
        return reply
          .type('image/png')
          .header('x-seed', String(done.seed))
          .header('x-bits-per-dim', done.images.map((i) => i.bitsPerDim.toFixed(6)).join(','))
          .send(encodePng(images.length > 1 ? grid(images) : images[0]));
      }
      return reply.type('application/json; charset=utf-8').send(done);
    } catch (err) {
      // The abort's reason says why better than the runtime's CancelledError does.
      throw ac.signal.aborted ? ac.signal.reason : err;
    } finally {
      finish();
    }
  }

  /** Writes events as they come; anything that fails after the first byte ends the stream in-band. */
  function stream(
    reply: FastifyReply,
    events: AsyncGenerator<SampleEvent>,
    first: IteratorResult<SampleEvent> | Promise<IteratorResult<SampleEvent>>,
    out: SampleOutput,
    ac: AbortController,
    finish: () => void,
    seed: number,
    skipEvents: number,
  ): FastifyReply {
    const sse = new EventStream(config.SSE_KEEPALIVE_MS);
    const serialize = {
      slice: reply.compileSerializationSchema(SliceEventData),
      stage: reply.compileSerializationSchema(StageEventData),
      done: reply.compileSerializationSchema(SampleResult),
      error: reply.compileSerializationSchema(ErrorBody),
    };
    reply
      .code(200)
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-cache, no-transform')
      .header('x-accel-buffering', 'no')
      .send(sse.body);

    void (async () => {
      let completed = false;
      try {
        let r = await first;
        let n = 0;
        while (!r.done) {
          const ev = r.value;
          if (ev.type === 'done') await sse.send('done', serialize.done(out.done(ev)), ac.signal, STREAM_END_ID);
          else if (++n <= skipEvents) {
            // the reconnected client has this one: made again, not sent
            if (ev.type === 'slice') out.slice(ev, false);
          } else {
            const id = `${seed}:${n}`;
            if (ev.type === 'slice') await sse.send('slice', serialize.slice(out.slice(ev, true)!), ac.signal, id);
            else await sse.send('stage', serialize.stage({ sample: ev.sample, stage: ev.stage, elapsedMs: ev.elapsedMs }), ac.signal, id);
          }
          r = await events.next();
        }
        completed = true;
      } catch (err) {
        const cause = ac.signal.aborted ? ac.signal.reason : err;
        const mapped = mapError(cause);
        app.metrics.requestFailures.inc({ route: '/sample', reason: failureReason(mapped.body.error_type) });
        if (mapped.body.error_type === 'internal') reply.log.error({ err: cause }, 'stream failed');
        else reply.log.info({ error_type: mapped.body.error_type }, 'stream ended early');
        if (sse.open) await sse.send('error', serialize.error(mapped.body), undefined, STREAM_END_ID).catch(() => {});
      } finally {
        sse.end();
        finish();
        if (!completed) void events.return(undefined).catch(() => {});
      }
    })();
    return reply;
  }
}
