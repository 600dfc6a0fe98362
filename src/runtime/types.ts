// The model runtime's public contract. The HTTP layer depends on this file and nothing deeper.

export type ExecutionProvider = 'cuda' | 'cpu';
export type ProviderChoice = ExecutionProvider | 'auto';

/** An 8-bit image, pixels interleaved (HWC), channels in the model's declared order. */
export interface RawImage {
  height: number;
  width: number;
  channels: number;
  data: Uint8Array;
}

export interface StageSummary {
  name: string;
  role: string;
  /** bits of each sub-pixel this stage generates, and where they sit in the final value */
  bits: number;
  shift: number;
  firstSlice: number;
  lastSlice: number;
  testBitsPerDim: number | null;
}

export interface ModelSummary {
  name: string;
  /** the model's identity: a digest of the graphs' sha256s, slice and channel orders and stages (it changes when any does) */
  version: string;
  description: string;
  image: { height: number; width: number; channels: number; channelOrder: string[]; bitDepth: number };
  subscaleFactor: number;
  /** the offset [i, j] of each slice in the order they are generated: slice k is x[i::S, j::S] */
  sliceOrder: [number, number][];
  stages: StageSummary[];
  /** test-set NLL over all stages, bits per dimension (denominator H*W*C) */
  testBitsPerDim: number | null;
  parameters: number;
  provider: ExecutionProvider;
  /** why the provider is not the one asked for, when it is not */
  providerNote?: string;
}

/** How a given image conditions sampling. */
export type Condition =
  /** size upscaler: the image's first slice (at the small-image depth) is kept, the rest generated */
  | { mode: 'upscale'; image: RawImage }
  /** depth upscaler: the image's high bits are kept, the low bits generated */
  | { mode: 'add-depth'; image: RawImage }
  /** keep the image's first `slices` slices in subscale order (all stages' bits), generate the rest */
  | { mode: 'complete'; image: RawImage; slices: number };

export interface SampleRequest {
  model: string;
  count: number;
  seed: number;
  temperature: number;
  /** name of the stage to stop after (default: the last) */
  stopAfter?: string;
  condition?: Condition;
  signal?: AbortSignal;
}

export interface SliceEvent {
  type: 'slice';
  sample: number;
  stage: string;
  /** slice index in subscale order, and its offset (row, column) in the image */
  slice: number;
  offset: [number, number];
  /** the slice's values at this stage's depth, HWC, (H/S) x (W/S) x C */
  values: Uint8Array;
  sliceHeight: number;
  sliceWidth: number;
  /** the image so far at 8 bits (bits not yet generated are 0) */
  image: RawImage;
  elapsedMs: number;
}

export interface StageEvent {
  type: 'stage';
  sample: number;
  stage: string;
  elapsedMs: number;
}

export interface DoneEvent {
  type: 'done';
  images: RawImage[];
  seed: number;
  /** NLL of each final image under the model's stages that ran, bits per dimension */
  bitsPerDim: number[];
  timings: { queueMs: number; firstSliceMs: number; totalMs: number };
  stoppedAfter: string;
}

export type SampleEvent = SliceEvent | StageEvent | DoneEvent;

export interface LikelihoodRequest {
  model: string;
  image: RawImage;
  perPixel?: boolean;
  signal?: AbortSignal;
}

/** Several images scored in one request: one place in the queue, one worker, their slices batched together. */
export interface LikelihoodBatchRequest {
  model: string;
  images: RawImage[];
  perPixel?: boolean;
  signal?: AbortSignal;
}

export interface SliceScore {
  slice: number;
  offset: [number, number];
  bits: number;
}

export interface StageScore {
  stage: string;
  nats: number;
  bits: number;
  /** same denominator as the total: H*W*C */
  bitsPerDim: number;
  slices: SliceScore[];
}

export interface LikelihoodResult {
  model: string;
  nats: number;
  bits: number;
  bitsPerDim: number;
  stages: StageScore[];
  /** bits of each pixel (summed over channels and stages), row-major H x W */
  perPixelBits?: Float32Array;
  timings: { queueMs: number; totalMs: number };
}

