// The continuous-batching engine. It runs inside a worker thread that owns the ONNX sessions.
//
// Every image being sampled or scored is a *lane* with its own state (stage, slice, row, column,
// caches, buffers). Each tick groups the lanes by (model, stage, graph) and runs batched graphs:
// every group whose lanes need one run of it (conditioning, decoder_row, scoring), and one of the
// *stepping* groups (sample_row, decoder_pixel: a run per row or pixel, many in a row), which take
// turns, round robin: a group keeps the turn for up to `quantum` ticks, and passes it on sooner
// when it empties: when its lanes have all gone to a run-once graph (the conditioning at a slice's
// end; with DECODE=pixel, decoder_row at a row's end) or finished. A lane that arrives while others
// run joins its group's next run, so requests share runs at the granularity of a decoder step (a
// row, or a pixel in pixel mode); a new group waits at most one quantum per group ahead of it.
// Lanes of cancelled requests are dropped before the next run. All per-request state (random
// numbers, buffers) lives in the lane.
//
// Why turns, not every group every tick: lanes spread over MU's three stages would make three
// small runs per tick, each paying a run's fixed cost and each bringing another graph's weights
// back into cache. Giving one stage's group the turn for a while lets the lanes that finish it
// gather in the next stage's group, so the runs stay large (npm run bench:scheduler measures both
// orders; QUANTUM=1 is the old one). Why a turn ends with the slice: a stage that kept its turn
// through its conditioning ticks, across slices, made smaller runs for MU's requests in step (a
// mean sample_row batch of 11.6 against 14.4 at 32 concurrent) and no more images/s out of step
// (bench:scheduler in session 18; docs/benchmarks.md, Scheduler).
import ort from 'onnxruntime-node';
import type { Manifest } from './manifest.js';
import { uniformAt } from './rng.js';
import type { ModelSessions } from './sessions.js';
import { bitPlane, sliceOffset, toSlices, type SliceOrder } from './subscale.js';
import type { DecodeMode, GraphKind } from './types.js';

export interface EngineModel {
  manifest: Manifest;
  sessions: ModelSessions;
  /** per stage: the first slice's context when the manifest says it is constant (computed once
   * at load), as the graphs take it ([d, h, w], scoring) and row-major (sampling), else null */
  firstContext: ({ context: Float32Array; rows: Float32Array } | null)[];
}

export interface SampleLaneSpec {
  request: number;
  /** the sample's index in its request */
  index: number;
  /** initial 8-bit image (HWC) holding the given bits, others 0 */
  image: Uint8Array;
  /** first slice to generate per stage (>= lastSlice: the stage is skipped) */
  starts: number[];
  /** last stage to run */
  stopAfter: number;
  temperature: number;
  /** seeded uniforms (key from rng.sampleKey), or explicit ones per stage [slice][row][col][channel] */
  key?: number;
  uniforms?: Float32Array[];
}

export interface EngineEvents {
  slice(request: number, index: number, stage: number, slice: number, values: Uint8Array, image: Uint8Array): void;
  stage(request: number, index: number, stage: number): void;
  sampleDone(request: number, index: number, image: Uint8Array, nats: number): void;
  scoreDone(request: number, index: number, result: ScoreResult): void;
  failed(request: number, message: string): void;
  run(model: string, stage: string, graph: GraphKind, seconds: number, batch: number): void;
}

export interface ScoreResult {
  /** nats per stage per slice (slices outside the stage's range are 0) */
  slices: number[][];
  /** bits per pixel, H x W, summed over channels and stages */
  perPixel: Float32Array | null;
}

type Phase = GraphKind;

interface Lane {
  request: number;
  model: EngineModel;
  stage: number;
  phase: Phase;
  image: Uint8Array;
  plane: Int32Array;
  aux: Int32Array | null;
  t: number;
  /** cancelled, failed or finished: skipped by any run still in flight */
  dropped?: boolean;
  // sampling
  sample?: {
    spec: SampleLaneSpec; r: number; c: number;
    /** the slice's context, row by row: row r is [d, w] at r * d * w (see rowMajor) */
    context: Float32Array; upper: Float32Array; row: Int32Array; nats: number;
    /** pixel mode: the previous pixel's values and the horizontal stack's per-layer caches */
    prev: Int32Array; caches: Float32Array;
    /** the vertical stack's per-layer caches (the row above) */
    vcaches: Float32Array;
  };
  // scoring: one lane per (stage, slice) of the image, sharing the result
  score?: { index: number; result: ScoreResult; remaining: number };
}

