// The Python side end to end, as CI runs it: the tiny configurations (C = 1 and C = 3) train for a
// few steps and export; every exported graph then loads in onnxruntime-node, matches its manifest,
// and runs at a batch size other than the one it was exported with. A copy of tiny-c1 trained to
// generate its slices in another order than raster is served in the order its manifest gives: the
// runtime reproduces that export's fixtures.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import t, { type Test } from 'tap';
import { GRAPH_KINDS, loadModels } from '../../src/runtime/manifest.js';
import { collect, doneOf, quietLogger } from '../runtime/helpers.js';
import { createRuntime, type SampleEvent, type SpnRuntime } from '../../src/runtime/index.js';
import { fixtureUniforms, readFixtures } from '../runtime/fixtures.js';
import { likelihoodParity, samplingParity } from '../runtime/parity-checks.js';

const root = new URL('../../..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'spn-export-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

t.test('tiny configurations train, export and run in onnxruntime-node', async (t) => {
  const runs = join(work, 'runs');
  const models = join(work, 'models');
  execFileSync(join(root, 'scripts', 'build-tiny-models.sh'), [runs, models], { cwd: root, stdio: 'pipe', timeout: 600_000 });
  const loaded = await loadModels(models);
  t.same(loaded.map((m) => m.manifest.name), ['tiny-c1', 'tiny-c3']);
  for (const m of loaded) {
    const train = JSON.parse(readFileSync(join(runs, m.manifest.name, 'small', 'train.json'), 'utf8'));
    t.equal(train.steps, 60, `${m.manifest.name}: trained the steps asked for`);
    t.ok(m.manifest.evaluation && m.manifest.evaluation.testBitsPerDim > 0, 'test bits/dim in the manifest');
    for (const st of m.manifest.stages) {
      for (const kind of GRAPH_KINDS) {
        const g = st.graphs[kind];
        const s = await ort.InferenceSession.create(m.paths[st.name][kind]);
        t.same(s.inputNames, g.inputs.map((i) => i.name), `${m.manifest.name}/${st.name}/${kind} inputs`);
        const B = 3;
        const feeds: Record<string, ort.Tensor> = {};
        for (const i of g.inputs) {
          const shape = i.shape.map((d) => (typeof d === 'number' ? d : B));
          const n = shape.reduce((a, b) => a * b, 1);
          feeds[i.name] = i.dtype === 'float32' ? new ort.Tensor('float32', new Float32Array(n).fill(0.5), shape) : new ort.Tensor('int32', new Int32Array(n), shape);
        }
        const out = await s.run(feeds);
        for (const o of g.outputs) {
          const dims = out[o.name].dims;
          t.equal(dims[0], B, `${kind}.${o.name}: dynamic batch`);
          o.shape.forEach((d, k) => { if (typeof d === 'number' && d !== dims[k]) t.fail(`${kind}.${o.name} dim ${k}: ${dims[k]} != ${d}`); });
        }
        await s.release();
      }
    }
  }
  // training resumes from its checkpoint
  const out = execFileSync(process.env.PYTHON ?? '/usr/bin/python3',
    [join(root, 'scripts', 'train.py'), '--config', 'tiny-c1', '--stage', 'small', '--steps', '70', '--runs', runs, '--threads', '1'],
    { cwd: root, encoding: 'utf8', timeout: 300_000 });
  t.match(out, /resumed from step 60/, 'resumed from the last checkpoint');
  t.equal(JSON.parse(readFileSync(join(runs, 'tiny-c1', 'small', 'train.json'), 'utf8')).steps, 70, 'and went on to step 70');
  // a configuration trains the same way every time: seeded initial weights and draws (they were not)
  const evals = ['again-a', 'again-b'].map((dir) => {
    execFileSync(process.env.PYTHON ?? '/usr/bin/python3',
      [join(root, 'scripts', 'train.py'), '--config', 'tiny-c1', '--stage', 'small', '--steps', '20', '--runs', join(work, dir), '--threads', '1'],
      { cwd: root, stdio: 'pipe', timeout: 300_000 });
    return JSON.parse(readFileSync(join(work, dir, 'tiny-c1', 'small', 'train.json'), 'utf8')).evals.map((e: { val_bits_per_dim: number }) => e.val_bits_per_dim);
  });
  t.same(evals[0], evals[1], `two runs of one configuration validate alike (${evals[0].join(', ')})`);
  // a run that stopped early stays stopped when re-run (it trained on by one evaluation a re-run)
  const py = process.env.PYTHON ?? '/usr/bin/python3';
  const early = join(work, 'early');
  const trainEarly = () => execFileSync(py, [join(root, 'scripts', 'train.py'), '--config', 'tiny-c1', '--stage', 'small', '--steps', '400', '--patience', '1', '--runs', early, '--threads', '1'],
    { cwd: root, encoding: 'utf8', timeout: 300_000 });
  const first = trainEarly();
  const stoppedAt = JSON.parse(readFileSync(join(early, 'tiny-c1', 'small', 'train.json'), 'utf8')).steps;
  t.match(first, /early stop/, `stopped early at step ${stoppedAt}`);
  t.ok(stoppedAt < 400, 'before the step budget');
  t.match(trainEarly(), new RegExp(`stopped early at step ${stoppedAt}: `), 'a re-run says so');
  t.equal(JSON.parse(readFileSync(join(early, 'tiny-c1', 'small', 'train.json'), 'utf8')).steps, stoppedAt, 'and trains no further');
  // arguments that would train nothing, or no stage, are refused by name
  for (const [args, message] of [[['--stage', 'smal'], /tiny-c1 has no stage 'smal'; its stages: small, size, depth/],
    [['--stage', 'small', '--minutes', '0'], /--minutes must be more than 0/], [['--stage', 'small', '--patience', '0'], /--patience must be at least 1/]] as const) {
    let err = '';
    try {
      execFileSync(py, [join(root, 'scripts', 'train.py'), '--config', 'tiny-c1', '--runs', join(work, 'refused'), ...args], { cwd: root, stdio: 'pipe', encoding: 'utf8' });
    } catch (e) {
      err = String((e as { stderr?: string }).stderr);
    }
    t.match(err, message, `train.py ${args.join(' ')}: refused`);
  }
  // the manifest's test figure is of the checkpoints exported: a figure of another step is refused
  // (as when training went on after evaluate.py)
  const evalPath = join(runs, 'tiny-c1', 'eval.json');
  const ev = JSON.parse(readFileSync(evalPath, 'utf8'));
  const step = JSON.parse(readFileSync(join(runs, 'tiny-c1', 'small', 'train.json'), 'utf8')).evals
    .reduce((best: { val_bits_per_dim: number; step: number }, e: { val_bits_per_dim: number; step: number }) => (e.val_bits_per_dim < best.val_bits_per_dim ? e : best)).step;
  writeFileSync(evalPath, JSON.stringify({ ...ev, stages: { ...ev.stages, small: { ...ev.stages.small, checkpoint_step: step - 1 } } }));
  let stale = '';
  try {
    execFileSync(process.env.PYTHON ?? '/usr/bin/python3', [join(root, 'scripts', 'export.py'), '--config', 'tiny-c1', '--runs', runs, '--models', join(work, 'stale')], { cwd: root, stdio: 'pipe', encoding: 'utf8' });
  } catch (err) {
    stale = String((err as { stderr?: string }).stderr);
  }
  t.match(stale, new RegExp(`eval\\.json scored small/best\\.pt of step ${step - 1}; it is now of step ${step}: run evaluate\\.py`), 'a stale test figure is not exported');
  writeFileSync(evalPath, JSON.stringify(ev));
  // and the runtime serves them: one sample from each, colour included
  const rt = await createRuntime({ modelsDir: models, provider: 'cpu', workers: 1, threads: 1, maxQueue: 4, maxRunning: 4, logger: quietLogger });
  t.teardown(() => rt.close());
  for (const name of ['tiny-c1', 'tiny-c3']) {
    const d = doneOf(await collect(rt.sample({ model: name, count: 1, seed: 3, temperature: 1 })));
    t.equal(d.images[0].data.length, 28 * 28 * (name === 'tiny-c3' ? 3 : 1));
  }
});

/** Trains (a few steps) and exports a copy of a tiny configuration with `changes`; answers the models folder. */
function trainVariant(base: string, name: string, changes: Record<string, unknown>): string {
  const py = process.env.PYTHON ?? '/usr/bin/python3';
  const runs = join(work, `${name}-runs`);
  const models = join(work, `${name}-models`);
  const config = join(work, `${name}.json`);
  writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(join(root, 'scripts', 'configs', `${base}.json`), 'utf8')), name, ...changes }));
  for (const stage of ['small', 'size', 'depth']) {
    execFileSync(py, [join(root, 'scripts', 'train.py'), '--config', config, '--stage', stage, '--steps', '30', '--runs', runs, '--threads', '1'], { cwd: root, stdio: 'pipe', timeout: 300_000 });
  }
  execFileSync(py, [join(root, 'scripts', 'export.py'), '--config', config, '--runs', runs, '--models', models], { cwd: root, stdio: 'pipe', timeout: 300_000 });
  return models;
}

