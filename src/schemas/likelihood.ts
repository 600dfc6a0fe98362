import { Type, type Static } from '@sinclair/typebox';
import { Base64Png, Convert, EXAMPLE_PNG, ImageInput, ModelName, TimeoutMs } from './common.js';

const perPixel = Type.Boolean({ default: false, description: 'also answer the bits of each pixel as a PNG heat map' });
const { resize, grayscale, rgb } = Convert.properties;

const base64Image = Type.String({ minLength: 1, description: 'a PNG, JPEG or WebP image, base64' });
/** The options a JSON body carries, for one image or a batch. */
const jsonOptions = {
  model: Type.Optional(ModelName),
  // no default here: present, a JSON field wins over the query's; absent, the query's applies
  perPixel: Type.Optional(Type.Boolean({ description: 'also answer the bits of each pixel as a PNG heat map; absent: the query\'s, else no' })),
  timeoutMs: Type.Optional(TimeoutMs),
  convert: Type.Optional(Convert),
};

export const LikelihoodJsonBody = Type.Object({ image: base64Image, ...jsonOptions },
  { additionalProperties: false, examples: [{ image: EXAMPLE_PNG, model: 'mu-fmnist', perPixel: false }] });
export type LikelihoodJsonBody = Static<typeof LikelihoodJsonBody>;

/** Options for raw-image and multipart bodies (a JSON body carries its own, which win). */
export const LikelihoodQuery = Type.Object(
  {
    model: Type.Optional(ModelName),
    perPixel: Type.Optional(perPixel),
    timeoutMs: Type.Optional(TimeoutMs),
    resize: Type.Optional(resize),
    grayscale: Type.Optional(grayscale),
    rgb: Type.Optional(rgb),
  },
  { additionalProperties: false },
);
export type LikelihoodQuery = Static<typeof LikelihoodQuery>;

/** Raw image bodies: the schema documents them; Buffers pass (format applies to strings only). */
export const BinaryImage = Type.Unsafe<Buffer>({ format: 'binary', description: 'the image file (PNG, JPEG or WebP)' });

/** The options of a multipart form, as fields (strings, coerced). No defaults: on /likelihood the
 * query's options apply where a field is absent. */
const formOptions = {
  model: Type.Optional(ModelName),
  perPixel: Type.Optional(Type.Boolean()),
  timeoutMs: Type.Optional(TimeoutMs),
  resize: Type.Optional(Type.Boolean()),
  grayscale: Type.Optional(Type.Boolean()),
  rgb: Type.Optional(Type.Boolean()),
};

/** The multipart form, as @fastify/multipart attaches it: the file as a Buffer, fields as strings
 * (coerced). A field it does not know is refused, named, as in a JSON body or the query string. */
export const LikelihoodMultipart = Type.Object({ image: BinaryImage, ...formOptions }, { additionalProperties: false });

/** What one image's score holds, alone or in a batch. */
const imageScore = {
  bitsPerDim: Type.Number({ description: 'NLL in bits over H*W*C' }),
  nats: Type.Number(),
  bits: Type.Number(),
  stages: Type.Array(
    Type.Object({
      stage: Type.String(),
      nats: Type.Number(),
      bits: Type.Number(),
      bitsPerDim: Type.Number({ description: "this stage's bits over the whole image's H*W*C (stages add up to the total)" }),
      slices: Type.Array(Type.Object({ slice: Type.Integer(), offset: Type.Tuple([Type.Integer(), Type.Integer()]), bits: Type.Number() })),
    }),
  ),
  perPixel: Type.Optional(
    Type.Object({
      png: { ...Base64Png, description: 'heat map of bits per pixel (summed over channels and stages): dark is cheap, bright is costly' },
      width: Type.Integer(),
      height: Type.Integer(),
      minBits: Type.Number({ description: 'bits of the darkest colour' }),
      maxBits: Type.Number({ description: 'bits of the brightest colour' }),
    }),
  ),
  input: ImageInput,
};
const timings = Type.Object({ queueMs: Type.Number(), totalMs: Type.Number() });

export const LikelihoodResult = Type.Object({ model: Type.String(), ...imageScore, timings }, { $id: 'LikelihoodResult' });
export type LikelihoodResult = Static<typeof LikelihoodResult>;

export const MAX_BATCH_IMAGES = 64;

/** The batch as a multipart form: one `images` file part per image, in order, and the options as fields. */
export const LikelihoodBatchMultipart = Type.Object({
  images: Type.Array(BinaryImage, { minItems: 1, maxItems: MAX_BATCH_IMAGES, description: 'one file part named images per image, in order' }),
  ...formOptions,
}, { additionalProperties: false });
export type LikelihoodBatchMultipart = Static<typeof LikelihoodBatchMultipart>;

export const LikelihoodBatchBody = Type.Object(
  { images: Type.Array(base64Image, { minItems: 1, maxItems: MAX_BATCH_IMAGES }), ...jsonOptions },
  { additionalProperties: false, examples: [{ images: [EXAMPLE_PNG, EXAMPLE_PNG], model: 'mu-fmnist' }] },
);
export type LikelihoodBatchBody = Static<typeof LikelihoodBatchBody>;

export const LikelihoodBatchResult = Type.Object(
  {
    model: Type.String(),
    count: Type.Integer(),
    bitsPerDim: Type.Number({ description: 'the mean of the images\' bits/dim' }),
    results: Type.Array(Type.Object(imageScore), { description: "per image, in the request's order" }),
    timings,
  },
  { $id: 'LikelihoodBatchResult' },
);
export type LikelihoodBatchResult = Static<typeof LikelihoodBatchResult>;
