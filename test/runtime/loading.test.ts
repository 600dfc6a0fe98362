// Models load from their manifests alone; anything missing, corrupt or mismatched stops start-up
// with an error naming the file. The execution provider falls back only when asked to.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ModelLoadError } from '../../src/runtime/errors.js';
import { loadModels, modelVersion, type Manifest } from '../../src/runtime/manifest.js';
import { MODELS_DIR, TINY_MODELS_DIR } from './fixtures.js';
import { CUDA_HERE, quietLogger, runtime } from './helpers.js';

function copyModel(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'spn-models-'));
  cpSync(join(MODELS_DIR, 'tiny-c1'), join(dir, 'tiny-c1'), { recursive: true });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A copy of tiny-c1 whose manifest `change` edited; answers the models folder. */
function modelWith(t: { teardown(fn: () => void): void }, change: (m: Manifest) => void): string {
  const dir = copyModel(t);
  const mf = join(dir, 'tiny-c1', 'manifest.json');
  const m = JSON.parse(readFileSync(mf, 'utf8'));
  change(m);
  writeFileSync(mf, JSON.stringify(m));
  return dir;
}

t.test('only the models asked for are loaded; a name that is not there stops start-up, naming what is', async (t) => {
  const rt = await runtime({ models: ['tiny-c3'] });
  t.teardown(() => rt.close());
  t.same(rt.models().map((m) => m.name), ['tiny-c3']);
  t.equal(rt.defaultModel(), 'tiny-c3');
  t.same((await loadModels(TINY_MODELS_DIR, ['tiny-c1', 'tiny-c3'])).map((m) => m.manifest.name), ['tiny-c1', 'tiny-c3']);
  await t.rejects(runtime({ models: ['tiny-c1', 'nope', 'gone'] }), { name: 'ModelLoadError', message: /no model named 'nope', 'gone' \(there: tiny-c1, tiny-c3\)/ });
  // a corrupt model that is not asked for is not read
  const dir = copyModel(t);
  cpSync(join(MODELS_DIR, 'tiny-c3'), join(dir, 'tiny-c3'), { recursive: true });
  writeFileSync(join(dir, 'tiny-c3', 'small', 'score.onnx'), 'corrupt');
  await t.rejects(runtime({ modelsDir: dir }), { message: /tiny-c3\/small\/score\.onnx/ }, 'every model: the corrupt one stops start-up');
  const only = await runtime({ modelsDir: dir, models: ['tiny-c1'] });
  t.same(only.models().map((m) => m.name), ['tiny-c1'], 'only tiny-c1: it is never read');
  await only.close();
  // a model whose manifest is not even JSON, not asked for: it stops nothing, and is named when a name is not found
  writeFileSync(join(dir, 'tiny-c3', 'manifest.json'), '{"name": "tiny-c3", trunc');
  const still = await runtime({ modelsDir: dir, models: ['tiny-c1'] });
  t.same(still.models().map((m) => m.name), ['tiny-c1'], 'an unreadable manifest of a model not asked for stops nothing');
  await still.close();
  await t.rejects(runtime({ modelsDir: dir, models: ['tiny-c3'] }), {
    name: 'ModelLoadError',
    message: /no model named 'tiny-c3' \(there: tiny-c1; manifests that could not be read: .*tiny-c3\/manifest\.json \(not valid JSON: /,
  }, 'asked for, it is not found, and the unreadable manifest is named');
  await t.rejects(runtime({ modelsDir: dir }), { name: 'ModelLoadError', message: /tiny-c3\/manifest\.json/ }, 'every model: the unreadable manifest stops start-up');
});

t.test('two folders whose manifests give one name stop start-up, naming both (one hid the other)', async (t) => {
  const dir = copyModel(t);
  cpSync(join(MODELS_DIR, 'tiny-c3'), join(dir, 'zz-copy'), { recursive: true });
  const file = join(dir, 'zz-copy', 'manifest.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), name: 'tiny-c1' }));
  const both = /zz-copy\/manifest\.json: model name 'tiny-c1' is also the name in .*tiny-c1\/manifest\.json: each model needs its own name/;
  await t.rejects(runtime({ modelsDir: dir }), { name: 'ModelLoadError', message: both }, 'every model');
  await t.rejects(runtime({ modelsDir: dir, models: ['tiny-c1'] }), { name: 'ModelLoadError', message: both }, 'that name asked for');
});

t.test('a corrupt graph file stops start-up, naming the file', async (t) => {
  const dir = copyModel(t);
  const file = join(dir, 'tiny-c1', 'size', 'decoder_pixel.onnx');
  const bytes = readFileSync(file);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(file, bytes);
  await t.rejects(runtime({ modelsDir: dir }), { name: 'ModelLoadError', message: /size\/decoder_pixel\.onnx: sha256 mismatch/ });
});

t.test('a missing graph file stops start-up, naming the file', async (t) => {
  const dir = copyModel(t);
  rmSync(join(dir, 'tiny-c1', 'depth', 'score.onnx'));
  await t.rejects(runtime({ modelsDir: dir }), { message: /depth\/score\.onnx: missing graph file/ });
});

t.test('a graph whose inputs differ from the manifest stops start-up', async (t) => {
  const dir = copyModel(t);
  const mf = join(dir, 'tiny-c1', 'manifest.json');
  const m = JSON.parse(readFileSync(mf, 'utf8'));
  m.stages[0].graphs.decoder_row.inputs[2].name = 'row_index';
  writeFileSync(mf, JSON.stringify(m));
  await t.rejects(runtime({ modelsDir: dir }), { message: /small\/decoder_row\.onnx: inputs are \[prev_row, context_row, row, vcaches\], manifest declares \[prev_row, context_row, row_index, vcaches\]/ });
});

t.test('a dtype or shape the graph does not take stops start-up, naming the file (it was onnxruntime\'s message alone)', async (t) => {
  for (const [what, change] of [
    ['dtype', (m: { stages: Array<{ graphs: Record<string, { inputs: Array<{ dtype: string; shape: unknown[] }> }> }> }) => { m.stages[1].graphs.conditioning.inputs[0].dtype = 'float32'; }],
    ['shape', (m: { stages: Array<{ graphs: Record<string, { inputs: Array<{ dtype: string; shape: unknown[] }> }> }> }) => { m.stages[1].graphs.conditioning.inputs[0].shape[1] = 15; }],
  ] as const) {
    const dir = modelWith(t, change);
    await t.rejects(runtime({ modelsDir: dir }), { name: 'ModelLoadError', message: /size\/conditioning\.onnx: a run on the inputs the manifest declares failed \(.+\)/ }, what);
  }
  // with two workers, the one that fails first is not 'replaced' (a worker that never served was
  // started again while the other still loaded, and its exit logged as a crash)
  const dir = copyModel(t);
  const mf = join(dir, 'tiny-c1', 'manifest.json');
  const m = JSON.parse(readFileSync(mf, 'utf8'));
  m.stages[1].graphs.conditioning.inputs[0].dtype = 'float32';
  writeFileSync(mf, JSON.stringify(m));
  const logged: string[] = [];
  const logger = { info() {}, warn: (_o: unknown, msg?: string) => void logged.push(String(msg)), error: (_o: unknown, msg?: string) => void logged.push(String(msg)) };
  await t.rejects(runtime({ modelsDir: dir, workers: 2, logger }), { name: 'ModelLoadError' });
  await new Promise((r) => setTimeout(r, 1000));
  t.same(logged.filter((l) => /replac/.test(l)), [], 'no replacement started or failed');
});

t.test('a graph whose outputs differ in dtype or shape from the manifest stops start-up, naming both', async (t) => {
  for (const [what, change, message] of [
    ['dtype', (m: { stages: Array<{ graphs: Record<string, { outputs: Array<{ dtype: string; shape: unknown[] }> }> }> }) => { m.stages[2].graphs.score.outputs[0].dtype = 'int32'; },
      /depth\/score\.onnx: output 'nll' is float32, the manifest declares int32/],
    ['rank', (m: { stages: Array<{ graphs: Record<string, { outputs: Array<{ dtype: string; shape: unknown[] }> }> }> }) => { m.stages[0].graphs.conditioning.outputs[0].shape.push(2); },
      /small\/conditioning\.onnx: output 'context' has shape \[1, 8, 7, 7\] at batch 1, the manifest declares \[batch, 8, .*, 2\]/],
    ['a fixed dimension', (m: { stages: Array<{ graphs: Record<string, { outputs: Array<{ dtype: string; shape: unknown[] }> }> }> }) => { m.stages[0].graphs.conditioning.outputs[0].shape[1] = 9; },
      /small\/conditioning\.onnx: output 'context' has shape \[1, 8, 7, 7\] at batch 1, the manifest declares \[batch, 9, /],
  ] as const) {
    const dir = modelWith(t, change);
    await t.rejects(runtime({ modelsDir: dir }), { name: 'ModelLoadError', message }, what);
  }
});

t.test('a graph file outside the model\'s folder stops start-up', async (t) => {
  const dir = copyModel(t);
  cpSync(join(dir, 'tiny-c1'), join(dir, 'other'), { recursive: true });
  rmSync(join(dir, 'other', 'manifest.json'));   // graphs only: not a model of its own
  const mf = join(dir, 'tiny-c1', 'manifest.json');
  const m = JSON.parse(readFileSync(mf, 'utf8'));
  m.stages[0].graphs.score.file = '../other/small/score.onnx';   // the same bytes, so the sha256 matches
  writeFileSync(mf, JSON.stringify(m));
  await t.rejects(runtime({ modelsDir: dir, models: ['tiny-c1'] }), { name: 'ModelLoadError', message: /tiny-c1\/manifest\.json: stage 'small', score: graph file '\.\.\/other\/small\/score\.onnx' is outside the model's folder/ });
});

t.test('a manifest that cannot be read is said to be unreadable, not invalid JSON', async (t) => {
  const dir = copyModel(t);
  const mf = join(dir, 'tiny-c1', 'manifest.json');
  rmSync(mf);
  mkdirSync(mf);   // a folder where the file should be (EISDIR, as EACCES would be for a non-root user)
  await t.rejects(loadModels(dir, ['tiny-c1']), { name: 'ModelLoadError', message: /no model named 'tiny-c1' \(there: none; manifests that could not be read: .*tiny-c1\/manifest\.json \(cannot be read: EISDIR/ });
});

t.test('an invalid manifest names the field', async (t) => {
  const dir = copyModel(t);
  const mf = join(dir, 'tiny-c1', 'manifest.json');
  const m = JSON.parse(readFileSync(mf, 'utf8'));
  delete m.subscaleFactor;
  writeFileSync(mf, JSON.stringify(m));
  await t.rejects(runtime({ modelsDir: dir }), { message: /manifest\.json: invalid manifest at '\/subscaleFactor'/ });
  // a layout other than the one served (values pixel by pixel, channels interleaved)
  writeFileSync(mf, JSON.stringify({ ...m, subscaleFactor: 4, image: { ...m.image, layout: 'CHW' } }));
  await t.rejects(loadModels(dir), { message: /manifest\.json: invalid manifest at '\/image\/layout': Expected 'HWC'/ });
  await t.rejects(runtime({ modelsDir: join(dir, 'nothing') }), ModelLoadError);
});

t.test('a slice order that is not an order of the slices stops start-up, saying what is wrong', async (t) => {
  // tiny-c1 has subscale factor 4: 16 slices
  const raster = Array.from({ length: 16 }, (_, k) => [Math.floor(k / 4), k % 4]);
  for (const [what, order, message] of [
    ['missing', undefined, /invalid manifest at '\/sliceOrder'/],
    ['15 offsets', raster.slice(1), /sliceOrder \[\[0,1\],.*\] is not an order of the 16 slices: it has 15 offsets; subscale factor 4 makes 16 slices/],
    ['one twice', [...raster.slice(0, 15), [0, 0]], /sliceOrder .* is not an order of the 16 slices: offset \[0,0\] comes twice/],
    ['out of range', [...raster.slice(0, 15), [4, 0]], /sliceOrder .* is not an order of the 16 slices: offset 15 is \[4,0\]: an offset is \[i, j\] with 0 <= i, j < 4/],
  ] as const) {
    const dir = modelWith(t, (m) => { m.sliceOrder = order as number[][]; });
    await t.rejects(loadModels(dir), { name: 'ModelLoadError', message: new RegExp(`tiny-c1/manifest\\.json: ${message.source}`) }, what);
  }
});

t.test('a channel order that does not name each of the image\'s channels once stops start-up', async (t) => {
  for (const order of [['gray', 'gray'], [], ['gray', 'R']]) {
    const dir = modelWith(t, (m) => { m.image.channelOrder = order as string[]; });
    await t.rejects(loadModels(dir), { name: 'ModelLoadError', message: /tiny-c1\/manifest\.json: channelOrder .* must name each of the image's channels \(gray\) once/ }, JSON.stringify(order));
  }
});

t.test('a model\'s version changes with its graphs and with the orders and stages that feed them (same graphs, another channel order, sampled the same seed differently under one version)', async (t) => {
  const dir = copyModel(t);
  cpSync(join(MODELS_DIR, 'tiny-c3'), join(dir, 'tiny-c3'), { recursive: true });
  const mf = join(dir, 'tiny-c3', 'manifest.json');
  const original = JSON.parse(readFileSync(mf, 'utf8'));
  const versionWith = async (change: (m: typeof original) => void) => {
    const m = structuredClone(original);
    change(m);
    writeFileSync(mf, JSON.stringify(m));
    const [loaded] = await loadModels(dir, ['tiny-c3']);
    return modelVersion(loaded.manifest);
  };
  const base = await versionWith(() => {});
  t.match(base, /^[0-9a-f]{16}$/);
  t.not(await versionWith((m) => { m.image.channelOrder = ['B', 'R', 'G']; }), base, 'another channel order');
  t.not(await versionWith((m) => { m.sliceOrder = [m.sliceOrder[1], m.sliceOrder[0], ...m.sliceOrder.slice(2)]; }), base, 'another slice order');
  t.equal(await versionWith(() => {}), base, 'the same manifest, the same version');
});

t.test('provider: auto falls back to CPU with the cause; cuda fails without CUDA', async (t) => {
  const warnings: string[] = [];
  const rt = await runtime({ modelsDir: copyModel(t), provider: 'auto', logger: { ...quietLogger, warn: (_o: unknown, m?: string) => warnings.push(String(m ?? _o)) } });
  const m = rt.model('tiny-c1')!;
  await rt.close();
  if (CUDA_HERE) {
    t.equal(m.provider, 'cuda', 'CUDA is here: auto chose it');
    return;
  }
  t.equal(m.provider, 'cpu');
  t.match(m.providerNote, /CUDA execution provider unavailable, running on CPU: .+/);
  t.ok(warnings.some((w) => /CUDA execution provider unavailable/.test(w)), 'the fallback is logged');
  await t.rejects(runtime({ modelsDir: copyModel(t), provider: 'cuda' }), { message: /CUDA execution provider failed/ });
});

t.test('a load whose signal aborts stops: LoadCancelledError, and its workers are gone (a shutdown does not wait for the load)', async (t) => {
  const { LoadCancelledError } = await import('../../src/runtime/errors.js');
  const before = new AbortController();
  before.abort();
  await t.rejects(runtime({ signal: before.signal }), LoadCancelledError, 'aborted before it began');
  // four workers loading every shipped model (seconds of work here): abort 200 ms in
  const threads = () => readdirSync('/proc/self/task').length;
  const baseline = threads();
  const ac = new AbortController();
  const started = performance.now();
  const loading = runtime({ modelsDir: MODELS_DIR, workers: 4, signal: ac.signal });
  setTimeout(() => ac.abort(), 200);
  let peak = baseline;
  const watch = setInterval(() => { peak = Math.max(peak, threads()); }, 20);
  await t.rejects(loading, LoadCancelledError);
  clearInterval(watch);
  t.comment(`stopped ${Math.round(performance.now() - started)} ms after it began`);
  t.ok(peak >= baseline + 4, `the workers were running (${peak} threads at most, ${baseline} before)`);
  t.ok(threads() <= baseline, `and have left by the time it rejects (${threads()} threads, ${baseline} before)`);
});

t.test('closing the pool while its workers load does not terminate them (terminate() inside native session creation aborts the process): they leave after their graph', async (t) => {
  const { WorkerPool } = await import('../../src/runtime/pool.js');
  const { Worker } = await import('node:worker_threads');
  const models = await loadModels(MODELS_DIR);
  const pool = new WorkerPool(models, { workers: 2, threads: 1, provider: 'cpu', logger: quietLogger }, () => {});
  let terminated = 0;
  const terminate = Worker.prototype.terminate;
  Worker.prototype.terminate = function (this: InstanceType<typeof Worker>) { terminated++; return terminate.call(this); };
  t.teardown(() => { Worker.prototype.terminate = terminate; });
  const started = pool.start().then(() => 'loaded', (err: Error) => err.constructor.name);
  await new Promise((r) => setTimeout(r, 300));   // loading (every shipped model: seconds)
  await pool.close(1);   // a grace far shorter than a graph's load
  t.equal(terminated, 0, 'no worker terminated while loading');
  t.equal(await started, 'WorkerFailedError', 'the start fails: the pool closed');
  t.equal(pool.workers.length, 0, 'every worker gone');
});
