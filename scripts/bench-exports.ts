// `npm run bench:exports -- --a DIR --b DIR`: two exports of the same models (two model folders:
// another exporter, opset, graph pass or onnxruntime optimization), graph by graph, in one run.
// Every graph of every stage is fed the same seeded inputs in both, checked to compute the same
// (integer outputs, the sampled values among them, equal; float outputs within 1e-4, relative
// to their largest magnitude), and timed on one intra-op thread at each batch size, the two taking
// turns, best of the trials. The ratio is A's time over B's (above 1: B is faster).
// Writes a Markdown report to --out (default: standard output only).
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { GRAPH_KINDS, type Manifest } from '../src/runtime/manifest.js';
import type { GraphKind } from '../src/runtime/types.js';
import { bestMs, generatedAt, ONE_THREAD, rng } from './graph-variants.js';

const { values } = parseArgs({
  options: {
    a: { type: 'string' }, b: { type: 'string' }, 'a-name': { type: 'string', default: 'A' }, 'b-name': { type: 'string', default: 'B' },
    models: { type: 'string', default: 'mu-fmnist,spn8-fmnist' }, graphs: { type: 'string', default: GRAPH_KINDS.join(',') },
    batches: { type: 'string', default: '1,16' }, reps: { type: 'string', default: '50' }, trials: { type: 'string', default: '5' },
    out: { type: 'string' }, help: { type: 'boolean' },
  },
});
if (values.help || !values.a || !values.b) {
  console.log(`npm run bench:exports -- --a DIR --b DIR [--a-name A] [--b-name B] [--models mu-fmnist,spn8-fmnist]
    [--graphs ${GRAPH_KINDS.join(',')}] [--batches 1,16] [--reps 50] [--trials 5] [--out FILE]

  DIR: a models folder (models/<name>/manifest.json and its graphs), e.g. models and an export made with
  scripts/export.py --exporter dynamo --models DIR. The two must declare the same inputs for each graph.`);
  process.exit(values.help ? 0 : 2);
}
const [dirA, dirB] = [values.a, values.b];
const batches = values.batches!.split(',').map(Number);
const reps = Number(values.reps);
const trials = Number(values.trials);
const kinds = values.graphs!.split(',') as GraphKind[];
for (const k of kinds) if (!GRAPH_KINDS.includes(k)) throw new Error(`--graphs: no graph kind ${k}; kinds: ${GRAPH_KINDS.join(', ')}`);
const load = loadavg()[0];

const manifest = (dir: string, model: string): Manifest => JSON.parse(readFileSync(join(dir, model, 'manifest.json'), 'utf8'));

/** Seeded inputs for one graph at batch B: pixel values below the stage's classes (the aux plane's
 * below its bits), the stage's first slice as target, rows and columns in range, uniforms in [0, 1), temperature 1, the rest (contexts, caches) in [-0.5, 0.5). */
function feeds(g: Manifest['stages'][number]['graphs'][GraphKind], st: Manifest['stages'][number], rows: number, B: number, seed: number): Record<string, ort.Tensor> {
  const r = rng(seed);
  const out: Record<string, ort.Tensor> = {};
  for (const i of g.inputs) {
    const shape = i.shape.map((d) => (typeof d === 'number' ? d : B));
    const n = shape.reduce((a, b) => a * b, 1);
    if (i.dtype === 'float32') {
      const gen = i.name === 'temperature' ? () => 1 : i.name === 'uniform' ? r : () => r() - 0.5;
      out[i.name] = new ort.Tensor('float32', Float32Array.from({ length: n }, gen), shape);
    } else {
      const below = i.name === 'row' || i.name === 'col' ? rows : i.name === 'aux' ? 1 << (st.aux?.bits ?? 0) : st.classes;
      const gen = i.name === 'target' ? () => st.firstSlice : () => Math.floor(r() * below);
      out[i.name] = new ort.Tensor('int32', Int32Array.from({ length: n }, gen), shape);
    }
  }
  return out;
}

