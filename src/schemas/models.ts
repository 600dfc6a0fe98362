import { Type, type Static } from '@sinclair/typebox';
import { ModelName } from './common.js';

const Nullable = <T extends ReturnType<typeof Type.Number>>(t: T) => Type.Union([t, Type.Null()]);

export const StageSummary = Type.Object({
  name: Type.String(),
  role: Type.String({ examples: ['small-image decoder', 'size upscaler', 'depth upscaler'] }),
  bits: Type.Integer({ description: 'bits of each sub-pixel this stage generates' }),
  shift: Type.Integer({ description: 'where those bits sit in the final 8-bit value' }),
  firstSlice: Type.Integer(),
  lastSlice: Type.Integer(),
  testBitsPerDim: Nullable(Type.Number({ description: "this stage's test NLL, bits over the whole image's H*W*C" })),
});

export const ModelSummary = Type.Object(
  {
    name: Type.String(),
    version: Type.String({ description: "the model's identity: a digest of the graphs' sha256s and of the slice and channel orders and stages that feed them; it changes when the weights do, or anything else that changes what a seed samples" }),
    description: Type.String(),
    image: Type.Object({
      height: Type.Integer(),
      width: Type.Integer(),
      channels: Type.Integer(),
      channelOrder: Type.Array(Type.String(), {
        description: 'the order the model generates a pixel\'s channels in; images and tensors sent and returned hold theirs as R, G, B (or gray) whatever it is',
      }),
      bitDepth: Type.Integer(),
    }),
    subscaleFactor: Type.Integer(),
    sliceOrder: Type.Array(Type.Tuple([Type.Integer(), Type.Integer()]), {
      description: 'the offset [row, column] of each slice in the order the slices are generated: slice k holds the pixels (row + S*r, column + S*c)',
      examples: [[[0, 0], [0, 1], [1, 0], [1, 1]]],
    }),
    stages: Type.Array(StageSummary),
    testBitsPerDim: Nullable(Type.Number({ description: 'test-set NLL over all stages, bits per dimension' })),
    parameters: Type.Integer(),
    provider: Type.Union([Type.Literal('cuda'), Type.Literal('cpu')], { description: 'execution provider in use' }),
    providerNote: Type.Optional(Type.String({ description: 'why the provider is not the one asked for' })),
    default: Type.Boolean({ description: 'used when a request names no model' }),
  },
  { $id: 'ModelSummary' },
);
export type ModelSummary = Static<typeof ModelSummary>;

export const ModelList = Type.Object({
  default: Type.String(),
  models: Type.Array(Type.Ref(ModelSummary)),
});

export const ModelParams = Type.Object({ name: ModelName });
export type ModelParams = Static<typeof ModelParams>;
