// Runtime sampling events -> wire data (PNG images, base64), and the per-request latency metrics
// they carry. One instance per request: per-request state never lives on a shared object.
import type { DoneEvent, ModelSummary, SliceEvent } from '../runtime/types.js';
import type { Metrics } from '../plugins/metrics.js';
import type { SampleResult, SliceEventData } from '../schemas/sample.js';
import { encodePng, sliceForDisplay } from './png.js';

export class SampleOutput {
  private readonly lastSliceMs = new Map<number, number>();

  constructor(
    private readonly model: ModelSummary,
    private readonly request: { count: number; temperature: number },
    private readonly metrics: Metrics,
    private readonly condition?: SampleResult['condition'],
  ) {}

  /** Records time between slices of the same sample; encodes PNGs only when asked (streams). */
  slice(ev: SliceEvent, encode: boolean): SliceEventData | undefined {
    const last = this.lastSliceMs.get(ev.sample);
    if (last !== undefined) this.metrics.timeBetweenSlices.observe({ model: this.model.name }, Math.max(0, ev.elapsedMs - last) / 1000);
    this.lastSliceMs.set(ev.sample, ev.elapsedMs);
    if (!encode) return undefined;
    const bits = this.model.stages.find((s) => s.name === ev.stage)?.bits ?? 8;
    const slicePng = encodePng(sliceForDisplay(ev.values, ev.sliceHeight, ev.sliceWidth, ev.image.channels, bits));
    const imagePng = encodePng(ev.image);
    return {
      sample: ev.sample,
      stage: ev.stage,
      slice: ev.slice,
      offset: ev.offset,
      bits,
      slicePng: slicePng.toString('base64'),
      imagePng: imagePng.toString('base64'),
      elapsedMs: ev.elapsedMs,
    };
  }

  done(ev: DoneEvent): SampleResult {
    const name = this.model.name;
    this.metrics.queueTime.observe({ model: name, kind: 'sample' }, ev.timings.queueMs / 1000);
    this.metrics.timeToFirstSlice.observe({ model: name }, ev.timings.firstSliceMs / 1000);
    const pngs = ev.images.map(encodePng);
    return {
      model: name,
      seed: ev.seed,
      count: this.request.count,
      temperature: this.request.temperature,
      stoppedAfter: ev.stoppedAfter,
      images: ev.images.map((img, i) => ({
        png: pngs[i].toString('base64'),
        width: img.width,
        height: img.height,
        channels: img.channels,
        bitsPerDim: ev.bitsPerDim[i],
      })),
      timings: ev.timings,
      ...(this.condition ? { condition: this.condition } : {}),
    };
  }
}
