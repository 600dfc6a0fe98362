// The Open Inference Protocol (KServe / Triton "v2") for scoring: clients and platforms built on
// it (KServe's and Triton's HTTP clients, Seldon) can ask for the likelihood of a batch of raw
// images without knowing this API. It has no streaming, so sampling stays on /sample.
//
// Each model takes one input, `image`, UINT8 [batch, H, W, C] (the image's 8-bit values, row-major,
// channels last), and answers `bits_per_dim` and `nats` FP64 [batch] and `stage_bits_per_dim`
// FP64 [batch, stages]: the same numbers /likelihood gives. Tensors come as JSON arrays (flat or
// nested) or, with the binary tensor data extension, as bytes after the JSON header
// (Inference-Header-Content-Length), which is how Triton's client sends numpy arrays by default.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TSchema } from '@sinclair/typebox';
import type { Config } from '../config.js';
import { UnknownModelError } from '../runtime/errors.js';
import type { ModelSummary, RawImage } from '../runtime/types.js';
import { API_KEY_SECURITY, ErrorBody, errors, EXAMPLE_PNG } from '../schemas/common.js';
import { decodePlainPng } from '../http/png.js';
import { MAX_BATCH_IMAGES } from '../schemas/likelihood.js';
import { effectiveTimeout, requestAbort } from '../http/deadline.js';
import { BadRequestError, UnknownVersionError, UnprocessableError } from '../http/errors.js';

const HEADER_LENGTH = 'inference-header-content-length';
const INPUT = 'image';
const OUTPUTS = ['bits_per_dim', 'nats', 'stage_bits_per_dim'] as const;
type OutputName = (typeof OUTPUTS)[number];

interface TensorMetadata { name: string; datatype: string; shape: number[] }
// parameters: checked where read (parametersOf), as the protocol's maps of named values
interface RequestInput { name?: unknown; shape?: unknown; datatype?: unknown; data?: unknown; parameters?: unknown }
interface RequestOutput { name?: unknown; parameters?: unknown }
interface InferRequest { id?: unknown; inputs?: unknown; outputs?: unknown; parameters?: unknown }

/** A value as a refusal names it (JSON, but a number as JavaScript reads it: 1e400 is Infinity). */
const shown = (v: unknown) => (typeof v === 'number' ? String(v) : JSON.stringify(v));

/** A `parameters` field: absent, or a JSON object (the protocol's parameter map); anything else is a 400. */
function parametersOf(value: unknown, field: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new BadRequestError(`${field} is ${shown(value)}: it must be an object`);
  return value as Record<string, unknown>;
}

/** A boolean parameter: absent, or true or false. */
function flag(params: Record<string, unknown> | undefined, key: string, field: string): boolean | undefined {
  const v = params?.[key];
  if (v === undefined || typeof v === 'boolean') return v;
  throw new BadRequestError(`${field}/${key} is ${shown(v)}: it must be true or false`);
}

/** The longest request-level `timeout` (µs) accepted: a day, as every duration here. */
const MAX_TIMEOUT_US = 86_400_000_000;

/**
 * The request's own deadline in ms from its `timeout` parameter (µs, Triton's schedule-policy
 * parameter, which its clients send as `infer(..., timeout=)`), rounded up to whole ms; undefined
 * when absent or 0 (the protocol's "no request timeout": the server's REQUEST_TIMEOUT_MS applies).
 */
function requestedTimeoutMs(params: Record<string, unknown> | undefined): number | undefined {
  const us = params?.timeout;
  if (us === undefined) return undefined;
  if (typeof us !== 'number' || !Number.isInteger(us) || us < 0 || us > MAX_TIMEOUT_US) {
    throw new BadRequestError(`parameters/timeout is ${shown(us)}: it must be an integer number of microseconds from 0 to ${MAX_TIMEOUT_US} (0: the server's deadline)`);
  }
  return us === 0 ? undefined : Math.ceil(us / 1000);
}