const MAX_BATCH = 64;

/** Graphs a lane runs many times in a row (one run per row or per pixel); others it runs once and moves on. */
const STEPPING: ReadonlySet<Phase> = new Set(['sample_row', 'decoder_pixel']);

/** A context [d, h, w] (at `offset` in `src`) as rows: row r's [d, w] block at r * d * w, so a row
 * feed is one copy per lane rather than one per channel. */
function rowMajor(src: Float32Array, offset: number, d: number, h: number, w: number): Float32Array {
  const out = new Float32Array(d * h * w);
  for (let k = 0; k < d; k++) {
    for (let r = 0; r < h; r++) {
      const from = offset + (k * h + r) * w;
      const to = (r * d + k) * w;
      for (let q = 0; q < w; q++) out[to + q] = src[from + q];
    }
  }
  return out;
}

/** Shape of one lane's cache input of a graph, as the manifest declares it (less the batch). */
function cacheDims(m: Manifest, stage: number, graph: 'decoder_pixel' | 'decoder_row', input: string): number[] {
  const info = m.stages[stage].graphs[graph].inputs.find((i) => i.name === input);
  return (info?.shape.slice(1) ?? []) as number[];
}

/** The engine's view of a loaded model; `contexts` are the constant first contexts ([d, h, w] per
 * stage, or null), laid out here once for both uses. */
export function engineModel(manifest: Manifest, sessions: ModelSessions, contexts: (Float32Array | null)[]): EngineModel {
  const g = geometry(manifest);
  return {
    manifest, sessions,
    firstContext: contexts.map((c, k) => (c ? { context: c, rows: rowMajor(c, 0, manifest.stages[k].width, g.h, g.w) } : null)),
  };
}

interface Geometry { height: number; width: number; channels: number; subscale: number; order: SliceOrder; h: number; w: number; SS: number }
const geometries = new WeakMap<Manifest, Geometry>();

function geometry(m: Manifest): Geometry {
  let g = geometries.get(m);
  if (!g) {
    const { height, width, channels } = m.image;
    const S = m.subscaleFactor;
    g = { height, width, channels, subscale: S, order: m.sliceOrder, h: height / S, w: width / S, SS: S * S };
    geometries.set(m, g);
  }
  return g;
}

export class Engine {
  private lanes: Lane[] = [];
  private loopDone: Promise<void> | null = null;
  /** stepping groups in turn order (the first has the turn), and how many ticks it has had */
  private turns: string[] = [];
  private turnTicks = 0;

  constructor(private readonly events: EngineEvents, private readonly decode: DecodeMode,
    private readonly quantum: number) {}

  addSample(model: EngineModel, spec: SampleLaneSpec): void {
    const lane: Lane = {
      request: spec.request, model, stage: -1, phase: 'conditioning', image: spec.image,
      plane: new Int32Array(0), aux: null, t: 0,
      sample: { spec, r: 0, c: 0, context: new Float32Array(0), upper: new Float32Array(0), row: new Int32Array(0), nats: 0, prev: new Int32Array(0), caches: new Float32Array(0), vcaches: new Float32Array(0) },
    };
    if (this.nextSampleStage(lane)) this.lanes.push(lane);
    else this.events.sampleDone(spec.request, spec.index, lane.image, 0);
    this.kick();
  }

  /** Scoring needs no order: every slice of every stage is known, so the image becomes one lane
   * per (stage, slice), and one tick scores all of a stage's slices in one batched run. `index`:
   * the image's place in its request (a request may score several). */
  addScore(model: EngineModel, request: number, index: number, image: Uint8Array, perPixel: boolean): void {
    const g = geometry(model.manifest);
    const score = {
      index,
      result: { slices: model.manifest.stages.map(() => new Array(g.SS).fill(0)), perPixel: perPixel ? new Float32Array(g.height * g.width) : null },
      remaining: 0,
    };
    model.manifest.stages.forEach((st, stage) => {
      const first: Lane = { request, model, stage, phase: 'score', image, plane: new Int32Array(0), aux: null, t: st.firstSlice, score };
      this.enterStage(first, stage);
      for (let t = st.firstSlice; t < st.lastSlice; t++) {
        // a constant first context: score the slice from it, without the conditioning network
        const phase = t === 0 && model.firstContext[stage] ? 'score_context' : 'score';
        this.lanes.push({ ...first, t, phase });
        score.remaining++;
      }
    });
    this.kick();
  }

