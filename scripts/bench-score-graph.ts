// `npm run bench:score-graph`: the likelihood graphs as export.py ships them against the same
// function traced plainly, timed in one run on the same weights. `shipped` is traced with
// SPN.graph_layout (shifts as depthwise convolutions, the C = 1 head on rows) and goes through
// spn/graph_pass.py (zero padding folded into the convolutions); `plain` is SPN.slice_nll as
// training runs it, as PyTorch's exporter writes it. Both are exported fresh from the checkpoints
// in runs/ (scripts/export_score_variants.py), fed the same inputs, checked to give the same NLL,
// and timed at each batch size on one intra-op thread, taking turns trial by trial so that a slow
// spell of the shared machine hits both. Writes docs/bench-score-graph.md (or --out).
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import { bestMs, graphBench, ONE_THREAD, rng } from './graph-variants.js';

interface Stage { name: string; width: number; classes: number; firstSlice: number; lastSlice: number; auxBits: number; scoreContext: boolean }
interface Variants { model: string; channels: number; subscale: number; size: number; stages: Stage[] }

function scoreFeeds(v: Variants, st: Stage, B: number, seed: number): Record<string, ort.Tensor> {
  const r = rng(seed);
  const shape = [B, v.subscale ** 2, v.channels, v.size, v.size];
  const n = shape.reduce((a, b) => a * b, 1);
  const f: Record<string, ort.Tensor> = {
    slices: new ort.Tensor('int32', Int32Array.from({ length: n }, () => Math.floor(r() * st.classes)), shape),
    target: new ort.Tensor('int32', Int32Array.from({ length: B }, (_, i) => st.firstSlice + (i % (st.lastSlice - st.firstSlice))), [B]),
  };
  if (st.auxBits) f.aux = new ort.Tensor('int32', Int32Array.from({ length: n }, () => Math.floor(r() * 2 ** st.auxBits)), shape);
  return f;
}

function contextFeeds(v: Variants, st: Stage, B: number, seed: number): Record<string, ort.Tensor> {
  const r = rng(seed);
  const hw = v.size * v.size;
  return {
    slice: new ort.Tensor('int32', Int32Array.from({ length: B * v.channels * hw }, () => Math.floor(r() * st.classes)), [B, v.channels, v.size, v.size]),
    context: new ort.Tensor('float32', Float32Array.from({ length: B * st.width * hw }, () => r() * 2 - 1), [B, st.width, v.size, v.size]),
  };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const rows: string[][] = [];

await graphBench<Variants>({
  name: 'score-graph', title: 'Likelihood graphs: as shipped against the plain trace', script: 'export_score_variants.py',
  batches: '1,16,48', count: { flag: 'trials', default: '7' },
  async measure(v, out, { batches, count: trials }) {
    for (const st of v.stages) {
      for (const graph of st.scoreContext ? ['score', 'score_context'] : ['score']) {
        const plain = await ort.InferenceSession.create(join(out, st.name, `${graph}.plain.onnx`), ONE_THREAD);
        const shipped = await ort.InferenceSession.create(join(out, st.name, `${graph}.shipped.onnx`), ONE_THREAD);
        for (const B of batches) {
          const f = graph === 'score' ? scoreFeeds(v, st, B, 1000 + B) : contextFeeds(v, st, B, 2000 + B);
          const a = (await plain.run(f)).nll.data as Float32Array;
          const b = (await shipped.run(f)).nll.data as Float32Array;
          const diff = maxDiff(a, b);
          // reps: about 20 ms of runs per trial
          const once = performance.now();
          await plain.run(f);
          const reps = Math.max(1, Math.round(20 / Math.max(performance.now() - once, 0.01)));
          const [tp, ts] = await bestMs([plain, shipped], f, reps, trials, 3);
          rows.push([v.model, st.name, graph, String(B), tp.toFixed(3), ts.toFixed(3), `${(tp / ts).toFixed(2)}×`, diff.toExponential(1)]);
          console.log(`${v.model}/${st.name}/${graph} batch ${B}: plain ${tp.toFixed(3)} ms, shipped ${ts.toFixed(3)} ms, ${(tp / ts).toFixed(2)}× (max |Δ nll| ${diff.toExponential(1)} nats)`);
        }
        await plain.release();
        await shipped.release();
      }
    }
  },
  report: ({ count: trials }) => [
    'Both variants are exported in the same run from the same checkpoints (`scripts/export_score_variants.py`), get the same '
      + `inputs, and are timed on one intra-op thread, taking turns: ms per run, best of ${trials} trials of about 20 ms of runs each. `
      + 'A `score` run scores one slice of each image of the batch (conditioning network included); a `score_context` run scores a '
      + 'first slice from its constant context.',
    '',
    '- **plain**: `SPN.slice_nll` / `SPN.nll_given_context` traced as training runs them (each shift a pad and a slice, '
      + 'each one-sided padding a `Pad` before its convolution, the head on `[B, h, w, C, d]`).',
    '- **shipped**: what `export.py` writes: traced with `SPN.graph_layout` (the shifts as depthwise convolutions, so that '
      + 'onnxruntime keeps the decoder in its blocked layout and adds the residuals inside the convolutions; for C = 1 the head '
      + 'on `[B·h·w, d]` rows with no channel prefix), then `scripts/spn/graph_pass.py` (each `Pad` folded into its convolution).',
    '',
    '| model | stage | graph | batch | plain ms | shipped ms | speed-up | max abs. NLL difference (nats) |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
  ].join('\n'),
});
