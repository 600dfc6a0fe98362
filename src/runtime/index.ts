// The SPN runtime: models from manifests, inference in worker threads, a bounded queue in front.
// It knows nothing of HTTP.
import { CancelledError, InvalidInputError, LoadCancelledError, NoWorkerError, OverloadedError, RuntimeError, UnknownModelError, WorkerFailedError } from './errors.js';
import { Channel } from './channel.js';
import { channelPerm, toImageChannels, toModelChannels } from './channels.js';
import { loadModels, summarize, type LoadedModel, type Manifest } from './manifest.js';
import { checkImage, planSample } from './plan.js';
import { WorkerPool, type PoolWorker } from './pool.js';
import type { FromWorker } from './protocol.js';
import { sampleKey } from './rng.js';
import { sliceOffset } from './subscale.js';
import type {
  Condition, LikelihoodBatchRequest, LikelihoodBatchResult, LikelihoodRequest, LikelihoodResult, ModelSummary, Runtime, RuntimeOptions, SampleEvent, SampleRequest,
} from './types.js';

export * from './types.js';
export * from './errors.js';

/** Test and benchmark hook: explicit uniforms per sample and stage instead of a seed. */
export interface SampleRequestWithUniforms extends SampleRequest {
  uniforms?: Float32Array[][];
}

/** The model's channel permutation (channels.ts; checked at load, so it does not throw here). */
const channelPermOf = (m: Manifest) => channelPerm(m.image.channelOrder, m.image.channels);

/** A condition's image in the model's channel order (one of the wrong size is left for the plan to refuse). */
function inModelChannels(m: Manifest, condition: Condition, perm: number[] | null): Condition {
  const { image } = condition;
  if (!perm || image.data.length !== m.image.height * m.image.width * m.image.channels) return condition;
  return { ...condition, image: { ...image, data: toModelChannels(image.data, perm) } };
}

export class SpnRuntime implements Runtime {
  private running = 0;
  private waiting: { start: () => void; cancel: (e: Error) => void }[] = [];
  private nextId = 0;
  private lastBatch = 0;
  private closed = false;
  ready = false;

  private constructor(
    private readonly opts: RuntimeOptions,
    private readonly loaded: Map<string, LoadedModel>,
    readonly pool: WorkerPool,
  ) {}

