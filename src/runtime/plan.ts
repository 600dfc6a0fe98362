// Turns a sampling request into per-stage work: which slices each stage generates, and which bits
// of a given image are kept. Pure, so it is tested without sessions.
import { InvalidInputError } from './errors.js';
import type { Manifest } from './manifest.js';
import type { Condition, RawImage } from './types.js';
import { sliceIndexByOffset } from './subscale.js';

export interface SamplePlan {
  /** first slice each stage generates (>= lastSlice: skipped) */
  starts: number[];
  stopAfter: number;
  /** the given bits (HWC, 8-bit), 0 elsewhere */
  image: Uint8Array;
}

export function checkImage(m: Manifest, image: RawImage): void {
  const { height, width, channels } = m.image;
  if (image.height !== height || image.width !== width || image.channels !== channels) {
    throw new InvalidInputError(
      `image is ${image.width}x${image.height} with ${image.channels} channel(s); model '${m.name}' takes ${width}x${height} with ${channels} channel(s)`);
  }
  if (image.data.length !== height * width * channels) throw new InvalidInputError('image data length does not match its dimensions');
}

/** The stage named `name` (default: the last); a manifest or a model's summary. */
export function stageIndex(m: { name: string; stages: readonly { name: string }[] }, name: string | undefined): number {
  if (name === undefined) return m.stages.length - 1;
  const i = m.stages.findIndex((s) => s.name === name);
  if (i < 0) throw new InvalidInputError(`model '${m.name}' has no stage '${name}' (stages: ${m.stages.map((s) => s.name).join(', ')})`);
  return i;
}

export function planSample(m: Manifest, stopAfterName: string | undefined, condition?: Condition): SamplePlan {
  const stopAfter = stageIndex(m, stopAfterName);
  const SS = m.subscaleFactor ** 2;
  const { height, width, channels } = m.image;
  let starts = m.stages.map((s) => s.firstSlice);
  if (!condition) return { starts, stopAfter, image: new Uint8Array(height * width * channels) };
  checkImage(m, condition.image);
  if (condition.mode === 'upscale') {
    if (m.stages.length < 2) throw new InvalidInputError(`model '${m.name}' has one stage: nothing to upscale with`);
    starts = m.stages.map((s, i) => (i === 0 ? s.lastSlice : s.firstSlice));
  } else if (condition.mode === 'add-depth') {
    if (!m.stages.some((s) => s.aux)) throw new InvalidInputError(`model '${m.name}' has no depth upscaler`);
    starts = m.stages.map((s) => (s.aux ? s.firstSlice : s.lastSlice));
  } else {
    const k = condition.slices;
    if (!Number.isInteger(k) || k < 1 || k >= SS) throw new InvalidInputError(`slices must be between 1 and ${SS - 1} for subscale factor ${m.subscaleFactor}`);
    starts = m.stages.map((s) => Math.max(s.firstSlice, k));
  }
  if (!m.stages.some((s, i) => i <= stopAfter && starts[i] < s.lastSlice)) {
    throw new InvalidInputError('nothing to generate: every stage up to stopAfter is given by the condition');
  }
  // keep[k]: the bits of slice k that come from the given image
  const keep = new Array<number>(SS).fill(0);
  m.stages.forEach((s, i) => {
    const bits = ((1 << s.bits) - 1) << s.shift;
    for (let k = s.firstSlice; k < Math.min(starts[i], s.lastSlice); k++) keep[k] |= bits;
  });
  const S = m.subscaleFactor;
  const sliceOf = sliceIndexByOffset({ subscale: S, order: m.sliceOrder });
  const image = new Uint8Array(height * width * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = sliceOf[(y % S) * S + (x % S)];
      for (let c = 0; c < channels; c++) {
        const p = (y * width + x) * channels + c;
        image[p] = condition.image.data[p] & keep[k];
      }
    }
  }
  return { starts, stopAfter, image };
}