interface ResponseOutput { name: OutputName; datatype: 'FP64'; shape: number[]; data?: number[]; parameters?: { binary_data_size: number } }

function metadata(m: ModelSummary) {
  const { height, width, channels } = m.image;
  const inputs: TensorMetadata[] = [{ name: INPUT, datatype: 'UINT8', shape: [-1, height, width, channels] }];
  const outputs: TensorMetadata[] = [
    { name: 'bits_per_dim', datatype: 'FP64', shape: [-1] },
    { name: 'nats', datatype: 'FP64', shape: [-1] },
    { name: 'stage_bits_per_dim', datatype: 'FP64', shape: [-1, m.stages.length] },
  ];
  return { name: m.name, versions: [m.version], platform: 'onnxruntime_onnx', inputs, outputs };
}

/** The JSON header and what follows it (binary tensors), by Inference-Header-Content-Length. */
function splitBody(request: FastifyRequest): { header: InferRequest; binary: Buffer } {
  // no body at all (and so no Content-Type, which would have chosen a parser): nothing to read
  const body = request.body as Buffer | undefined;
  if (!body?.length) throw new BadRequestError('the inference request has no body: send a JSON object (or a JSON header and binary tensor data)');
  const declared = request.headers[HEADER_LENGTH];
  let headerBytes: Buffer = body;
  let binary: Buffer = Buffer.alloc(0);
  if (declared !== undefined) {
    const n = Number(declared);
    if (!Number.isInteger(n) || n < 2 || n > body.length) {
      throw new BadRequestError(`${HEADER_LENGTH} is ${String(declared)}: it must be the JSON header's length, within the body's ${body.length} bytes`);
    }
    headerBytes = body.subarray(0, n);
    binary = body.subarray(n);
  } else if (request.mediaType === 'application/octet-stream') {
    // (any other type, or none, without the header: the whole body is the JSON request, as Triton reads it)
    throw new BadRequestError(`a ${request.mediaType} body needs the ${HEADER_LENGTH} header (binary tensor data extension)`);
  }
  let header: unknown;
  try {
    header = JSON.parse(headerBytes.toString('utf8'));
  } catch (err) {
    throw new BadRequestError(`the inference request is not valid JSON: ${(err as Error).message}`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new BadRequestError('the inference request must be a JSON object');
  return { header: header as InferRequest, binary };
}

/** A tensor's values, flat or nested up to its rank deep, in row-major order: walked with a stack of
 * its own, so a body of a million nested brackets is a 400, not a blown call stack. Nested, it must
 * be rectangular and fit the shape: every list at one depth as long as the others, numbers and lists
 * not mixed at one depth, the outer lists as long as the shape's first dimensions and the innermost
 * holding the rest ([batch][H][W][C], [batch][H*W*C] or flat); a ragged nesting is not guessed at. */
function flatten(data: unknown[], shape: number[], field: string): unknown[] {
  const rank = shape.length;
  const out: unknown[] = [];
  const lengths: number[] = [];     // the length of every list at each depth
  const lists: boolean[] = [];      // whether the items at each depth are lists
  const enter = (list: unknown[], depth: number) => {
    if (lengths[depth] === undefined) lengths[depth] = list.length;
    else if (lengths[depth] !== list.length) throw new BadRequestError(`${field}: its lists at depth ${depth} differ in length (${lengths[depth]} and ${list.length}); a nested tensor is rectangular`);
  };
  enter(data, 0);
  const stack: { list: unknown[]; at: number }[] = [{ list: data, at: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1];
    if (top.at === top.list.length) {
      stack.pop();
      continue;
    }
    const v = top.list[top.at++];
    const depth = stack.length - 1;
    const isList = Array.isArray(v);
    if (lists[depth] === undefined) lists[depth] = isList;
    else if (lists[depth] !== isList) throw new BadRequestError(`${field} mixes numbers and lists at depth ${depth}`);
    if (!isList) out.push(v);
    else if (stack.length >= rank) throw new BadRequestError(`${field} is nested deeper than the tensor's ${rank} dimensions`);
    else {
      enter(v, depth + 1);
      stack.push({ list: v, at: 0 });
    }
  }
  const inner = lengths.length - 1;   // the depth of the lists that hold the numbers
  const want = [...shape.slice(0, inner), shape.slice(inner).reduce((a, b) => a * b, 1)];
  // flat data is counted by the caller ('has 3 values; [1, 28, 28, 1] is 784')
  if (inner > 0 && lengths.some((n, k) => n !== want[k])) {
    throw new BadRequestError(`${field} is nested as [${lengths.join('][')}], which does not fit the shape [${shape.join(', ')}] (nest it as [${want.join('][')}], or send it flat)`);
  }
  return out;
}

/** The images of the request's one input, checked against the model. */
function readImages(req: InferRequest, binary: Buffer, m: ModelSummary): RawImage[] {
  const { height, width, channels } = m.image;
  if (!Array.isArray(req.inputs) || req.inputs.length !== 1) throw new BadRequestError(`inputs: one input named '${INPUT}' is expected`);
  const input = req.inputs[0] as RequestInput;
  if (input?.name !== INPUT) throw new BadRequestError(`inputs/0/name is ${JSON.stringify(input?.name)}: the model's input is '${INPUT}'`);
  if (input.datatype !== 'UINT8') throw new BadRequestError(`inputs/0/datatype is ${JSON.stringify(input.datatype)}: '${INPUT}' is UINT8 (8-bit pixel values)`);
  const shape = input.shape;
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new BadRequestError(`inputs/0/shape must be [batch, ${height}, ${width}, ${channels}] (positive integers)`);
  }
  const [batch, h, w, c] = shape as number[];
  if (h !== height || w !== width || c !== channels) {
    throw new UnprocessableError(`inputs/0/shape is [${shape.join(', ')}]: model '${m.name}' takes [batch, ${height}, ${width}, ${channels}]`);
  }
  if (batch > MAX_BATCH_IMAGES) throw new BadRequestError(`inputs/0/shape: a batch of ${batch}; at most ${MAX_BATCH_IMAGES} images per request`);
  const size = height * width * channels;
  let values: Uint8Array;
  const binarySize = parametersOf(input.parameters, 'inputs/0/parameters')?.binary_data_size;
  if (binarySize !== undefined) {
    if (!Number.isInteger(binarySize)) throw new BadRequestError(`inputs/0/parameters/binary_data_size must be an integer (a number of bytes), not ${JSON.stringify(binarySize)}`);
    if (binarySize !== batch * size) {
      throw new BadRequestError(`inputs/0/parameters/binary_data_size is ${String(binarySize)}: [${shape.join(', ')}] UINT8 is ${batch * size} bytes`);
    }
    if (binary.length !== binarySize) throw new BadRequestError(`the body has ${binary.length} bytes after the JSON header; binary_data_size says ${binarySize}`);
    values = Uint8Array.from(binary);
  } else {
    if (binary.length) throw new BadRequestError(`the body has ${binary.length} bytes after the JSON header that no input claims (binary_data_size)`);
    if (!Array.isArray(input.data)) throw new BadRequestError('inputs/0/data must be an array (flat or nested), or the tensor sent as binary data');
    const flat = flatten(input.data as unknown[], shape as number[], 'inputs/0/data');
    if (flat.length !== batch * size) throw new BadRequestError(`inputs/0/data has ${flat.length} values; [${shape.join(', ')}] is ${batch * size}`);
    values = new Uint8Array(flat.length);
    for (let i = 0; i < flat.length; i++) {
      const v = flat[i];
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 255) throw new BadRequestError(`inputs/0/data: value ${i} is ${JSON.stringify(v)}, not a UINT8`);
      values[i] = v as number;
    }
  }
  return Array.from({ length: batch }, (_, b) => ({ height, width, channels, data: values.subarray(b * size, (b + 1) * size) }));
}

