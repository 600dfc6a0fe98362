// Messages between the main thread (pool) and a worker thread (engine).
import type { LoadedModel } from './manifest.js';
import type { DecodeMode, ExecutionProvider, GraphKind, ProviderChoice } from './types.js';
import type { SampleLaneSpec, ScoreResult } from './engine.js';

export interface InitMessage {
  type: 'init';
  models: LoadedModel[];
  provider: ProviderChoice;
  threads: number;
  decode: DecodeMode;
  /** ticks a stepping group keeps the turn (engine.ts) */
  quantum: number;
}

export interface SampleMessage {
  type: 'sample';
  request: number;
  model: string;
  lanes: Omit<SampleLaneSpec, 'request'>[];
}

export interface ScoreMessage {
  type: 'score';
  request: number;
  model: string;
  /** one or more images, scored independently; each answers a score-done with its index */
  images: Uint8Array[];
  perPixel: boolean;
}

export interface CancelMessage {
  type: 'cancel';
  request: number;
}

/** Finish the run in flight, release the sessions and exit. */
export interface CloseMessage {
  type: 'close';
}

/** Test hook: an uncaught error in the worker, between runs, as a real crash would be. */
export interface CrashMessage {
  type: 'crash';
}

export type ToWorker = InitMessage | SampleMessage | ScoreMessage | CancelMessage | CloseMessage | CrashMessage;

export type FromWorker =
  | { type: 'ready'; providers: Record<string, { provider: ExecutionProvider; note?: string }> }
  | { type: 'init-failed'; message: string }
  | { type: 'slice'; request: number; index: number; stage: number; slice: number; values: Uint8Array; image: Uint8Array }
  | { type: 'stage'; request: number; index: number; stage: number }
  | { type: 'sample-done'; request: number; index: number; image: Uint8Array; nats: number }
  | { type: 'score-done'; request: number; index: number; result: ScoreResult }
  | { type: 'failed'; request: number; message: string }
  /** endMs: when the run ended, in ms since the epoch (performance.timeOrigin + performance.now());
   * arrivals: when the engine took each request in (its lanes join the next tick), on that clock */
  | { type: 'runs'; runs: { model: string; stage: string; graph: GraphKind; seconds: number; batch: number; endMs: number }[];
      arrivals: { model: string; lanes: number; atMs: number }[] };