  cancel(request: number): void {
    this.drop(this.lanes.filter((l) => l.request === request));
  }

  private kick(): void {
    // started in a microtask, so that every lane of one message joins the first tick together
    this.loopDone ??= Promise.resolve().then(() => this.loop()).finally(() => { this.loopDone = null; });
  }

  /** Drops every lane and resolves once no run is in flight. */
  async stop(): Promise<void> {
    this.drop(this.lanes);
    await this.loopDone;
  }

  private async loop(): Promise<void> {
    while (this.lanes.length) {
      const groups = new Map<string, Lane[]>();
      for (const l of this.lanes) {
        const k = `${l.model.manifest.name}\u0000${l.stage}\u0000${l.phase}`;
        const g = groups.get(k);
        if (g) g.push(l); else groups.set(k, [l]);
      }
      for (const group of this.chooseGroups(groups)) {
        for (let i = 0; i < group.length; i += MAX_BATCH) {
          const batch = group.slice(i, i + MAX_BATCH).filter((l) => !l.dropped);
          if (batch.length) await this.runBatch(batch);
        }
      }
    }
  }

  /** This tick's groups: every run-once group, and the stepping group whose turn it is. */
  private chooseGroups(groups: Map<string, Lane[]>): Lane[][] {
    if (this.quantum <= 1) return [...groups.values()];
    const chosen: Lane[][] = [];
    const stepping = new Set<string>();
    for (const [k, g] of groups) {
      if (STEPPING.has(g[0].phase)) stepping.add(k);
      else chosen.push(g);
    }
    const had = this.turns[0];
    this.turns = this.turns.filter((k) => stepping.has(k));
    for (const k of stepping) if (!this.turns.includes(k)) this.turns.push(k);
    if (!this.turns.length) return chosen;
    if (this.turns[0] !== had) this.turnTicks = 0;                 // its group is gone: the next one's turn
    else if (this.turnTicks >= this.quantum) {                     // quantum used up: to the back of the line
      this.turns.push(this.turns.shift()!);
      this.turnTicks = 0;
    }
    this.turnTicks++;
    chosen.push(groups.get(this.turns[0])!);
    return chosen;
  }

  private drop(lanes: Lane[]): void {
    for (const l of lanes) l.dropped = true;
    this.lanes = this.lanes.filter((l) => !l.dropped);
  }

  private async runBatch(batch: Lane[]): Promise<void> {
    const { model, stage, phase } = batch[0];
    const st = model.manifest.stages[stage];
    const session = model.sessions.stages[stage][phase];
    let out: ort.InferenceSession.OnnxValueMapType;
    const t0 = performance.now();
    try {
      out = await session.run(this.feeds(batch));
    } catch (err) {
      if (batch.length > 1) {
        // one request's failure must not fail the others that shared the run: run each alone
        for (const lane of batch) if (!lane.dropped) await this.runBatch([lane]);
        return;
      }
      const { request } = batch[0];
      this.drop(this.lanes.filter((l) => l.request === request));
      this.events.failed(request, `${phase} run failed: ${(err as Error).message}`);
      return;
    }
    this.events.run(model.manifest.name, st.name, phase, (performance.now() - t0) / 1000, batch.length);
    // outputs are indexed by the lane's place in the batch; a lane cancelled while its run was
    // in flight (dropped) is skipped, not advanced
    if (phase === 'conditioning') this.afterConditioning(batch, out.context.data as Float32Array);
    else if (phase === 'decoder_row') this.afterRow(batch, out.upper.data as Float32Array, out.vcaches_out.data as Float32Array);
    else if (phase === 'decoder_pixel') this.afterPixel(batch, out.sample.data as Int32Array, out.nll.data as Float32Array, out.caches_out.data as Float32Array);
    else if (phase === 'sample_row') this.afterSampleRow(batch, out.row_values.data as Int32Array, out.nll.data as Float32Array, out.vcaches_out.data as Float32Array);
    else this.afterScore(batch, out.nll.data as Float32Array);
    for (const t of Object.values(out)) t.dispose();
  }

