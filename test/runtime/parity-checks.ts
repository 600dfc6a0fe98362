// The parity checks of one model against the fixtures its export wrote: NLL per stage and slice
// within 1e-4 bits/dim, and the same sampled pixels for the same uniforms, for the whole pipeline
// and each stage alone, and for the pipeline still with every uniform moved by half its distance
// to a bin edge. Used for the shipped models (parity.test.ts) and for fresh exports
// (test/export/tiny-export.test.ts).
import type { Test } from 'tap';
import type { SampleEvent, SpnRuntime } from '../../src/runtime/index.js';
import { fixtureUniforms, type Fixtures } from './fixtures.js';

async function finalImages(gen: AsyncGenerator<SampleEvent>): Promise<number[][]> {
  for await (const ev of gen) if (ev.type === 'done') return ev.images.map((i) => [...i.data]);
  throw new Error('no done event');
}

export async function likelihoodParity(t: Test, rt: SpnRuntime, name: string, f: Fixtures): Promise<void> {
  const m = rt.model(name)!;
  const { height, width, channels } = m.image;
  const dims = height * width * channels;
  for (const c of f.nll) {
    const res = await rt.likelihood({ model: name, image: { height, width, channels, data: Uint8Array.from(c.image) } });
    t.ok(Math.abs(res.bitsPerDim - c.bits_per_dim) < 1e-4, `bits/dim ${res.bitsPerDim} vs ${c.bits_per_dim}`);
    t.same(res.stages.map((s) => [s.stage, s.slices.map((x) => x.slice)]), c.stages.map((s) => [s.stage, s.slices.map((x) => x.slice)]), 'the stages and slices PyTorch scored, in its order');
    for (const [i, st] of c.stages.entries()) {
      t.ok(Math.abs(res.stages[i].nats - st.nats) / Math.LN2 / dims < 1e-4, `stage ${st.stage}: ${res.stages[i].nats} vs ${st.nats} nats`);
      for (const [j, sl] of st.slices.entries()) {
        t.equal(res.stages[i].slices[j].slice, sl.slice);
        t.ok(Math.abs(res.stages[i].slices[j].bits - sl.nats / Math.LN2) / dims < 1e-4, `slice ${sl.slice}`);
      }
    }
  }
}

export async function samplingParity(t: Test, rt: SpnRuntime, name: string, f: Fixtures, tf: Fixtures['sampling']['temperatures'][number]): Promise<void> {
  const m = rt.model(name)!;
  const { height, width, channels } = m.image;
  const B = f.nll.length;
  const uniforms = Array.from({ length: B }, (_, b) => fixtureUniforms(f, m.stages.map((s) => s.name), b));
  const base = { model: name, count: B, seed: 0, temperature: tf.temperature, uniforms };
  // whole pipeline from scratch
  const pipe = await finalImages(rt.sample(base));
  t.same(pipe, tf.pipeline.images, 'pipeline images equal PyTorch');
  // the export keeps every uniform at least its target distance (in probability) from the edges of
  // the bins it falls in (least: the smallest distance): moved by half that, either way, each still
  // picks the same value here, so float32 rounding that differs from PyTorch's cannot decide a pixel
  const { least, target } = f.sampling.uniform_margin;
  t.ok(target >= 1e-5 && least >= 0.99 * target, `uniforms at least ${least} from a bin edge (the export's target: ${target})`);
  for (const d of [least / 2, -least / 2]) {
    const moved = uniforms.map((perStage) => perStage.map((u) => u.map((x) => x + d)));
    t.same(await finalImages(rt.sample({ ...base, uniforms: moved })), tf.pipeline.images, `the same pixels with every uniform moved by ${d.toExponential(2)}`);
  }
  // each stage alone, conditioned on the fixture image's true earlier bits
  for (const [si, st] of m.stages.entries()) {
    const want = tf.stages[st.name].plane;
    const got: number[][] = [];
    for (let b = 0; b < B; b++) {
      const image = { height, width, channels, data: Uint8Array.from(f.nll[b].image) };
      const condition = si === 0 ? undefined
        : st.firstSlice > 0 ? { mode: 'upscale' as const, image } : { mode: 'add-depth' as const, image };
      const [img] = await finalImages(rt.sample({ ...base, count: 1, uniforms: [uniforms[b]], stopAfter: st.name, condition }));
      got.push(img.map((v) => (v >> st.shift) & ((1 << st.bits) - 1)));
    }
    // the stage's plane: slices it does not generate hold the given bits in both
    t.same(got, want, `stage ${st.name} samples equal PyTorch`);
  }
}
