import { Type, type Static } from '@sinclair/typebox';
import { Base64Png, Convert, ImageInput, ModelName, TimeoutMs } from './common.js';

export const MAX_SEED = 2 ** 32 - 1;

export const SampleBody = Type.Object(
  {
    model: Type.Optional(ModelName),
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: 16, default: 1, description: 'samples to draw' })),
    seed: Type.Optional(
      Type.Integer({ minimum: 0, maximum: MAX_SEED, description: 'random seed; drawn at random when absent, and always echoed. The same seed gives the same images.' }),
    ),
    temperature: Type.Optional(Type.Number({ minimum: 0.05, maximum: 2, default: 1, description: 'softmax temperature of every sub-pixel' })),
    timeoutMs: Type.Optional(TimeoutMs),
    stopAfter: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'name of the stage to stop after (default: the last stage)' })),
    condition: Type.Optional(
      Type.Object(
        {
          mode: Type.Union([Type.Literal('upscale'), Type.Literal('add-depth'), Type.Literal('complete')], {
            description:
              "upscale: keep the image's first slice at the small image's depth, generate the rest; add-depth: keep its high bits, generate the low bits; complete: keep its first `slices` slices in subscale order, generate the rest",
          }),
          image: Type.String({ minLength: 1, description: "a PNG, JPEG or WebP image, base64: of the model's size and channels, or converted to them as `convert` asks" }),
          slices: Type.Optional(Type.Integer({ minimum: 1, description: 'with mode complete, and only there (required): how many slices to keep, 1 to S*S - 1' })),
          convert: Type.Optional(Convert),
        },
        { additionalProperties: false },
      ),
    ),
  },
  // the example Swagger UI's "Try it out" starts from: a request the server accepts
  { additionalProperties: false, examples: [{ model: 'mu-fmnist', count: 2, seed: 7, temperature: 1 }] },
);
/** Optional to a client, never absent in a handler: Ajv (Fastify's useDefaults) writes their defaults in. */
type Defaulted = { count: number; temperature: number };
export type SampleBody = Static<typeof SampleBody> & Defaulted;

/** GET /sample's query string: the body's options but `condition` (an image does not fit a URL). */
export const SampleQuery = Type.Omit(SampleBody, ['condition'], { additionalProperties: false });
export type SampleQuery = Static<typeof SampleQuery> & Defaulted;

const Timings = Type.Object({
  queueMs: Type.Number({ description: 'waiting for a place' }),
  firstSliceMs: Type.Number({ description: 'from arrival to the first generated slice' }),
  totalMs: Type.Number(),
});

export const SampleResult = Type.Object(
  {
    model: Type.String(),
    seed: Type.Integer(),
    count: Type.Integer(),
    temperature: Type.Number(),
    stoppedAfter: Type.String({ description: 'the last stage that ran' }),
    images: Type.Array(
      Type.Object({
        png: Base64Png,
        width: Type.Integer(),
        height: Type.Integer(),
        channels: Type.Integer(),
        bitsPerDim: Type.Number({ description: 'NLL of this image under the stages that ran, bits per dimension' }),
      }),
    ),
    timings: Timings,
    condition: Type.Optional(
      Type.Object(
        { mode: Type.String(), input: ImageInput },
        { description: 'with a `condition`: its mode, and the given image as it came and what was done to it' },
      ),
    ),
  },
  { $id: 'SampleResult', description: 'The JSON answer, and the data of the final `done` event' },
);
export type SampleResult = Static<typeof SampleResult>;

export const SliceEventData = Type.Object(
  {
    sample: Type.Integer({ description: 'index of the sample in the request, from 0' }),
    stage: Type.String(),
    slice: Type.Integer({ description: 'index of the slice in subscale order' }),
    offset: Type.Tuple([Type.Integer(), Type.Integer()], { description: "the slice's (row, column) offset in the image" }),
    bits: Type.Integer({ description: "the stage's depth; the slice PNG stretches 0..2^bits-1 to 0..255" }),
    slicePng: { ...Base64Png, description: 'the slice, (H/S)x(W/S), its values stretched to 8 bits for display' },
    imagePng: { ...Base64Png, description: 'the image so far at 8 bits (bits not yet generated are 0)' },
    elapsedMs: Type.Number(),
  },
  { $id: 'SliceEvent', description: 'data of an `event: slice`, one per generated slice' },
);
export type SliceEventData = Static<typeof SliceEventData>;

export const StageEventData = Type.Object(
  { sample: Type.Integer(), stage: Type.String(), elapsedMs: Type.Number() },
  { $id: 'StageEvent', description: 'data of an `event: stage`, when a stage of a sample completes' },
);
export type StageEventData = Static<typeof StageEventData>;

export const EVENT_STREAM_DESCRIPTION = [
  'With `Accept: text/event-stream`: Server-Sent Events.',
  '`event: slice` (data: SliceEvent) for each generated slice;',
  '`event: stage` (data: StageEvent) when a stage of a sample completes;',
  '`event: done` (data: SampleResult) last;',
  '`event: error` (data: ErrorBody) if the request fails after the stream began, and then the stream ends.',
  'Comments (`: keep-alive`) are sent while nothing else is; the stream opens with `retry: 1000`, so an EventSource reconnects 1 s after a drop.',
  'Events have ids `<seed>:1`, `<seed>:2`, ... and `end` for the last (`done` or `error`). An EventSource that reconnects to GET /sample after the end (sending `Last-Event-ID: end`) gets 204 and stops, instead of sampling again; one that reconnects in the middle (`Last-Event-ID: <seed>:<n>`, a dropped connection) gets the rest of the same stream, from event n + 1 (the seed fixes the samples; a query that names another seed starts a new stream). POST resumes the same way for fetch-based clients that retry with the header (the body naming no seed or the same one), and ignores `end`.',
].join(' ');