  private feeds(batch: Lane[]): Record<string, ort.Tensor> {
    const { model, stage, phase } = batch[0];
    const m = model.manifest;
    const g = geometry(m);
    const d = m.stages[stage].width;
    const B = batch.length;
    const C = g.channels;
    const planeLen = g.SS * C * g.h * g.w;
    const sliceLen = C * g.h * g.w;
    if (phase === 'conditioning' || phase === 'score') {
      const slices = new Int32Array(B * planeLen);
      const target = new Int32Array(B);
      const aux = m.stages[stage].aux ? new Int32Array(B * planeLen) : null;
      batch.forEach((l, i) => {
        slices.set(l.plane, i * planeLen);
        target[i] = l.t;
        if (aux && l.aux) aux.set(l.aux, i * planeLen);
      });
      const shape = [B, g.SS, C, g.h, g.w];
      const f: Record<string, ort.Tensor> = {
        slices: new ort.Tensor('int32', slices, shape),
        target: new ort.Tensor('int32', target, [B]),
      };
      if (aux) f.aux = new ort.Tensor('int32', aux, shape);
      return f;
    }
    if (phase === 'score_context') {
      const { context } = model.firstContext[stage]!;
      const slice = new Int32Array(B * sliceLen);
      const contexts = new Float32Array(B * context.length);
      batch.forEach((l, i) => {
        slice.set(l.plane.subarray(l.t * sliceLen, (l.t + 1) * sliceLen), i * sliceLen);
        contexts.set(context, i * context.length);
      });
      return {
        slice: new ort.Tensor('int32', slice, [B, C, g.h, g.w]),
        context: new ort.Tensor('float32', contexts, [B, d, g.h, g.w]),
      };
    }
    if (phase === 'decoder_row' || phase === 'sample_row') {
      const vShape = cacheDims(m, stage, 'decoder_row', 'vcaches');
      const vLen = vShape.reduce((a, b) => a * b, 1);
      const prevRow = new Int32Array(B * C * g.w);
      const contextRow = new Float32Array(B * d * g.w);
      const row = new Int32Array(B);
      const vcaches = new Float32Array(B * vLen);
      batch.forEach((l, i) => {
        const s = l.sample!;
        const sliceBase = l.t * sliceLen;
        if (s.r > 0) {
          for (let ch = 0; ch < C; ch++) {
            const from = sliceBase + (ch * g.h + s.r - 1) * g.w;
            prevRow.set(l.plane.subarray(from, from + g.w), (i * C + ch) * g.w);
          }
        }
        contextRow.set(s.context.subarray(s.r * d * g.w, (s.r + 1) * d * g.w), i * d * g.w);
        row[i] = s.r;
        vcaches.set(s.vcaches, i * vLen);
      });
      const f: Record<string, ort.Tensor> = {
        prev_row: new ort.Tensor('int32', prevRow, [B, C, g.w]),
        context_row: new ort.Tensor('float32', contextRow, [B, d, g.w]),
        row: new ort.Tensor('int32', row, [B]),
        vcaches: new ort.Tensor('float32', vcaches, [B, ...vShape]),
      };
      if (phase === 'sample_row') {
        // the row's uniforms, [col][channel], in the same order the per-pixel path draws them
        const uniform = new Float32Array(B * g.w * C);
        const temperature = new Float32Array(B);
        batch.forEach((l, i) => {
          const s = l.sample!;
          temperature[i] = s.spec.temperature;
          const base = (l.t * g.h + s.r) * g.w * C;
          for (let k = 0; k < g.w * C; k++) {
            uniform[i * g.w * C + k] = s.spec.uniforms ? s.spec.uniforms[stage][base + k] : uniformAt(s.spec.key!, stage, base + k);
          }
        });
        f.uniform = new ort.Tensor('float32', uniform, [B, g.w, C]);
        f.temperature = new ort.Tensor('float32', temperature, [B]);
      }
      return f;
    }
    const cacheShape = cacheDims(m, stage, 'decoder_pixel', 'caches');
    const cacheLen = cacheShape.reduce((a, b) => a * b, 1);
    const prev = new Int32Array(B * C);
    const caches = new Float32Array(B * cacheLen);
    const upper = new Float32Array(B * d * g.w);
    const col = new Int32Array(B);
    const uniform = new Float32Array(B * C);
    const temperature = new Float32Array(B);
    batch.forEach((l, i) => {
      const s = l.sample!;
      prev.set(s.prev, i * C);
      caches.set(s.caches, i * cacheLen);
      upper.set(s.upper, i * d * g.w);
      col[i] = s.c;
      temperature[i] = s.spec.temperature;
      const base = ((l.t * g.h + s.r) * g.w + s.c) * C;
      for (let ch = 0; ch < C; ch++) {
        uniform[i * C + ch] = s.spec.uniforms ? s.spec.uniforms[stage][base + ch] : uniformAt(s.spec.key!, stage, base + ch);
      }
    });
    return {
      prev_values: new ort.Tensor('int32', prev, [B, C]),
      col: new ort.Tensor('int32', col, [B]),
      caches: new ort.Tensor('float32', caches, [B, ...cacheShape]),
      upper: new ort.Tensor('float32', upper, [B, d, g.w]),
      uniform: new ort.Tensor('float32', uniform, [B, C]),
      temperature: new ort.Tensor('float32', temperature, [B]),
    };
  }

