// `npm run bench:row-graph`: the two ways to run a row's pixels inside one graph, timed in one run
// on the same weights: sample_row with the w pixel steps unrolled (what export.py ships) against
// decoder_row plus an ONNX Loop over the decoder_pixel step (export.py --row-graph loop). Both are
// exported fresh from the checkpoints in runs/ (scripts/export_row_variants.py), fed the same
// inputs, checked to sample the same pixels, and timed at each batch size, one thread.
// Writes docs/bench-row-graph.md (or --out).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);

interface Variants { model: string; channels: number; rowWidth: number; stages: { name: string; width: number; upperLayers: number }[] }

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

function feeds(B: number, C: number, w: number, d: number, Lv: number, K: number, seed: number): Record<string, ort.Tensor> {
  const r = rng(seed);
  return {
    prev_row: new ort.Tensor('int32', Int32Array.from({ length: B * C * w }, () => Math.floor(r() * K)), [B, C, w]),
    context_row: new ort.Tensor('float32', Float32Array.from({ length: B * d * w }, () => r() - 0.5), [B, d, w]),
    row: new ort.Tensor('int32', new Int32Array(B).fill(3), [B]),
    vcaches: new ort.Tensor('float32', Float32Array.from({ length: B * Lv * d * w }, () => r()), [B, Lv, d, w]),
    uniform: new ort.Tensor('float32', Float32Array.from({ length: B * w * C }, () => r()), [B, w, C]),
    temperature: new ort.Tensor('float32', new Float32Array(B).fill(1), [B]),
  };
}

/** ms per run: best of `trials` trials of `reps` runs (other work only ever slows a trial). */
async function time(s: ort.InferenceSession, f: Record<string, ort.Tensor>, reps: number, trials: number): Promise<number> {
  for (let i = 0; i < 10; i++) await s.run(f);
  let best = Infinity;
  for (let t = 0; t < trials; t++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) await s.run(f);
    best = Math.min(best, (performance.now() - t0) / reps);
  }
  return best;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      models: { type: 'string', default: 'mu-fmnist,spn8-fmnist' }, batches: { type: 'string', default: '1,8,32' },
      runs: { type: 'string', default: join(ROOT, 'runs') }, out: { type: 'string', default: join(ROOT, 'docs', 'bench-row-graph.md') },
      python: { type: 'string', default: process.env.PYTHON ?? '/usr/bin/python3' }, reps: { type: 'string', default: '50' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log('npm run bench:row-graph -- [--models mu-fmnist,spn8-fmnist] [--batches 1,8,32] [--reps 50] [--runs runs] [--out docs/bench-row-graph.md]');
    return;
  }
  const batches = values.batches!.split(',').map(Number);
  const reps = Number(values.reps);
  const tmp = mkdtempSync(join(tmpdir(), 'spn-row-graph-'));
  const rows: string[][] = [];
  const load = loadavg()[0];
  try {
    for (const model of values.models!.split(',')) {
      const out = join(tmp, model);
      const p = spawnSync(values.python!, [join(ROOT, 'scripts', 'export_row_variants.py'), '--config', model, '--runs', values.runs!, '--out', out],
        { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      if (p.status !== 0) throw new Error(`export_row_variants.py --config ${model} exited with ${p.status}`);
      const v = JSON.parse(p.stdout) as Variants;
      for (const st of v.stages) {
        const open = (variant: string) => ort.InferenceSession.create(join(out, st.name, `sample_row.${variant}.onnx`),
          { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
        const unrolled = await open('unrolled');
        const loop = await open('loop');
        for (const B of batches) {
          const f = feeds(B, v.channels, v.rowWidth, st.width, st.upperLayers, 2, 1000 + B);
          const a = await unrolled.run(f);
          const b = await loop.run(f);
          const same = Buffer.compare(Buffer.from((a.row_values.data as Int32Array).buffer), Buffer.from((b.row_values.data as Int32Array).buffer)) === 0;
          const tu = await time(unrolled, f, reps, 5);
          const tl = await time(loop, f, reps, 5);
          rows.push([model, st.name, String(B), tl.toFixed(3), tu.toFixed(3), `${(tl / tu).toFixed(2)}×`, same ? 'yes' : 'NO']);
          console.log(`${model}/${st.name} batch ${B}: loop ${tl.toFixed(3)} ms, unrolled ${tu.toFixed(3)} ms, ${(tl / tu).toFixed(2)}× (same pixels: ${same})`);
        }
        await unrolled.release();
        await loop.release();
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const md = [
    '# sample_row: unrolled pixel steps against an ONNX Loop',
    '',
    `Generated by \`npm run bench:row-graph\` on ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; 1-minute load average ${load.toFixed(2)} at start. `
      + 'Both graphs are exported in the same run from the same checkpoints (`scripts/export_row_variants.py`), get the same '
      + `inputs, and are timed one after the other on one intra-op thread: ms per run, best of 5 trials of ${reps} runs. `
      + 'One run samples one row (14 pixels) of one slice for every lane of the batch.',
    '',
    '- **unrolled**: `SPN.sample_row` traced: decoder_row, then the row\'s pixel steps one after another in the graph. The '
      + 'horizontal stack keeps per-layer partial sums (a shift register), so a step has no cache to concatenate, slice or gather, '
      + 'and the first pixel\'s empty caches fold away.',
    '- **loop**: decoder_row, then an ONNX `Loop` whose body is the decoder_pixel step (`export.py --row-graph loop`).',
    '',
    '| model | stage | batch | loop ms | unrolled ms | unrolled speed-up | same pixels |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
  ].join('\n');
  writeFileSync(values.out!, md);
  console.log(`wrote ${values.out}`);
}

await main();
