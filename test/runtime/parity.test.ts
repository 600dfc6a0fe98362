// The runtime reproduces what PyTorch computed at export time: NLL within 1e-4 bits/dim, and the
// same sampled pixels for the same uniforms, for every stage and the whole pipeline.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createRuntime } from '../../src/runtime/index.js';
import { MODELS_DIR, readFixtures } from './fixtures.js';
import { likelihoodParity, samplingParity } from './parity-checks.js';

// every shipped model that has fixtures: the trained ones and the tiny C = 1 / C = 3 ones
const models = readdirSync(MODELS_DIR).filter((n) => existsSync(join(MODELS_DIR, n, 'fixtures.json'))).sort();

t.ok(models.includes('tiny-c1') && models.includes('tiny-c3'), `models with fixtures: ${models.join(', ')}`);

// both decoders: one run per row (in-graph loop) and one run per sub-pixel
for (const decode of ['row', 'pixel'] as const) t.test(`parity with the PyTorch fixtures, ${decode} decoder`, async (t) => {
  const rt = await createRuntime({ modelsDir: MODELS_DIR, provider: 'cpu', workers: 1, threads: 1, maxQueue: 8, maxRunning: 8, decode });
  t.teardown(() => rt.close());
  for (const name of models) {
    const f = readFixtures(name);
    if (decode === 'row') await t.test(`${name}: likelihood per stage and slice`, (t) => likelihoodParity(t, rt, name, f));
    for (const tf of f.sampling.temperatures) {
      await t.test(`${name}: sampling at temperature ${tf.temperature}`, (t) => samplingParity(t, rt, name, f, tf));
    }
  }
});