/** Which outputs, each as JSON or binary: all by default; request and output parameters decide. */
function requestedOutputs(req: InferRequest, params: Record<string, unknown> | undefined): { name: OutputName; binary: boolean }[] {
  const allBinary = flag(params, 'binary_data_output', 'parameters') ?? false;
  if (req.outputs !== undefined && !Array.isArray(req.outputs)) throw new BadRequestError(`outputs is ${JSON.stringify(req.outputs)}: it must be an array`);
  // none asked for is all of them, as Triton answers (its Python client sends [] for infer(..., outputs=[]))
  if (req.outputs === undefined || !req.outputs.length) return OUTPUTS.map((name) => ({ name, binary: allBinary }));
  return (req.outputs as RequestOutput[]).map((o, i) => {
    if (!OUTPUTS.includes(o?.name as OutputName)) throw new BadRequestError(`outputs/${i}/name is ${JSON.stringify(o?.name)}: the outputs are ${OUTPUTS.join(', ')}`);
    const b = flag(parametersOf(o.parameters, `outputs/${i}/parameters`), 'binary_data', `outputs/${i}/parameters`);
    return { name: o.name as OutputName, binary: b ?? allBinary };
  });
}

const TensorMetadataSchema = Type.Object({ name: Type.String(), datatype: Type.String(), shape: Type.Array(Type.Integer()) });
const ModelMetadataSchema = Type.Object({
  name: Type.String(), versions: Type.Array(Type.String()), platform: Type.String(),
  inputs: Type.Array(TensorMetadataSchema), outputs: Type.Array(TensorMetadataSchema),
});
/** The documented example's image: EXAMPLE_PNG's 784 values, for Swagger UI's "Try it out". */
const examplePixels = [...(decodePlainPng(Buffer.from(EXAMPLE_PNG, 'base64'), 784)?.data ?? [])];
const InferRequestSchema = Type.Object({
  id: Type.Optional(Type.String()),
  parameters: Type.Optional(Type.Object({
    binary_data_output: Type.Optional(Type.Boolean()),
    timeout: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_TIMEOUT_US, description: 'this request\'s deadline in microseconds, queue included (Triton\'s schedule-policy parameter; capped by REQUEST_TIMEOUT_MS, rounded up to whole ms; 0 or absent: REQUEST_TIMEOUT_MS)' })),
  })),
  inputs: Type.Array(Type.Object({
    name: Type.Literal(INPUT),
    shape: Type.Array(Type.Integer(), { minItems: 4, maxItems: 4, description: '[batch, H, W, C]' }),
    datatype: Type.Literal('UINT8'),
    data: Type.Optional(Type.Array(Type.Unknown(), { description: 'the 8-bit values, row-major, flat or nested' })),
    parameters: Type.Optional(Type.Object({ binary_data_size: Type.Optional(Type.Integer({ description: 'sent as bytes after the JSON header instead' })) })),
  }), { minItems: 1, maxItems: 1 }),
  outputs: Type.Optional(Type.Array(Type.Object({
    name: Type.Union(OUTPUTS.map((o) => Type.Literal(o))),
    parameters: Type.Optional(Type.Object({ binary_data: Type.Optional(Type.Boolean()) })),
  }))),
}, { examples: [{ inputs: [{ name: INPUT, shape: [1, 28, 28, 1], datatype: 'UINT8', data: examplePixels }] }] });
const InferResponseSchema = Type.Object({
  model_name: Type.String(), model_version: Type.String(), id: Type.Optional(Type.String()),
  outputs: Type.Array(Type.Object({
    name: Type.String(), datatype: Type.String(), shape: Type.Array(Type.Integer()),
    data: Type.Optional(Type.Array(Type.Number())),
    parameters: Type.Optional(Type.Object({ binary_data_size: Type.Integer() })),
  })),
});
const NameParam = Type.String({ maxLength: 64, description: 'a model name, as GET /models lists it', examples: ['mu-fmnist'] });
const VersionParam = Type.String({ maxLength: 64, description: "the model's version (GET /models/{name}: version)" });
type Params = { name: string; version?: string };

