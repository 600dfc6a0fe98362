// `npm run bench:row-graph`: the shipped sample_row graph (the row's pixel steps unrolled, the
// horizontal stack as a shift register of partial sums) against other ways to compute the same row,
// timed in one run on the same weights: decoder_row plus an ONNX Loop over the decoder_pixel step
// (export.py --row-graph loop), and the formulations of scripts/spn/row_variants.py. All are
// exported fresh from the checkpoints in runs/ (scripts/export_row_variants.py, which first checks
// each formulation against SPN.sample_row in PyTorch), fed the same inputs, checked to sample the
// same pixels, and timed at each batch size on one thread, taking turns.
// Writes docs/bench-row-graph.md (or --out).
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { bestMs, graphBench, ONE_THREAD, rng } from './graph-variants.js';

interface Variants {
  model: string; channels: number; rowWidth: number; variants: string[];
  stages: { name: string; width: number; classes: number; upperLayers: number }[];
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

const sameInts = (a: ort.Tensor, b: ort.Tensor) =>
  Buffer.compare(Buffer.from((a.data as Int32Array).buffer), Buffer.from((b.data as Int32Array).buffer)) === 0;

const rows: string[][] = [];
const speedups = new Map<string, number[]>();

await graphBench<Variants>({
  name: 'row-graph', title: 'sample_row: the shipped graph against other formulations of the same row', script: 'export_row_variants.py',
  batches: '1,16,32', count: { flag: 'reps', default: '50' },
  async measure(v, out, { batches, count: reps }) {
    for (const st of v.stages) {
      const open = (variant: string) => ort.InferenceSession.create(join(out, st.name, `sample_row.${variant}.onnx`), ONE_THREAD);
      const shipped = await open('unrolled');
      const others = await Promise.all(v.variants.map(open));
      for (const B of batches) {
        // the classes bound the random previous row's values (the row's own are sampled)
        const f = feeds(B, v.channels, v.rowWidth, st.width, st.upperLayers, st.classes, 1000 + B);
        const want = (await shipped.run(f)).row_values;
        const same = await Promise.all(others.map(async (s) => sameInts((await s.run(f)).row_values, want)));
        const [t0, ...ts] = await bestMs([shipped, ...others], f, reps, 5, 10);
        v.variants.forEach((name, i) => {
          const x = t0 / ts[i];
          speedups.set(name, [...(speedups.get(name) ?? []), x]);
          rows.push([v.model, st.name, String(B), name, ts[i].toFixed(3), t0.toFixed(3), `${x.toFixed(2)}×`, same[i] ? 'yes' : 'NO']);
        });
        console.log(`${v.model}/${st.name} batch ${B}: shipped ${t0.toFixed(3)} ms; `
          + v.variants.map((name, i) => `${name} ${ts[i].toFixed(3)} ms (${(t0 / ts[i]).toFixed(2)}×${same[i] ? '' : ', OTHER PIXELS'})`).join(', '));
      }
      for (const s of [shipped, ...others]) await s.release();
    }
  },
  report: ({ count: reps }) => [
    'All graphs are exported in the same run from the same checkpoints (`scripts/export_row_variants.py`, which first checks '
      + 'each formulation against `SPN.sample_row` in PyTorch: the same pixels, NLL within 1e-4 nats), get the same inputs, '
      + `and are timed taking turns on one intra-op thread: ms per run, best of 5 trials of ${reps} runs. One run samples one row `
      + '(14 pixels) of one slice for every lane of the batch. "vs shipped" is the shipped graph\'s time over the variant\'s: '
      + 'above 1× the variant is faster.',
    '',
    '- **shipped**: `SPN.sample_row` traced: decoder_row, then the row\'s pixel steps one after another in the graph. The '
      + 'horizontal stack keeps per-layer partial sums (a shift register): each tap is one Gemm onto the sum owed to a later pixel.',
    '- **loop**: decoder_row, then an ONNX `Loop` whose body is the decoder_pixel step (`export.py --row-graph loop`).',
    '- **window**: the horizontal stack from the last k inputs: per layer and pixel one Concat and one Gemm over them instead of a '
      + 'Gemm per tap (four nodes per layer instead of five, the same FLOPs).',
    '- **matmul-upper**: the vertical stack channels-last, each (2, 3) convolution one MatMul over the row\'s six shifted copies, '
      + 'instead of onnxruntime\'s blocked (NCHWc) convolution and its layout reorders.',
    '- **cumsum-t**: the sampled index from a CumSum over the first axis of the transposed probabilities [K, B], instead of along '
      + 'the last axis of [B, K].',
    '',
    'Range of "vs shipped" over the stages and batch sizes: '
      + [...speedups].map(([n, xs]) => `${n} ${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}×`).join(', ') + '.',
    '',
    '| model | stage | batch | variant | ms | shipped ms | vs shipped | same pixels |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
  ].join('\n'),
});
