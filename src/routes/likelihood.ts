// POST /likelihood: the NLL of one image under a model, total, per stage and per slice, and on
// request per pixel as a heat map. The image comes as a raw image body, a multipart upload, or JSON.
// POST /likelihood/batch: the same for up to 64 images of one JSON or multipart body, scored in shared runs.
import { errorCodes, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { Type } from '@sinclair/typebox';
import type { Config } from '../config.js';
import { UnknownModelError } from '../runtime/errors.js';
import { API_KEY_SECURITY, errors, NoQuery } from '../schemas/common.js';
import {
  BinaryImage, LikelihoodBatchBody, LikelihoodBatchMultipart, LikelihoodBatchResult, LikelihoodJsonBody, LikelihoodMultipart, LikelihoodQuery, LikelihoodResult,
  MAX_BATCH_IMAGES, type LikelihoodBatchResult as BatchResult, type LikelihoodQuery as Query, type LikelihoodResult as Result,
} from '../schemas/likelihood.js';
import { fromBase64 } from '../http/condition.js';
import { decodeImage, type ConvertOptions, type DecodedImage } from '../http/decode-image.js';
import { effectiveTimeout, requestAbort } from '../http/deadline.js';
import { BadRequestError, LengthRequiredError, UnsupportedMediaTypeError } from '../http/errors.js';
import { heatMap } from '../http/heatmap.js';
import { encodePng } from '../http/png.js';

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;

type ImageScore = BatchResult['results'][number];
type MultipartBody = { image?: unknown; model?: string; perPixel?: boolean; timeoutMs?: number; resize?: boolean; grayscale?: boolean; rgb?: boolean };
type Body = Buffer | LikelihoodJsonBody | MultipartBody;

/** One image's part of an answer: its scores, what was read, and on request its heat map. */
function imageScore(
  r: { bitsPerDim: number; nats: number; bits: number; stages: ImageScore['stages']; perPixelBits?: Float32Array },
  decoded: DecodedImage, shape: { height: number; width: number }, perPixel: boolean,
): ImageScore {
  const out: ImageScore = {
    bitsPerDim: r.bitsPerDim, nats: r.nats, bits: r.bits, stages: r.stages, input: { ...decoded.source, conversions: decoded.conversions },
  };
  if (perPixel && r.perPixelBits) {
    const { image, minBits, maxBits } = heatMap(r.perPixelBits, shape.height, shape.width);
    out.perPixel = { png: encodePng(image).toString('base64'), width: image.width, height: image.height, minBits, maxBits };
  }
  return out;
}

/** One shape for the three ways in: JSON options win over the query string. */
function readRequest(mediaType: string | undefined, body: Body, query: Query): { bytes: Buffer; model?: string; perPixel: boolean; timeoutMs?: number; convert: ConvertOptions } {
  const fromQuery = { resize: query.resize, grayscale: query.grayscale, rgb: query.rgb };
  if ((IMAGE_TYPES as readonly string[]).includes(mediaType ?? '') && Buffer.isBuffer(body)) return { bytes: body, model: query.model, perPixel: !!query.perPixel, timeoutMs: query.timeoutMs, convert: fromQuery };
  if (mediaType === 'multipart/form-data') {
    const b = body as MultipartBody;
    if (!Buffer.isBuffer(b.image)) throw new BadRequestError('body/image must be a file upload');
    return {
      bytes: b.image,
      model: b.model ?? query.model,
      perPixel: !!(b.perPixel ?? query.perPixel),
      timeoutMs: b.timeoutMs ?? query.timeoutMs,
      convert: { resize: b.resize ?? query.resize, grayscale: b.grayscale ?? query.grayscale, rgb: b.rgb ?? query.rgb },
    };
  }
  if (mediaType !== 'application/json') throw new UnsupportedMediaTypeError(mediaType ?? 'none');
  const b = body as LikelihoodJsonBody;
  return {
    bytes: fromBase64(b.image, 'body/image'),
    model: b.model ?? query.model,
    perPixel: !!(b.perPixel ?? query.perPixel),
    timeoutMs: b.timeoutMs ?? query.timeoutMs,
    convert: { ...fromQuery, ...b.convert },
  };
}

/** A batch from JSON (base64 images, decoded lazily so a bad one is named) or a multipart form. */
function readBatch(mediaType: string | undefined, body: LikelihoodBatchBody | LikelihoodBatchMultipart): {
  images: (() => Buffer)[]; model?: string; perPixel: boolean; timeoutMs?: number; convert: ConvertOptions;
} {
  if (mediaType === 'multipart/form-data') {
    const b = body as LikelihoodBatchMultipart;
    return {
      images: b.images.map((bytes, i) => () => {
        if (!Buffer.isBuffer(bytes)) throw new BadRequestError(`body/images/${i} must be a file upload`);
        return bytes;
      }),
      model: b.model,
      perPixel: !!b.perPixel,
      timeoutMs: b.timeoutMs,
      convert: { resize: b.resize, grayscale: b.grayscale, rgb: b.rgb },
    };
  }
  if (mediaType !== 'application/json') throw new UnsupportedMediaTypeError(mediaType ?? 'none');
  const b = body as LikelihoodBatchBody;
  return {
    images: b.images.map((text, i) => () => fromBase64(text, `body/images/${i}`)),
    model: b.model,
    perPixel: !!b.perPixel,
    timeoutMs: b.timeoutMs,
    convert: b.convert ?? {},
  };
}

/** option fields a multipart form may carry beside its file parts */
const MAX_FORM_FIELDS = 8;

export default async function likelihoodRoutes(app: FastifyInstance, { config }: { config: Config }) {
  // Encapsulated here: other routes answer 415 to image and multipart bodies.
  app.addContentTypeParser([...IMAGE_TYPES], { parseAs: 'buffer', bodyLimit: config.BODY_LIMIT }, (_req, body, done) => done(null, body));
  await app.register(multipart, {
    attachFieldsToBody: 'keyValues',
    limits: { fileSize: config.BODY_LIMIT, files: 1, fields: MAX_FORM_FIELDS, fieldSize: 1024, parts: 1 + MAX_FORM_FIELDS },
  });
  // A malformed multipart body (truncated, no closing boundary) fails inside the multipart
  // plugin's parsing with busboy's plain Error, no code, which the error handler would call
  // ours (500). An uncoded error from a multipart request that never reached the handler is that
  // parse failure: refused as 400 by the parent handler. Errors in the handler keep their mapping.
  const handled = new WeakSet<object>();
  app.addHook('preHandler', async (request) => {
    handled.add(request);
  });
  app.setErrorHandler(async (err: { code?: string; statusCode?: number; message?: string }, request) => {
    if (request.isMultipart() && !handled.has(request) && err.code === undefined && err.statusCode === undefined) {
      throw new BadRequestError(`malformed multipart body: ${err.message}`);
    }
    // the multipart plugin's part counts ("reach files limit", a 413): too many parts, not too many bytes
    if (err.code === 'FST_FILES_LIMIT' || err.code === 'FST_PARTS_LIMIT' || err.code === 'FST_FIELDS_LIMIT') {
      const batch = request.routeOptions.url === '/likelihood/batch';
      throw new BadRequestError(`too many parts in the multipart form: it takes ${batch ? `1 to ${MAX_BATCH_IMAGES} file parts named images` : 'one file part named image'} and at most ${MAX_FORM_FIELDS} option fields`);
    }
    throw err;
  });

  app.post<{ Body: Body; Querystring: Query }>('/likelihood', {
    config: { modelWork: true, apiKey: true },
    bodyLimit: config.BODY_LIMIT,
    schema: {
      tags: ['scoring'],
      security: API_KEY_SECURITY,
      summary: 'likelihood of an image: bits/dim, NLL in nats and bits, per stage and per slice',
      description:
        "The image must have the model's size and channels; otherwise the answer is 422, unless conversion is asked for (resize, grayscale, rgb). Nothing is converted silently: `input.conversions` lists what was done.",
      querystring: LikelihoodQuery,
      body: {
        content: {
          'application/json': { schema: LikelihoodJsonBody },
          'multipart/form-data': { schema: LikelihoodMultipart },
          ...Object.fromEntries(IMAGE_TYPES.map((t) => [t, { schema: BinaryImage }])),
        },
      },
      response: { 200: Type.Ref(LikelihoodResult), ...errors(400, 401, 404, 413, 415, 422, 429, 500, 503, 504) },
    },
  }, async (request, reply) => {
    const runtime = app.runtime;
    const req = readRequest(request.mediaType, request.body, request.query);
    const modelName = req.model ?? app.defaultModel();
    const model = runtime.model(modelName);
    if (!model) throw new UnknownModelError(modelName);
    const decoded = await decodeImage(req.bytes, { name: model.name, ...model.image }, req.convert, config.MAX_IMAGE_PIXELS,
      request.mediaType === 'multipart/form-data' ? (o) => `${o}=true (a form field, or the query)` : undefined);
    return underDeadline(reply, req.timeoutMs, async (signal) => {
      const r = await runtime.likelihood({ model: model.name, image: decoded.image, perPixel: req.perPixel, signal });
      app.metrics.queueTime.observe({ model: model.name, kind: 'likelihood' }, r.timings.queueMs / 1000);
      const result: Result = { model: r.model, ...imageScore(r, decoded, model.image, req.perPixel), timings: r.timings };
      return result;
    });
  });

  app.post<{ Body: LikelihoodBatchBody | LikelihoodBatchMultipart }>('/likelihood/batch', {
    config: {
      modelWork: true,
      apiKey: true,
      // up to MAX_BATCH_IMAGES file parts, each up to BODY_LIMIT; the whole body is held to
      // BODY_LIMIT by its Content-Length, checked before it is read (onRequest below)
      multipartOptions: { limits: { files: MAX_BATCH_IMAGES, parts: MAX_BATCH_IMAGES + MAX_FORM_FIELDS } },
    },
    bodyLimit: config.BODY_LIMIT,
    onRequest: async (request: FastifyRequest) => {
      // (isMultipart() is only known once the body parser has started: read the header)
      if (!/^multipart\/form-data/i.test(request.headers['content-type'] ?? '')) return;
      const length = request.headers['content-length'];
      if (length === undefined) throw new LengthRequiredError('a multipart batch upload needs a Content-Length');
      if (Number(length) > config.BODY_LIMIT) {
        throw new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE();
      }
    },
    // one file part arrives as a Buffer, several as an array: always an array for the schema
    preValidation: async (request: FastifyRequest) => {
      const body = request.body as { images?: unknown } | undefined;
      if (request.isMultipart() && body && Buffer.isBuffer(body.images)) body.images = [body.images];
    },
    schema: {
      tags: ['scoring'],
      security: API_KEY_SECURITY,
      summary: `likelihood of up to ${MAX_BATCH_IMAGES} images in one request: each as /likelihood answers it, and their mean bits/dim`,
      querystring: NoQuery,
      description:
        "A JSON body with `images` (base64 PNG, JPEG or WebP) and the options of /likelihood, or a multipart form with one file part named `images` per image (a Content-Length is required, at most BODY_LIMIT) and the options as fields. The images share one place in the queue and their slices are scored in the same batched runs. One image that cannot be decoded or does not fit the model refuses the whole request, and the error names it by its place (`body/images/3: ...`).",
      body: {
        content: {
          'application/json': { schema: LikelihoodBatchBody },
          'multipart/form-data': { schema: LikelihoodBatchMultipart },
        },
      },
      response: { 200: Type.Ref(LikelihoodBatchResult), ...errors(400, 401, 404, 411, 413, 415, 422, 429, 500, 503, 504) },
    },
  }, async (request, reply) => {
    const runtime = app.runtime;
    const b = readBatch(request.mediaType, request.body);
    const modelName = b.model ?? app.defaultModel();
    const model = runtime.model(modelName);
    if (!model) throw new UnknownModelError(modelName);
    const decoded = await Promise.all(b.images.map(async (bytes, i) => {
      try {
        // the batch takes its options from the body only: the form's fields, or JSON's convert
        return await decodeImage(bytes(), { name: model.name, ...model.image }, b.convert, config.MAX_IMAGE_PIXELS,
          request.mediaType === 'multipart/form-data' ? (o) => `the form field ${o}=true` : (o) => `convert.${o}`);
      } catch (err) {
        // the image's own error (not an image, too large, does not fit), naming which one
        if (err instanceof Error && !err.message.startsWith('body/images/')) err.message = `body/images/${i}: ${err.message}`;
        throw err;
      }
    }));
    return underDeadline(reply, b.timeoutMs, async (signal) => {
      const r = await runtime.likelihoodBatch({ model: model.name, images: decoded.map((d) => d.image), perPixel: b.perPixel, signal });
      app.metrics.queueTime.observe({ model: model.name, kind: 'likelihood' }, r.timings.queueMs / 1000);
      const results = r.results.map((one, i) => imageScore(one, decoded[i], model.image, b.perPixel));
      const out: BatchResult = {
        model: r.model, count: results.length, bitsPerDim: results.reduce((a, x) => a + x.bitsPerDim, 0) / results.length, results, timings: r.timings,
      };
      return out;
    });
  });

  /** Runs `work` with a signal that aborts when the client hangs up, the request's deadline passes,
   * or the server shuts down; a failure after an abort is answered with the abort's reason. */
  async function underDeadline<T>(reply: FastifyReply, timeoutMs: number | undefined, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const { ac, finish } = requestAbort(app.lifecycle, reply, effectiveTimeout(config.REQUEST_TIMEOUT_MS, timeoutMs));
    try {
      return await work(ac.signal);
    } catch (err) {
      throw ac.signal.aborted ? ac.signal.reason : err;
    } finally {
      finish();
    }
  }
}