  /** Planes of the stage from the lane's image: this stage's bits and the aux (higher) bits. */
  private enterStage(lane: Lane, stage: number): void {
    const m = lane.model.manifest;
    const st = m.stages[stage];
    const g = geometry(m);
    lane.stage = stage;
    lane.plane = toSlices(bitPlane(lane.image, st.shift, st.bits), g);
    lane.aux = st.aux ? toSlices(bitPlane(lane.image, st.aux.shift, st.aux.bits), g) : null;
  }

  /** Moves a sampling lane to its next stage that has slices to generate; false when done. */
  private nextSampleStage(lane: Lane): boolean {
    const s = lane.sample!;
    const m = lane.model.manifest;
    for (let k = lane.stage + 1; k <= s.spec.stopAfter; k++) {
      const st = m.stages[k];
      const start = Math.max(st.firstSlice, s.spec.starts[k]);
      if (start >= st.lastSlice) continue;
      this.enterStage(lane, k);
      const g = geometry(m);
      const sliceLen = g.channels * g.h * g.w;
      lane.plane.fill(0, start * sliceLen);   // generated slices start empty
      lane.t = start;
      lane.phase = 'conditioning';
      const constant = start === 0 ? lane.model.firstContext[k] : null;
      if (constant) this.beginSlice(lane, constant.rows);   // no conditioning run for this slice
      return true;
    }
    return false;
  }

  private afterConditioning(lanes: Lane[], context: Float32Array): void {
    const n = context.length / lanes.length;
    lanes.forEach((l, i) => {
      if (l.dropped) return;
      const m = l.model.manifest;
      const g = geometry(m);
      this.beginSlice(l, rowMajor(context, i * n, m.stages[l.stage].width, g.h, g.w));
    });
  }

  /** A sampling lane starts its slice's first row, given the slice's context, row-major (read, never written). */
  private beginSlice(l: Lane, context: Float32Array): void {
    const s = l.sample!;
    s.context = context;
    s.r = 0;
    const g = geometry(l.model.manifest);
    s.row = new Int32Array(g.channels * g.w);
    s.vcaches = new Float32Array(cacheDims(l.model.manifest, l.stage, 'decoder_row', 'vcaches').reduce((a, b) => a * b, 1));
    l.phase = this.decode === 'row' ? 'sample_row' : 'decoder_row';
  }

  private afterRow(lanes: Lane[], upper: Float32Array, vcaches: Float32Array): void {
    const n = upper.length / lanes.length;
    const nv = vcaches.length / lanes.length;
    lanes.forEach((l, i) => {
      if (l.dropped) return;
      const s = l.sample!;
      const g = geometry(l.model.manifest);
      s.upper = upper.slice(i * n, (i + 1) * n);
      s.vcaches = vcaches.slice(i * nv, (i + 1) * nv);
      s.prev = new Int32Array(g.channels);
      s.caches = new Float32Array(cacheDims(l.model.manifest, l.stage, 'decoder_pixel', 'caches').reduce((a, b) => a * b, 1));
      s.c = 0;
      l.phase = 'decoder_pixel';
    });
  }

