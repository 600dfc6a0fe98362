// The likelihood is autoregressive in the generation order, for every shipped model: changing a
// sub-pixel leaves the bits of everything generated before it exactly as they were, changes its
// own, and (the model does use its context) changes some of what comes after. A leak of a later
// value into an earlier conditional would make every reported bits/dim too good. And the sampler,
// which draws each value before the next exists, reports the same NLL for an image as scoring it
// does: the graphs that score (teacher-forced) and those that sample (step by step) agree.
import t from 'tap';
import { createRuntime, type LikelihoodResult, type SpnRuntime } from '../../src/runtime/index.js';
import { MODELS_DIR, readFixtures } from './fixtures.js';
import { collect, doneOf, quietLogger } from './helpers.js';

const SHIPPED = ['mu-fmnist', 'spn8-fmnist', 'tiny-c1', 'tiny-c3'];

interface Order { S: number; h: number; w: number; rank: (y: number, x: number) => number; sliceOf: (y: number, x: number) => number }

/** Each pixel's place in the generation order: its slice's place in sliceOrder, then raster in the slice. */
function orderOf(rt: SpnRuntime, name: string): Order {
  const m = rt.model(name)!;
  const S = m.subscaleFactor;
  const h = m.image.height / S;
  const w = m.image.width / S;
  const sliceOf = (y: number, x: number) => m.sliceOrder.findIndex(([i, j]) => i === y % S && j === x % S);
  return { S, h, w, sliceOf, rank: (y, x) => sliceOf(y, x) * h * w + Math.floor(y / S) * w + Math.floor(x / S) };
}

async function score(rt: SpnRuntime, name: string, data: Uint8Array): Promise<LikelihoodResult> {
  const { image } = rt.model(name)!;
  return rt.likelihood({ model: name, image: { height: image.height, width: image.width, channels: image.channels, data }, perPixel: true });
}

t.test('changing a sub-pixel changes nothing generated before it', async (t) => {
  const rt = await createRuntime({ modelsDir: MODELS_DIR, models: SHIPPED, provider: 'cpu', workers: 1, threads: 1, maxQueue: 8, maxRunning: 8, logger: quietLogger });
  t.teardown(() => rt.close());
  for (const name of SHIPPED) {
    const m = rt.model(name)!;
    const { height: H, width: W, channels: C } = m.image;
    const o = orderOf(rt, name);
    const x = Uint8Array.from(readFixtures(name).nll[0].image);
    const base = await score(rt, name, x);
    // the last stage's bits (the single stage, or the depth upscaler's low bits): a change there
    // leaves every earlier stage's bits, so the per-pixel total before the pixel must not move
    const last = m.stages[m.stages.length - 1];
    const lowMask = ((1 << last.bits) - 1) << last.shift;
    // pixels early in a slice, in the middle of one, and in the last slice
    const picks: [number, number][] = [[0, 0], [Math.floor(H / 2), Math.floor(W / 2) + 1], [H - 1, W - 2], [o.S + 1, o.S * 3]];
    for (const [y, x0] of picks) {
      for (let c = 0; c < C; c++) {
        const p = (y * W + x0) * C + c;
        const changed = x.slice();
        changed[p] = (x[p] & ~lowMask) | ((x[p] ^ lowMask) & lowMask);   // every bit of the last stage flipped
        const r = await score(rt, name, changed);
        const before: number[] = [];
        const after: number[] = [];
        for (let q = 0; q < H * W; q++) {
          const [qy, qx] = [Math.floor(q / W), q % W];
          const d = Math.abs(r.perPixelBits![q] - base.perPixelBits![q]);
          if (o.rank(qy, qx) < o.rank(y, x0)) before.push(d);
          else if (o.rank(qy, qx) > o.rank(y, x0)) after.push(d);
        }
        const what = `${name}: (${y}, ${x0}) channel ${c}, place ${o.rank(y, x0)} of ${H * W}`;
        t.equal(before.filter((d) => d > 1e-5).length, 0, `${what}: the ${before.length} pixels before it keep their bits (largest change ${Math.max(0, ...before).toExponential(1)})`);
        t.ok(Math.abs(r.perPixelBits![y * W + x0] - base.perPixelBits![y * W + x0]) > 1e-4, `${what}: its own bits change`);
        if (after.length) t.ok(after.some((d) => d > 1e-4), `${what}: some of the ${after.length} after it change`);
        // and each earlier stage's total stays as it was
        for (let s = 0; s < m.stages.length - 1; s++) t.ok(Math.abs(r.stages[s].bits - base.stages[s].bits) < 1e-6, `${what}: stage ${m.stages[s].name} unchanged`);
      }
    }
    // a multi-stage model: a change of the high bits (an upscaler's) leaves the slices the
    // size upscaler made before the pixel's slice, and the small image, as they were
    const size = m.stages.find((s) => s.firstSlice > 0);
    if (size) {
      const y = H - 1;
      const x0 = W - 2;   // the last row's second-to-last column: the slice before the last one
      const k = o.sliceOf(y, x0);
      const hiMask = ((1 << size.bits) - 1) << size.shift;
      const changed = x.slice();
      for (let c = 0; c < C; c++) changed[(y * W + x0) * C + c] ^= hiMask;
      const r = await score(rt, name, changed);
      const si = m.stages.indexOf(size);
      const slicesOf = (res: LikelihoodResult) => res.stages[si].slices.map((s) => [s.slice, s.bits] as const);
      const moved = slicesOf(r).filter(([sl, b], i) => Math.abs(b - slicesOf(base)[i][1]) > 1e-6).map(([sl]) => sl);
      t.ok(moved.length > 1 && Math.min(...moved) === k, `${name}: high bits at (${y}, ${x0}), slice ${k}: the size upscaler's slices that moved start there and go on (${moved.join(', ')})`);
      t.ok(Math.abs(r.stages[0].bits - base.stages[0].bits) < 1e-6, `${name}: the small image's bits unchanged`);
    }
  }
});

t.test('the NLL the sampler reports for an image is its likelihood', async (t) => {
  const rt = await createRuntime({ modelsDir: MODELS_DIR, models: SHIPPED, provider: 'cpu', workers: 1, threads: 1, maxQueue: 8, maxRunning: 8, logger: quietLogger });
  t.teardown(() => rt.close());
  for (const name of SHIPPED) {
    const done = doneOf(await collect(rt.sample({ model: name, count: 3, seed: 11, temperature: 1 })));
    t.equal(done.images.length, 3, `${name}: three images`);
    for (const [i, img] of done.images.entries()) {
      const r = await score(rt, name, img.data);
      t.ok(Math.abs(r.bitsPerDim - done.bitsPerDim[i]) < 1e-4, `${name} sample ${i}: scored ${r.bitsPerDim.toFixed(6)}, sampled ${done.bitsPerDim[i].toFixed(6)} bits/dim`);
    }
  }
});