const TAG = 'open-inference-protocol';
/** type/subtype, then anything (parameters): RFC 9110's token characters on both sides */
const MEDIA_TYPE = /^\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*(;|$)/;

export default async function v2Routes(app: FastifyInstance, { config, version }: { config: Config; version: string }) {
  // Bodies are read as bytes: a JSON header, perhaps followed by binary tensors. Whatever the
  // Content-Type, or none: Triton's own Python client and `requests.post(data=...)` send none, and
  // the protocol tells the parts apart by Inference-Header-Content-Length, not by media type.
  app.removeContentTypeParser('application/json');
  const asBytes = (_req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: Buffer) => void) => done(null, body);
  app.addContentTypeParser(['application/json', 'application/octet-stream'], { parseAs: 'buffer', bodyLimit: config.BODY_LIMIT }, asBytes);
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.BODY_LIMIT }, asBytes);
  // A Content-Type that is not even type/subtype (`foo`, `;`) would be refused (415) before any
  // parser: here it says nothing the protocol reads, so it is dropped and the body read as above.
  app.addHook('onRequest', async (request) => {
    const type = request.headers['content-type'];
    if (type !== undefined && !MEDIA_TYPE.test(type)) delete request.headers['content-type'];
  });

  app.get('/v2', {
    schema: {
      tags: [TAG], summary: 'server metadata',
      response: { 200: Type.Object({ name: Type.String(), version: Type.String(), extensions: Type.Array(Type.String()) }) },
    },
  }, async () => ({ name: 'spn-serve', version, extensions: ['binary_tensor_data'] }));

  // Health as the protocol has it: 200 true, 400 false. A 400 is also what any route answers to a
  // request that is not valid (a path parameter too long, no Host header): in the error shape.
  const notReady = <T extends TSchema>(body: T) =>
    Type.Union([body, Type.Ref(ErrorBody)], { description: 'not ready (`ready: false`), or the request is not valid (an error)' });
  app.get('/v2/health/live', { schema: { tags: [TAG], summary: 'the server is live', response: { 200: Type.Object({ live: Type.Boolean() }) } } },
    async () => ({ live: true }));
  app.get('/v2/health/ready', {
    schema: { tags: [TAG], summary: 'the models are loaded (400 while not)', response: { 200: Type.Object({ ready: Type.Boolean() }), 400: notReady(Type.Object({ ready: Type.Boolean() })) } },
  }, async (_request, reply) => {
    const ready = app.lifecycle.state === 'ready';
    return reply.code(ready ? 200 : 400).send({ ready });
  });

  /** The model the path names, at the version it names (its `version` digest), if any. */
  const model = (p: Params): ModelSummary => {
    const m = app.runtime.model(p.name);
    if (!m) throw new UnknownModelError(p.name);
    if (p.version !== undefined && p.version !== m.version) throw new UnknownVersionError(`model '${p.name}' has no version '${p.version}' (the loaded one is '${m.version}')`);
    return m;
  };

  const paths = [
    { prefix: '/v2/models/:name', Params: Type.Object({ name: NameParam }) },
    { prefix: '/v2/models/:name/versions/:version', Params: Type.Object({ name: NameParam, version: VersionParam }) },
  ];
  for (const { prefix, Params } of paths) {
    app.get<{ Params: Params }>(prefix, {
      config: { apiKey: true },
      schema: { tags: [TAG], summary: 'model metadata: its input and outputs', security: API_KEY_SECURITY, params: Params, response: { 200: ModelMetadataSchema, ...errors(400, 401, 404, 503) } },
    }, async (request) => metadata(model(request.params)));

    app.get<{ Params: Params }>(`${prefix}/ready`, {
      config: { apiKey: true },
      schema: {
        tags: [TAG], summary: 'the model is ready (400 while the server is not)', security: API_KEY_SECURITY, params: Params,
        response: { 200: Type.Object({ name: Type.String(), ready: Type.Boolean() }), 400: notReady(Type.Object({ name: Type.String(), ready: Type.Boolean() })), ...errors(401, 404) },
      },
    }, async (request, reply) => {
      if (app.lifecycle.state !== 'ready') return reply.code(400).send({ name: request.params.name, ready: false });
      return { name: model(request.params).name, ready: true };
    });

    app.post<{ Params: Params }>(`${prefix}/infer`, {
      config: { modelWork: true, apiKey: true },
      // the body is bytes (parsed in the handler); its schema is for the document
      validatorCompiler: () => () => true,
      schema: {
        tags: [TAG],
        summary: 'likelihood of a batch of raw images (the model\'s input `image`, UINT8 [batch, H, W, C])',
        description: `Answers \`bits_per_dim\`, \`nats\` (FP64 [batch]) and \`stage_bits_per_dim\` (FP64 [batch, stages]), as /likelihood computes them; \`outputs\` picks some. Tensors as JSON (flat or nested arrays) or as binary data after the JSON header (\`Inference-Header-Content-Length\`; \`binary_data_size\` on the input, \`binary_data\` on an output or \`binary_data_output\` on the request). At most ${MAX_BATCH_IMAGES} images.`,
        security: API_KEY_SECURITY,
        params: Params,
        body: { content: { 'application/json': { schema: InferRequestSchema }, 'application/octet-stream': { schema: { format: 'binary' } } } },
        response: { 200: InferResponseSchema, ...errors(400, 401, 404, 413, 422, 429, 500, 503, 504) },
      },
    }, async (request, reply) => infer(request, reply));
  }

  async function infer(request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) {
    const m = model(request.params);
    const { header, binary } = splitBody(request);
    const images = readImages(header, binary, m);
    const params = parametersOf(header.parameters, 'parameters');
    const wanted = requestedOutputs(header, params);
    if (header.id !== undefined && typeof header.id !== 'string') throw new BadRequestError('id must be a string');
    const timeoutMs = requestedTimeoutMs(params);
    const { ac, finish } = requestAbort(app.lifecycle, reply, effectiveTimeout(config.REQUEST_TIMEOUT_MS, timeoutMs));
    let r;
    try {
      r = await app.runtime.likelihoodBatch({ model: m.name, images, signal: ac.signal });
    } catch (err) {
      throw ac.signal.aborted ? ac.signal.reason : err;
    } finally {
      finish();
    }
    app.metrics.queueTime.observe({ model: m.name, kind: 'likelihood' }, r.timings.queueMs / 1000);
    const batch = images.length;
    const values: Record<OutputName, { shape: number[]; data: number[] }> = {
      bits_per_dim: { shape: [batch], data: r.results.map((x) => x.bitsPerDim) },
      nats: { shape: [batch], data: r.results.map((x) => x.nats) },
      stage_bits_per_dim: { shape: [batch, m.stages.length], data: r.results.flatMap((x) => x.stages.map((s) => s.bitsPerDim)) },
    };
    const blobs: Buffer[] = [];
    const outputs: ResponseOutput[] = wanted.map(({ name, binary: asBinary }) => {
      const { shape, data } = values[name];
      if (!asBinary) return { name, datatype: 'FP64', shape, data };
      const bytes = Buffer.alloc(data.length * 8);
      data.forEach((v, i) => bytes.writeDoubleLE(v, i * 8));
      blobs.push(bytes);
      return { name, datatype: 'FP64', shape, parameters: { binary_data_size: bytes.length } };
    });
    const body = { model_name: m.name, model_version: m.version, ...(header.id !== undefined ? { id: header.id as string } : {}), outputs };
    if (!blobs.length) return reply.type('application/json; charset=utf-8').send(body);
    const json = Buffer.from(JSON.stringify(body));
    return reply.type('application/octet-stream').header(HEADER_LENGTH, String(json.length)).send(Buffer.concat([json, ...blobs]));
  }
}