  static async create(opts: RuntimeOptions): Promise<SpnRuntime> {
    const models = await loadModels(opts.modelsDir, opts.models);
    const byName = new Map(models.map((m) => [m.manifest.name, m]));
    let rt: SpnRuntime | undefined;
    const pool = new WorkerPool(models, opts, ({ runs, arrivals }) => {
      for (const a of arrivals) opts.observer?.arrived?.(a.model, a.lanes, a.atMs);
      for (const r of runs) {
        rt!.lastBatch = r.batch;
        opts.observer?.graphRun?.(r.model, r.stage, r.graph, r.seconds, r.batch, r.endMs);
      }
    });
    rt = new SpnRuntime(opts, byName, pool);
    const { signal } = opts;
    if (signal?.aborted) throw new LoadCancelledError();
    const cancel = () => void pool.close();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      await pool.start();
    } catch (err) {
      if (signal?.aborted) throw new LoadCancelledError();
      throw err;
    } finally {
      signal?.removeEventListener('abort', cancel);
    }
    if (signal?.aborted) {
      await pool.close();
      throw new LoadCancelledError();
    }
    for (const [name, p] of Object.entries(pool.providers)) {
      // a CUDA fallback (with `auto`), once per model however many workers loaded it
      if (p.note) opts.logger?.warn({ model: name, provider: p.provider }, `${name}: ${p.note}`);
      opts.logger?.info({ model: name, provider: p.provider }, 'model loaded');
    }
    rt.ready = true;
    return rt;
  }

  models(): ModelSummary[] {
    return [...this.loaded.keys()].map((n) => this.model(n)!);
  }

  model(name: string): ModelSummary | undefined {
    const m = this.loaded.get(name);
    if (!m) return undefined;
    const p = this.pool.providers[name];
    return summarize(m.manifest, p?.provider ?? 'cpu', p?.note);
  }

  defaultModel(): string {
    return this.loaded.has('mu-fmnist') ? 'mu-fmnist' : [...this.loaded.keys()][0];
  }

  stats() {
    return { queued: this.waiting.length, running: this.running, lastBatch: this.lastBatch, workersReady: this.pool.workers.filter((w) => w.ready).length };
  }

  private manifest(name: string) {
    const m = this.loaded.get(name);
    if (!m) throw new UnknownModelError(name);
    return m.manifest;
  }

  private changed(): void {
    this.opts.observer?.queueChanged?.(this.waiting.length, this.running);
  }

  /** A place among the running requests, or a wait in the bounded queue, or an overload error. */
  private async admit(signal?: AbortSignal): Promise<() => void> {
    if (this.closed) throw new WorkerFailedError('runtime is closed');
    if (signal?.aborted) throw new CancelledError(signal.reason);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.running--;
      const next = this.waiting.shift();
      if (next) next.start();
      this.changed();
    };
    if (this.running < this.opts.maxRunning) {
      this.running++;
      this.changed();
      return release;
    }
    if (this.waiting.length >= this.opts.maxQueue) {
      this.opts.observer?.failed?.('overloaded');
      throw new OverloadedError();
    }
    await new Promise<void>((resolve, reject) => {
      const entry = {
        start: () => { signal?.removeEventListener('abort', onAbort); this.running++; resolve(); },
        cancel: (e: Error) => reject(e),
      };
      const onAbort = () => {
        this.waiting = this.waiting.filter((w) => w !== entry);
        this.changed();
        reject(new CancelledError(signal?.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
      this.changed();
    });
    return release;
  }

  /** A place (admission), then a worker for the request: its messages flow into a channel until
   * close(), which also frees the place. */
  private async start(t0: number, weight: number, signal?: AbortSignal) {
    const release = await this.admit(signal);
    const queueMs = performance.now() - t0;
    const id = ++this.nextId;
    const chan = new Channel<FromWorker>();
    let worker: PoolWorker;
    try {
      worker = await this.pool.acquire(id, { message: (m) => chan.push(m), fail: (e) => chan.fail(e, true) }, weight, signal);
    } catch (err) {
      release();
      throw err;
    }
    const onAbort = () => chan.fail(new CancelledError(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();   // aborted while the worker was being chosen
    return {
      id, worker, chan, queueMs,
      close: (finished: boolean) => {
        signal?.removeEventListener('abort', onAbort);
        this.pool.unregister(worker, id);
        if (!finished) worker.post({ type: 'cancel', request: id });
        release();
      },
    };
  }

  private countFailure(err: unknown): void {
    const reason = err instanceof CancelledError ? (err.timedOut ? 'timeout' : 'cancelled')
      : err instanceof InvalidInputError || err instanceof UnknownModelError ? 'bad_input'
        : err instanceof OverloadedError ? null : err instanceof NoWorkerError ? 'unavailable' : 'internal';
    if (reason) this.opts.observer?.failed?.(reason);
  }

  async *sample(req: SampleRequestWithUniforms): AsyncGenerator<SampleEvent> {
    const t0 = performance.now();
    let conn: Awaited<ReturnType<SpnRuntime['start']>> | undefined;
    let finished = false;
    try {
      const m = this.manifest(req.model);
      if (!Number.isInteger(req.count) || req.count < 1) throw new InvalidInputError('count must be a positive integer');
      if (!(req.temperature > 0)) throw new InvalidInputError('temperature must be positive');
      if (!Number.isInteger(req.seed) || req.seed < 0 || req.seed > 0xffffffff) throw new InvalidInputError('seed must be an integer in [0, 2^32)');
      const perm = channelPermOf(m);
      const plan = planSample(m, req.stopAfter, req.condition && inModelChannels(m, req.condition, perm));
      conn = await this.start(t0, req.count, req.signal);
      const { queueMs } = conn;
      conn.worker.post({
        type: 'sample', request: conn.id, model: m.name,
        lanes: Array.from({ length: req.count }, (_, index) => ({
          index, image: plan.image.slice(), starts: plan.starts, stopAfter: plan.stopAfter, temperature: req.temperature,
          ...(req.uniforms ? { uniforms: req.uniforms[index] } : { key: sampleKey(req.seed, index) }),
        })),
      });
      const { height, width, channels } = m.image;
      const S = m.subscaleFactor;
      const images = new Array<Uint8Array>(req.count);
      const nats = new Array<number>(req.count).fill(0);
      let done = 0;
      let firstSliceMs = -1;
      for await (const msg of conn.chan) {
        const elapsedMs = performance.now() - t0;
        if (msg.type === 'slice') {
          if (firstSliceMs < 0) firstSliceMs = elapsedMs;
          const stage = m.stages[msg.stage];
          this.opts.observer?.generated?.(m.name, 'slices', 1);
          this.opts.observer?.generated?.(m.name, 'pixels', (height / S) * (width / S));
          yield {
            type: 'slice', sample: msg.index, stage: stage.name, slice: msg.slice, offset: sliceOffset(msg.slice, { subscale: S, order: m.sliceOrder }),
            values: toImageChannels(msg.values, perm), sliceHeight: height / S, sliceWidth: width / S,
            image: { height, width, channels, data: toImageChannels(msg.image, perm) }, elapsedMs,
          };
        } else if (msg.type === 'stage') {
          yield { type: 'stage', sample: msg.index, stage: m.stages[msg.stage].name, elapsedMs };
        } else if (msg.type === 'sample-done') {
          images[msg.index] = msg.image;
          nats[msg.index] = msg.nats;
          this.opts.observer?.generated?.(m.name, 'samples', 1);
          if (++done === req.count) {
            finished = true;
            yield {
              type: 'done', seed: req.seed, stoppedAfter: m.stages[plan.stopAfter].name,
              images: images.map((data) => ({ height, width, channels, data: toImageChannels(data, perm) })),
              bitsPerDim: nats.map((n) => n / Math.LN2 / (height * width * channels)),
              timings: { queueMs, firstSliceMs: Math.max(firstSliceMs, 0), totalMs: performance.now() - t0 },
            };
            return;
          }
        } else if (msg.type === 'failed') {
          throw new WorkerFailedError(msg.message);
        }
      }
    } catch (err) {
      this.countFailure(err);
      throw err;
    } finally {
      conn?.close(finished);
    }
  }

  async likelihood(req: LikelihoodRequest): Promise<LikelihoodResult> {
    const { model, results: [one], timings } = await this.likelihoodBatch({ model: req.model, images: [req.image], perPixel: req.perPixel, signal: req.signal });
    return { model, ...one, timings };
  }

  async likelihoodBatch(req: LikelihoodBatchRequest): Promise<LikelihoodBatchResult> {
    const t0 = performance.now();
    let conn: Awaited<ReturnType<SpnRuntime['start']>> | undefined;
    let finished = false;
    try {
      const m = this.manifest(req.model);
      if (req.images.length < 1) throw new InvalidInputError('no images to score');
      req.images.forEach((image, i) => {
        try {
          checkImage(m, image);
        } catch (err) {
          throw req.images.length > 1 && err instanceof InvalidInputError ? new InvalidInputError(`image ${i}: ${err.message}`) : err;
        }
      });
      conn = await this.start(t0, req.images.length, req.signal);
      const { queueMs } = conn;
      conn.worker.post({ type: 'score', request: conn.id, model: m.name, images: req.images.map((im) => toModelChannels(im.data, channelPermOf(m), true)), perPixel: !!req.perPixel });
      const dims = m.image.height * m.image.width * m.image.channels;
      const results = new Array<LikelihoodBatchResult['results'][number]>(req.images.length);
      let done = 0;
      for await (const msg of conn.chan) {
        if (msg.type === 'failed') throw new WorkerFailedError(msg.message);
        if (msg.type !== 'score-done') continue;
        this.opts.observer?.scored?.(m.name, 1);
        const stages = m.stages.map((st, i) => {
          const slices = [];
          for (let k = st.firstSlice; k < st.lastSlice; k++) {
            slices.push({ slice: k, offset: sliceOffset(k, { subscale: m.subscaleFactor, order: m.sliceOrder }), bits: msg.result.slices[i][k] / Math.LN2 });
          }
          const nats = msg.result.slices[i].reduce((a, b) => a + b, 0);
          return { stage: st.name, nats, bits: nats / Math.LN2, bitsPerDim: nats / Math.LN2 / dims, slices };
        });
        const nats = stages.reduce((a, s) => a + s.nats, 0);
        results[msg.index] = {
          nats, bits: nats / Math.LN2, bitsPerDim: nats / Math.LN2 / dims, stages,
          ...(msg.result.perPixel ? { perPixelBits: msg.result.perPixel } : {}),
        };
        if (++done === req.images.length) {
          finished = true;
          return { model: m.name, results, timings: { queueMs, totalMs: performance.now() - t0 } };
        }
      }
      throw new RuntimeError('internal', 'scoring ended without a result');
    } catch (err) {
      this.countFailure(err);
      throw err;
    } finally {
      conn?.close(finished);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.ready = false;
    for (const w of this.waiting.splice(0)) w.cancel(new WorkerFailedError('runtime is closing'));
    await this.pool.close();
  }
}

export function createRuntime(opts: RuntimeOptions): Promise<SpnRuntime> {
  return SpnRuntime.create(opts);
}
