// The runtime reproduces what PyTorch computed at export time: NLL within 1e-4 bits/dim, and the
// same sampled pixels for the same uniforms, for every stage and the whole pipeline.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createRuntime, type SampleEvent } from '../../src/runtime/index.js';
import { MODELS_DIR, fixtureUniforms, readFixtures } from './fixtures.js';

// every shipped model that has fixtures: the trained ones and the tiny C = 1 / C = 3 ones
const models = readdirSync(MODELS_DIR).filter((n) => existsSync(join(MODELS_DIR, n, 'fixtures.json'))).sort();

async function finalImages(gen: AsyncGenerator<SampleEvent>): Promise<number[][]> {
  for await (const ev of gen) if (ev.type === 'done') return ev.images.map((i) => [...i.data]);
  throw new Error('no done event');
}

t.ok(models.includes('tiny-c1') && models.includes('tiny-c3'), `models with fixtures: ${models.join(', ')}`);

// both decoders: one run per row (in-graph loop) and one run per sub-pixel
for (const decode of ['row', 'pixel'] as const) t.test(`parity with the PyTorch fixtures, ${decode} decoder`, async (t) => {
  const rt = await createRuntime({ modelsDir: MODELS_DIR, provider: 'cpu', workers: 1, threads: 1, maxQueue: 8, maxRunning: 8, decode });
  t.teardown(() => rt.close());
  for (const name of models) {
    const f = readFixtures(name);
    const m = rt.model(name)!;
    const { height, width, channels } = m.image;
    const dims = height * width * channels;
    const stageNames = m.stages.map((s) => s.name);

    if (decode === 'row') await t.test(`${name}: likelihood per stage and slice`, async (t) => {
      for (const c of f.nll) {
        const res = await rt.likelihood({ model: name, image: { height, width, channels, data: Uint8Array.from(c.image) } });
        t.ok(Math.abs(res.bitsPerDim - c.bits_per_dim) < 1e-4, `bits/dim ${res.bitsPerDim} vs ${c.bits_per_dim}`);
        for (const [i, st] of c.stages.entries()) {
          t.ok(Math.abs(res.stages[i].nats - st.nats) / Math.LN2 / dims < 1e-4, `stage ${st.stage}: ${res.stages[i].nats} vs ${st.nats} nats`);
          for (const [j, sl] of st.slices.entries()) {
            t.equal(res.stages[i].slices[j].slice, sl.slice);
            t.ok(Math.abs(res.stages[i].slices[j].bits - sl.nats / Math.LN2) / dims < 1e-4, `slice ${sl.slice}`);
          }
        }
      }
    });

    for (const tf of f.sampling.temperatures) {
      await t.test(`${name}: sampling at temperature ${tf.temperature}`, async (t) => {
        const B = f.nll.length;
        const uniforms = Array.from({ length: B }, (_, b) => fixtureUniforms(f, stageNames, b));
        const base = { model: name, count: B, seed: 0, temperature: tf.temperature, uniforms };
        // whole pipeline from scratch
        const pipe = await finalImages(rt.sample(base));
        t.same(pipe, tf.pipeline.images, 'pipeline images equal PyTorch');
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
      });
    }
  }
});
