// `npm run bench:row-graph`: the two ways to run a row's pixels inside one graph, timed in one run
// on the same weights: sample_row with the w pixel steps unrolled (what export.py ships) against
// decoder_row plus an ONNX Loop over the decoder_pixel step (export.py --row-graph loop). Both are
// exported fresh from the checkpoints in runs/ (scripts/export_row_variants.py), fed the same
// inputs, checked to sample the same pixels, and timed at each batch size, one thread.
// Writes docs/bench-row-graph.md (or --out).
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { bestMs, graphBench, ONE_THREAD, rng } from './graph-variants.js';

interface Variants { model: string; channels: number; rowWidth: number; stages: { name: string; width: number; upperLayers: number }[] }

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

const rows: string[][] = [];

await graphBench<Variants>({
  name: 'row-graph', title: 'sample_row: unrolled pixel steps against an ONNX Loop', script: 'export_row_variants.py',
  batches: '1,8,32', count: { flag: 'reps', default: '50' },
  async measure(v, out, { batches, count: reps }) {
    for (const st of v.stages) {
      const open = (variant: string) => ort.InferenceSession.create(join(out, st.name, `sample_row.${variant}.onnx`), ONE_THREAD);
      const unrolled = await open('unrolled');
      const loop = await open('loop');
      for (const B of batches) {
        const f = feeds(B, v.channels, v.rowWidth, st.width, st.upperLayers, 2, 1000 + B);
        const a = await unrolled.run(f);
        const b = await loop.run(f);
        const same = Buffer.compare(Buffer.from((a.row_values.data as Int32Array).buffer), Buffer.from((b.row_values.data as Int32Array).buffer)) === 0;
        const [tu] = await bestMs([unrolled], f, reps, 5, 10);
        const [tl] = await bestMs([loop], f, reps, 5, 10);
        rows.push([v.model, st.name, String(B), tl.toFixed(3), tu.toFixed(3), `${(tl / tu).toFixed(2)}×`, same ? 'yes' : 'NO']);
        console.log(`${v.model}/${st.name} batch ${B}: loop ${tl.toFixed(3)} ms, unrolled ${tu.toFixed(3)} ms, ${(tl / tu).toFixed(2)}× (same pixels: ${same})`);
      }
      await unrolled.release();
      await loop.release();
    }
  },
  report: ({ count: reps }) => [
    'Both graphs are exported in the same run from the same checkpoints (`scripts/export_row_variants.py`), get the same '
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
  ].join('\n'),
});