  private afterPixel(lanes: Lane[], sample: Int32Array, nll: Float32Array, caches: Float32Array): void {
    const finished: Lane[] = [];
    const n = caches.length / lanes.length;
    lanes.forEach((l, i) => {
      if (l.dropped) return;
      const s = l.sample!;
      const g = geometry(l.model.manifest);
      const C = g.channels;
      for (let ch = 0; ch < C; ch++) {
        s.row[ch * g.w + s.c] = sample[i * C + ch];
        s.nats += nll[i * C + ch];
      }
      s.prev = sample.slice(i * C, (i + 1) * C);
      s.caches = caches.slice(i * n, (i + 1) * n);
      if (++s.c < g.w) return;
      if (this.rowDone(l)) finished.push(l);
    });
    if (finished.length) this.drop(finished);
  }

  private afterSampleRow(lanes: Lane[], rows: Int32Array, nll: Float32Array, vcaches: Float32Array): void {
    const finished: Lane[] = [];
    const nv = vcaches.length / lanes.length;
    lanes.forEach((l, i) => {
      if (l.dropped) return;
      const s = l.sample!;
      // into the lane's own buffers (sized at beginSlice): no allocation per row
      s.vcaches.set(vcaches.subarray(i * nv, (i + 1) * nv));
      const n = s.row.length;
      s.row.set(rows.subarray(i * n, (i + 1) * n));
      for (let k = i * n; k < (i + 1) * n; k++) s.nats += nll[k];
      if (this.rowDone(l)) finished.push(l);
    });
    if (finished.length) this.drop(finished);
  }

  /** The lane's row is complete: into the slice, then the next row, slice or stage. True when the lane is done. */
  private rowDone(l: Lane): boolean {
    const s = l.sample!;
    const g = geometry(l.model.manifest);
    const C = g.channels;
    const sliceBase = l.t * C * g.h * g.w;
    for (let ch = 0; ch < C; ch++) {
      l.plane.set(s.row.subarray(ch * g.w, (ch + 1) * g.w), sliceBase + (ch * g.h + s.r) * g.w);
    }
    if (++s.r < g.h) {
      s.row.fill(0);
      l.phase = this.decode === 'row' ? 'sample_row' : 'decoder_row';
      return false;
    }
    this.sliceDone(l);
    const st = l.model.manifest.stages[l.stage];
    if (++l.t < st.lastSlice) {
      l.phase = 'conditioning';
      return false;
    }
    this.events.stage(l.request, s.spec.index, l.stage);
    if (this.nextSampleStage(l)) return false;
    this.events.sampleDone(l.request, s.spec.index, l.image, s.nats);
    return true;
  }

  /** Writes the finished slice into the lane's image and reports it. */
  private sliceDone(l: Lane): void {
    const m = l.model.manifest;
    const g = geometry(m);
    const st = m.stages[l.stage];
    const C = g.channels;
    const [i, j] = sliceOffset(l.t, g);
    const values = new Uint8Array(g.h * g.w * C);
    const mask = ((1 << st.bits) - 1) << st.shift;
    const sliceBase = l.t * C * g.h * g.w;
    for (let ch = 0; ch < C; ch++) {
      for (let r = 0; r < g.h; r++) {
        for (let q = 0; q < g.w; q++) {
          const v = l.plane[sliceBase + (ch * g.h + r) * g.w + q];
          values[(r * g.w + q) * C + ch] = v;
          const p = ((r * g.subscale + i) * g.width + (q * g.subscale + j)) * C + ch;
          l.image[p] = (l.image[p] & ~mask) | (v << st.shift);
        }
      }
    }
    this.events.slice(l.request, l.sample!.spec.index, l.stage, l.t, values, l.image.slice());
  }

  private afterScore(lanes: Lane[], nll: Float32Array): void {
    const finished: Lane[] = [];
    lanes.forEach((l, i) => {
      if (l.dropped) return;
      const m = l.model.manifest;
      const g = geometry(m);
      const res = l.score!.result;
      const n = g.channels * g.h * g.w;
      const [oi, oj] = sliceOffset(l.t, g);
      let sum = 0;
      for (let ch = 0; ch < g.channels; ch++) {
        for (let r = 0; r < g.h; r++) {
          for (let q = 0; q < g.w; q++) {
            const v = nll[i * n + (ch * g.h + r) * g.w + q];
            sum += v;
            if (res.perPixel) res.perPixel[(r * g.subscale + oi) * g.width + q * g.subscale + oj] += v / Math.LN2;
          }
        }
      }
      res.slices[l.stage][l.t] = sum;
      finished.push(l);
      if (--l.score!.remaining === 0) this.events.scoreDone(l.request, l.score!.index, res);
    });
    if (finished.length) this.drop(finished);
  }
}