/** The runtime reproduces a fresh export's own fixtures: NLL per stage and slice, sampled pixels. */
async function selfParity(t: Test, rt: SpnRuntime, name: string, models: string, what: string): Promise<void> {
  const f = readFixtures(name, models);
  await t.test(`likelihood per stage and slice, as PyTorch scores ${what}`, (t) => likelihoodParity(t, rt, name, f));
  for (const tf of f.sampling.temperatures) {
    await t.test(`sampling at temperature ${tf.temperature}, the pixels PyTorch samples ${what}`, (t) => samplingParity(t, rt, name, f, tf));
  }
}

t.test('a model trained in another slice order is served in that order', async (t) => {
  // tiny-c1 (subscale 4: 16 slices), its slices generated bottom-right first: the small image is
  // the slice at offset [3, 3], then the rest in a fixed shuffle
  const order = [[3, 3], [0, 0], [2, 1], [1, 3], [0, 2], [3, 0], [1, 1], [2, 3], [0, 1], [3, 2], [1, 0], [2, 2], [0, 3], [3, 1], [1, 2], [2, 0]];
  const models = trainVariant('tiny-c1', 'tiny-order', { slice_order: order });
  const rt = await createRuntime({ modelsDir: models, provider: 'cpu', workers: 1, threads: 1, maxQueue: 8, maxRunning: 8, logger: quietLogger });
  t.teardown(() => rt.close());
  t.same(rt.model('tiny-order')!.sliceOrder, order, 'the manifest\'s order, reported');
  await selfParity(t, rt, 'tiny-order', models, 'in that order');
  // slices come out in that order, at their offsets; the first (the small image) at [3, 3]
  const offsets = slicesOf(await collect(rt.sample({ model: 'tiny-order', count: 1, seed: 1, temperature: 1 })));
  t.same(offsets.slice(0, 1), [{ stage: 'small', slice: 0, offset: [3, 3] }], 'the small image is the slice at [3, 3]');
  t.same(offsets.filter((o) => o.stage === 'size').map((o) => o.offset), order.slice(1), 'the size upscaler makes the others in order');
  // the checkpoints were trained in that order: exporting them under raster order is refused
  const raster = join(work, 'tiny-order-raster.json');
  writeFileSync(raster, JSON.stringify({ ...JSON.parse(readFileSync(join(work, 'tiny-order.json'), 'utf8')), slice_order: undefined }));
  let refused = '';
  try {
    execFileSync(process.env.PYTHON ?? '/usr/bin/python3', [join(root, 'scripts', 'export.py'), '--config', raster, '--runs', join(work, 'tiny-order-runs'), '--models', join(work, 'x')], { cwd: root, stdio: 'pipe', encoding: 'utf8' });
  } catch (err) {
    refused = String((err as { stderr?: string }).stderr);
  }
  t.match(refused, /best\.pt was trained with slice_order \[\[3, 3\], .*\]; the config now says \[\[0, 0\], .*: train afresh/, 'a checkpoint is not exported under another order');
});

t.test('a colour model trained in another channel order takes and gives RGB images', async (t) => {
  // tiny-c3 generating a pixel's blue first, then red, then green
  const models = trainVariant('tiny-c3', 'tiny-brg', { channel_order: ['B', 'R', 'G'] });
  const rt = await createRuntime({ modelsDir: models, provider: 'cpu', workers: 1, threads: 1, maxQueue: 8, maxRunning: 8, logger: quietLogger });
  t.teardown(() => rt.close());
  t.same(rt.model('tiny-brg')!.image.channelOrder, ['B', 'R', 'G']);
  // the fixtures' images are RGB, as images are; the model's channels are B, R, G
  await selfParity(t, rt, 'tiny-brg', models, 'with its channels in that order');
  // a slice event's values and image are R, G, B too: with the fixtures' uniforms, every depth
  // slice's values are the low bits of PyTorch's R, G, B pipeline image at its pixels, and the last
  // slice's image is that image
  const f = readFixtures('tiny-brg', models);
  const tf = f.sampling.temperatures[0];
  const B = f.nll.length;
  const uniforms = Array.from({ length: B }, (_, b) => fixtureUniforms(f, ['small', 'size', 'depth'], b));
  const events = await collect(rt.sample({ model: 'tiny-brg', count: B, seed: 0, temperature: tf.temperature, uniforms }));
  for (let b = 0; b < B; b++) {
    const want = tf.pipeline.images[b];
    const slices = events.flatMap((e) => (e.type === 'slice' && e.sample === b ? [e] : []));
    t.same([...slices.at(-1)!.image.data], want, `sample ${b}: the last slice's image is PyTorch's, R, G, B`);
    const depth = slices.filter((e) => e.stage === 'depth');
    t.equal(depth.length, 4);
    const wrong = depth.flatMap((e) => {
      const [i, j] = e.offset;
      return Array.from(e.values).filter((v, n) => {
        const [r, q, c] = [Math.floor(n / 3 / 14), Math.floor(n / 3) % 14, n % 3];
        return v !== (want[((r * 2 + i) * 28 + q * 2 + j) * 3 + c] & 31);
      });
    });
    t.equal(wrong.length, 0, `sample ${b}: every depth slice's values are PyTorch's R, G, B low bits`);
  }
});

function slicesOf(events: SampleEvent[]): { stage: string; slice: number; offset: number[] }[] {
  return events.flatMap((e) => (e.type === 'slice' ? [{ stage: e.stage, slice: e.slice, offset: [...e.offset] }] : []));
}