/** '' when the two runs' outputs agree, else what differs. */
function differs(a: ort.InferenceSession.OnnxValueMapType, b: ort.InferenceSession.OnnxValueMapType): string {
  for (const name of Object.keys(a)) {
    const x = a[name].data as Float32Array | Int32Array;
    const y = b[name]?.data as Float32Array | Int32Array | undefined;
    if (!y || x.length !== y.length) return `${name}: another shape`;
    if (a[name].type === 'float32') {
      let scale = 0;
      let worst = 0;
      for (let k = 0; k < x.length; k++) { scale = Math.max(scale, Math.abs(x[k])); worst = Math.max(worst, Math.abs(x[k] - y[k])); }
      if (!(worst <= 1e-4 * Math.max(scale, 1))) return `${name}: differs by ${worst.toExponential(2)}`;
    } else if (x.some((v, k) => v !== y[k])) return `${name}: other values`;
  }
  return '';
}

const rows: string[][] = [];
let mismatches = 0;
for (const model of values.models!.split(',')) {
  const [mA, mB] = [manifest(dirA, model), manifest(dirB, model)];
  for (const st of mA.stages) {
    const stB = mB.stages.find((s) => s.name === st.name);
    if (!stB) throw new Error(`${dirB}/${model} has no stage ${st.name}`);
    for (const kind of kinds) {
      const [gA, gB] = [st.graphs[kind], stB.graphs[kind]];
      if (!gA || !gB) throw new Error(`${model}/${st.name}: no ${kind} graph in ${gA ? dirB : dirA}`);
      if (JSON.stringify(gA.inputs) !== JSON.stringify(gB.inputs)) throw new Error(`${model}/${st.name}/${kind}: the two declare other inputs`);
      const sA = await ort.InferenceSession.create(join(dirA, model, gA.file), ONE_THREAD);
      const sB = await ort.InferenceSession.create(join(dirB, model, gB.file), ONE_THREAD);
      for (const B of batches) {
        const f = feeds(gA, st, mA.image.height / mA.subscaleFactor, B, 7000 + B);
        const diff = differs(await sA.run(f), await sB.run(f));
        if (diff) mismatches++;
        const [tA, tB] = await bestMs([sA, sB], f, reps, trials, 10);
        rows.push([model, st.name, kind, String(B), tA.toFixed(3), tB.toFixed(3), `${(tA / tB).toFixed(2)}×`, diff || 'yes']);
        console.log(`${model}/${st.name}/${kind} batch ${B}: ${values['a-name']} ${tA.toFixed(3)} ms, ${values['b-name']} ${tB.toFixed(3)} ms, `
          + `${(tA / tB).toFixed(2)}×${diff ? `; NOT THE SAME: ${diff}` : ''}`);
      }
      await sA.release();
      await sB.release();
    }
  }
}

const ratios = rows.map((r) => Number.parseFloat(r[6]));
const md = [`# Two exports of the same models, graph by graph`, '',
  `Generated by \`npm run bench:exports\` on ${generatedAt()}; 1-minute load average ${load.toFixed(2)} at start. `
  + `A = ${values['a-name']} (\`${dirA}\`), B = ${values['b-name']} (\`${dirB}\`). Each graph is fed the same seeded inputs in both, `
  + `timed on one intra-op thread (onnxruntime-node ${ort.env.versions.common}, optimization level all), best of ${trials} trials of ${reps} runs, `
  + `the two taking turns. "Same" compares the outputs: integer outputs (sampled values) equal, float outputs within 1e-4 of their largest magnitude.`, '',
  '| model | stage | graph | batch | A ms | B ms | A / B | same |', '|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.join(' | ')} |`), '',
  `A / B ranges over ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}× (above 1: B is faster); `
  + `${mismatches ? `**${mismatches} graph runs compute something else**` : 'every graph computes the same in both'}.`, ''].join('\n');
if (values.out) {
  writeFileSync(values.out, md);
  console.log(`wrote ${values.out}`);
}
if (mismatches) process.exitCode = 1;