export interface LikelihoodBatchResult {
  model: string;
  /** per image, in the request's order */
  results: Omit<LikelihoodResult, 'model' | 'timings'>[];
  timings: { queueMs: number; totalMs: number };
}

/** Closed sets for metric labels. */
export type GraphKind = 'conditioning' | 'decoder_row' | 'decoder_pixel' | 'sample_row' | 'score' | 'score_context';

/** Ticks (decoder steps) a stepping group keeps the turn in a worker's engine (engine.ts), at
 * most: a turn also ends when the group empties, as at the end of a slice when its lanes are in
 * step. 56 rows is four 14-row slices of the shipped models. 1: every group every tick. */
export const DEFAULT_QUANTUM = 56;

/** How the slice decoder samples: one run per row (its pixel steps unrolled in the graph), or one run per pixel. */
export type DecodeMode = 'row' | 'pixel';

/** Why the runtime failed a request (spn_runtime_failures_total's reasons). */
export const RUNTIME_FAILURE_REASONS = ['overloaded', 'cancelled', 'timeout', 'bad_input', 'unavailable', 'internal'] as const;
export type RuntimeFailureReason = (typeof RUNTIME_FAILURE_REASONS)[number];

/** Hooks the runtime calls so that the app can keep metrics without the runtime knowing HTTP. */
export interface RuntimeObserver {
  /** a batched graph run: its duration, its lanes, and when it ended (ms since the epoch, high resolution) */
  graphRun?(model: string, stage: string, graph: GraphKind, seconds: number, batch: number, endMs: number): void;
  /** a request reached its worker's engine (its lanes join the next tick), on graphRun's clock */
  arrived?(model: string, lanes: number, atMs: number): void;
  queueChanged?(queued: number, running: number): void;
  generated?(model: string, what: 'samples' | 'slices' | 'pixels', n: number): void;
  scored?(model: string, n: number): void;
  failed?(reason: RuntimeFailureReason): void;
  /** an inference worker exited unasked (crashed); a replacement is being started */
  workerExited?(code: number): void;
}

export interface RuntimeOptions {
  modelsDir: string;
  /** the models to load, by name; default: every model under modelsDir */
  models?: string[];
  provider: ProviderChoice;
  workers: number;
  /** intra-op threads per worker session */
  threads: number;
  /** requests waiting for a place, beyond those running */
  maxQueue: number;
  /** requests that run at once (share batched runs) */
  maxRunning: number;
  /** default 'row' */
  decode?: DecodeMode;
  /** ticks a stepping group (sample_row, decoder_pixel runs) keeps the turn, at most, before the
   * next stage's group gets it (sooner when the group empties, as at a slice's end); 1 runs every
   * group every tick. Default DEFAULT_QUANTUM. */
  quantum?: number;
  observer?: RuntimeObserver;
  /** aborting it while the models load stops the loading: each worker stops after the graph it is
   * loading, and createRuntime rejects with a LoadCancelledError (a shutdown need not wait for a
   * load that can take minutes on CUDA) */
  signal?: AbortSignal;
  logger?: { info(o: object | string, msg?: string): void; warn(o: object | string, msg?: string): void; error(o: object | string, msg?: string): void };
}

export interface Runtime {
  readonly ready: boolean;
  models(): ModelSummary[];
  model(name: string): ModelSummary | undefined;
  defaultModel(): string;
  sample(req: SampleRequest): AsyncGenerator<SampleEvent>;
  likelihood(req: LikelihoodRequest): Promise<LikelihoodResult>;
  likelihoodBatch(req: LikelihoodBatchRequest): Promise<LikelihoodBatchResult>;
  /** queued and running requests, the last run's batch, and the inference workers ready to take requests */
  stats(): { queued: number; running: number; lastBatch: number; workersReady: number };
  close(): Promise<void>;
}
