// The benchmark's results: their shape, the targets of issue 3, and the report as text (console
// and docs/bench.md). Measuring lives in bench.ts, the chart in bench-chart.ts.

export interface Latency {
  p50: number;
  p95: number;
}

/** Time spent in one graph of one stage during one measured phase (from observer.graphRun). */
export interface GraphTime {
  stage: string;
  graph: string;
  runs: number;
  seconds: number;
  /** sum of the batch sizes of the runs: lanes x runs */
  lanes: number;
  /** FLOPs of one run at batch 1 (from bench_torch.py) */
  flopsPerLane: number;
}

export interface SamplingPoint {
  /** the runtime's decode mode (runtime only): 'row' = one sample_row run per row, 'pixel' = one
   * decoder_row run per row and one decoder_pixel run per pixel */
  decode?: string;
  /** concurrent requests (runtime) or batch size (PyTorch) */
  concurrency: number;
  images: number;
  seconds: number;
  imagesPerSec: number;
  latencyMs: Latency;
  gflops: number;
  /** CPU time of the whole process (every thread) over wall time: how many cores it kept busy */
  cores?: number;
  /** PyTorch only: the torch thread count this figure was measured at (the best of those tried) */
  threads?: number;
  /** runtime only: inference workers, whose graph time adds up to workers x wall time */
  workers?: number;
  /** main thread's event-loop delay while this ran (runtime only), ms */
  eventLoopMs?: { p50: number; p99: number; max: number };
  graphs?: GraphTime[];
}

export interface LikelihoodPoint {
  batch: number;
  images: number;
  seconds: number;
  imagesPerSec: number;
  gflops: number;
  cores?: number;
  threads?: number;
  workers?: number;
  meanBitsPerDim: number;
  eventLoopMs?: { p50: number; p99: number; max: number };
  graphs?: GraphTime[];
}

export interface ModelResult {
  name: string;
  description: string;
  stages: string[];
  parameters: number;
  flops: {
    sampleImage: number;
    likelihoodImage: number;
    /** what the runtime executes (it computes constant first-slice contexts once) */
    runtimeSampleImage?: number;
    runtimeLikelihoodImage?: number;
    /** FLOPs of one sampled image per graph kind: conditioning, decoder_row, decoder_pixel */
    sampleParts?: Record<string, number>;
    /** FLOPs of one run at batch 1, per stage and graph */
    perGraph?: Record<string, Record<string, number>>;
  };
  runtime: {
    /** the headline decode mode: the one `sampling` (and the targets) are measured in */
    decode?: string;
    sampling: SamplingPoint[];
    likelihood: LikelihoodPoint[];
    /** sampling in every decode mode measured, the headline first */
    decodeModes?: { mode: string; sampling: SamplingPoint[] }[];
    /** whether every mode sampled the same pixels from the same seed (null: one mode) */
    decodeParity?: boolean | null;
  };
  torch: { sampling: SamplingPoint[]; likelihood: LikelihoodPoint[] };
  /** largest |bits/dim difference| between the runtime and PyTorch on the same test images */
  weightsCheck: { images: number; maxAbsDiff: number };
}

export interface ThreadsResult {
  /** intra-op threads per worker */
  threads: number;
  /** inference workers (older results: settings.workers) */
  workers?: number;
  /** the torch thread counts PyTorch ran at; each PyTorch figure is the best of them */
  torchThreads?: number[];
  peak: { torchMatmul: number; onnxMatmul: number; n: number; torchMatmulCores?: number };
  models: ModelResult[];
}

export interface BenchResult {
  date: string;
  command: string;
  quick: boolean;
  machine: { cpu: string; cores: number; node: string; onnxruntime: string; torch: string; load: number[] };
  settings: { modelsDir: string; runsDir: string; workers: number; trials?: number; decode?: string[]; concurrency: number[]; sampleImages: number[]; likelihoodBatches: number[]; likelihoodImages: number[] };
  runs: ThreadsResult[];
  busyWarning: string | null;
  wallSeconds: number;
}

export interface TargetCheck {
  setup: string;
  name: string;
  model: string;
  measured: number;
  goal: number;
  /** 'ratio' values are "x times"; 'ms' is a ceiling */
  unit: 'x' | 'ms';
  pass: boolean;
  detail: string;
}

/** Both sides score the same images to within float32 rounding only if they run the same weights. */
export const sameWeights = (m: ModelResult) => m.weightsCheck.images > 0 && m.weightsCheck.maxAbsDiff < 1e-3;

export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
/** "2 workers × 1 thread": the runtime's configuration in one result */
export const setupName = (r: ThreadsResult, workers = 1) => `${plural(r.workers ?? workers, 'worker')} × ${plural(r.threads, 'thread')}`;
/** "PyTorch at 1 and 2 threads (the best of them at each point)" */
export const torchSetup = (r: ThreadsResult) => {
  const t = r.torchThreads ?? [r.threads];
  return t.length > 1 ? `PyTorch at ${t.join(' and ')} threads (the best of them at each point)` : `PyTorch at ${plural(t[0], 'thread')}`;
};
const cores = (r: ThreadsResult, workers = 1) => (r.workers ?? workers) * r.threads;

const at = <T extends { concurrency: number }>(l: T[], c: number) => l.find((p) => p.concurrency === c);

/** Sampling in every decode mode measured (results from before decode modes: the one mode, row). */
export const decodeModes = (m: ModelResult) => m.runtime.decodeModes ?? [{ mode: m.runtime.decode ?? 'row', sampling: m.runtime.sampling }];
const headlineMode = (m: ModelResult) => m.runtime.decode ?? 'row';
const atBatch = <T extends { batch: number }>(l: T[], b: number) => l.find((p) => p.batch === b);

/** The four targets of issue 3, for every model at one thread setting. */
export function targets(r: ThreadsResult, concurrency: number[], likelihoodBatches: number[], workers = 1): TargetCheck[] {
  const out: TargetCheck[] = [];
  const setup = `${r.workers ?? workers}×${r.threads}`;
  const cMin = Math.min(...concurrency);
  const cMax = Math.max(...concurrency);
  for (const m of r.models) {
    const rt1 = at(m.runtime.sampling, cMin);
    const pt1 = at(m.torch.sampling, cMin);
    if (rt1 && pt1) {
      const x = rt1.imagesPerSec / pt1.imagesPerSec;
      out.push({ setup, name: `sampling at concurrency ${cMin} (decode ${headlineMode(m)}) vs PyTorch batch ${cMin}`, model: m.name, measured: x, goal: 5, unit: 'x', pass: x >= 5,
        detail: `${fmt(rt1.imagesPerSec)} vs ${fmt(pt1.imagesPerSec)} images/s` });
    }
    const rtN = at(m.runtime.sampling, cMax);
    if (rt1 && rtN && cMax !== cMin) {
      const x = rtN.imagesPerSec / rt1.imagesPerSec;
      out.push({ setup, name: `throughput at concurrency ${cMax} vs ${cMin} (decode ${headlineMode(m)})`, model: m.name, measured: x, goal: 8, unit: 'x', pass: x >= 8,
        detail: `${fmt(rtN.imagesPerSec)} vs ${fmt(rt1.imagesPerSec)} images/s` });
    }
    for (const b of likelihoodBatches) {
      const rl = atBatch(m.runtime.likelihood, b);
      const pl = atBatch(m.torch.likelihood, b);
      if (!rl || !pl) continue;
      const x = rl.imagesPerSec / pl.imagesPerSec;
      out.push({ setup, name: `likelihood at batch ${b} vs PyTorch`, model: m.name, measured: x, goal: 1.5, unit: 'x', pass: x >= 1.5,
        detail: `${fmt(rl.imagesPerSec)} vs ${fmt(pl.imagesPerSec)} images/s` });
    }
    const el = rtN?.eventLoopMs;
    if (el) {
      out.push({ setup, name: `event-loop delay p99 at concurrency ${cMax}`, model: m.name, measured: el.p99, goal: 20, unit: 'ms', pass: el.p99 < 20,
        detail: `p50 ${el.p50.toFixed(1)} ms, max ${el.max.toFixed(1)} ms` });
    }
  }
  return out;
}

/** Where the worker's time goes in one phase: every graph's share of the phase's wall time,
 * and what is left outside the graph runs (feeds, copies, messages, scheduling). */
type Phase = { seconds: number; images: number; graphs?: GraphTime[]; workers?: number; concurrency?: number; batch?: number };

/** Worker time a phase had: wall time x the workers it could keep busy (a request runs on one
 * worker, so at concurrency 1 that is one, whatever the pool's size). */
const capacityOf = (p: Phase) => p.seconds * Math.min(p.workers ?? 1, p.concurrency ?? p.batch ?? Infinity);

/** Where the workers' time went: each graph's run time as a share of the workers' capacity
 * (capacityOf), and the rest ("outside graph runs"). */
export function breakdown(p: Phase) {
  const capacity = capacityOf(p);
  const rows = (p.graphs ?? []).map((g) => ({
    label: `${g.stage}/${g.graph}`,
    seconds: g.seconds,
    share: g.seconds / capacity,
    runsPerImage: g.runs / p.images,
    meanBatch: g.runs ? g.lanes / g.runs : 0,
    msPerRun: g.runs ? (g.seconds / g.runs) * 1000 : 0,
    gflops: g.seconds ? (g.flopsPerLane * g.lanes) / g.seconds / 1e9 : 0,
  }));
  const inGraphs = rows.reduce((a, r) => a + r.seconds, 0);
  const outside = Math.max(0, capacity - inGraphs);
  rows.sort((a, b) => b.seconds - a.seconds);
  return { rows, inGraphs, outside, outsideShare: outside / capacity };
}

/** The graphs of one phase grouped by kind (all stages together). */
function kinds(p: { graphs?: GraphTime[] }) {
  const out = new Map<string, { seconds: number; runs: number; lanes: number; flops: number }>();
  for (const g of p.graphs ?? []) {
    const k = out.get(g.graph) ?? { seconds: 0, runs: 0, lanes: 0, flops: 0 };
    k.seconds += g.seconds; k.runs += g.runs; k.lanes += g.lanes; k.flops += g.flopsPerLane * g.lanes;
    out.set(g.graph, k);
  }
  return out;
}

/** Wall-time items of one phase, largest first: each graph kind, and the time outside graph runs. */
function costItems(p: Phase) {
  const items = [...kinds(p).entries()].map(([kind, k]) => ({
    kind, what: `${kind} runs`, share: k.seconds / capacityOf(p),
    note: `${fmt(k.runs / p.images)} runs per image, mean batch ${fmt(k.runs ? k.lanes / k.runs : 0)}, ${(k.seconds / Math.max(1, k.runs) * 1e3).toFixed(3)} ms per run`,
  }));
  const b = breakdown(p);
  items.push({ kind: '', what: 'worker time outside graph runs (feeds, copies, messages)', share: b.outsideShare, note: 'no graph running' });
  return items.sort((a, c) => c.share - a.share);
}

/** ms per run = fixed + perLane x batch, fitted through the mean run of two phases. */
function perRunFit(a: { graphs?: GraphTime[] }, b: { graphs?: GraphTime[] }, kind: string) {
  const ka = kinds(a).get(kind);
  const kb = kinds(b).get(kind);
  if (!ka?.runs || !kb?.runs) return null;
  const [xa, ya] = [ka.lanes / ka.runs, (ka.seconds / ka.runs) * 1e3];
  const [xb, yb] = [kb.lanes / kb.runs, (kb.seconds / kb.runs) * 1e3];
  if (xb - xa < 1) return null;
  const perLane = (yb - ya) / (xb - xa);
  return { fixed: ya - perLane * xa, perLane };
}

/** Per-image FLOPs of the sampling graphs, as shares of the total (null for results without them). */
function flopSplit(m: ModelResult): string | null {
  const p = m.flops.sampleParts;
  if (!p) return null;
  const total = Object.values(p).reduce((a, x) => a + x, 0);
  return Object.entries(p).map(([k, v]) => `${k} ${pct(v / Math.max(1, total))}`).join(', ');
}

/** The slice width w: sample_row = decoder_row + w x decoder_pixel (from the FLOP counts). */
function sliceWidth(m: ModelResult): number | null {
  for (const g of Object.values(m.flops.perGraph ?? {})) {
    if (g.sample_row && g.decoder_pixel) return Math.round((g.sample_row - g.decoder_row) / g.decoder_pixel);
  }
  return null;
}

/** The decode modes side by side: images/s at each concurrency, and the cost of one pixel step. */
function decodeComparison(m: ModelResult, concurrency: number[]): string | null {
  const modes = decodeModes(m);
  const row = modes.find((x) => x.mode === 'row');
  const pixel = modes.find((x) => x.mode === 'pixel');
  if (!row || !pixel) return null;
  const cMin = Math.min(...concurrency);
  const parts = concurrency.map((c) => {
    const a = at(row.sampling, c);
    const b = at(pixel.sampling, c);
    return a && b ? `at concurrency ${c} ${fmt(a.imagesPerSec)} vs ${fmt(b.imagesPerSec)} images/s (${fmt(a.imagesPerSec / b.imagesPerSec)}×)` : '';
  }).filter(Boolean);
  let line = `${m.name}, decode row (one sample_row run per row, its pixel steps unrolled in the graph) vs pixel (one decoder_row run per row, one decoder_pixel run per pixel): ${parts.join(', ')}`;
  const a1 = at(row.sampling, cMin);
  const b1 = at(pixel.sampling, cMin);
  const w = sliceWidth(m);
  const ka = a1 && kinds(a1);
  const kb = b1 && kinds(b1);
  const sr = ka?.get('sample_row');
  const dp = kb?.get('decoder_pixel');
  const dr = kb?.get('decoder_row');
  if (a1 && b1 && w && sr?.runs && dp?.runs) {
    const rowStep = (sr.seconds / sr.runs) * 1e3 / w;
    const pixStep = (dp.seconds / dp.runs) * 1e3 + (dr?.runs ? (dr.seconds / dr.runs) * 1e3 / w : 0);
    line += `. One pixel at concurrency ${cMin} costs ${rowStep.toFixed(3)} ms inside sample_row (its run / ${w} pixels) against `
      + `${pixStep.toFixed(3)} ms as a decoder_pixel run (plus its share of decoder_row); outside graph runs: row ${pct(breakdown(a1).outsideShare)}, `
      + `pixel ${pct(breakdown(b1).outsideShare)} of the workers' time`;
  }
  if (m.runtime.decodeParity === false) line += '. **The modes sampled different pixels from the same seed**';
  return `${line}.`;
}

/** What limits the runtime, from the measured phases: named, with the numbers behind it. */
export function largestCosts(r: ThreadsResult, concurrency: number[], likelihoodBatches: number[] = []): string[] {
  const lines: string[] = [];
  const peak = Math.max(r.peak.torchMatmul, r.peak.onnxMatmul);
  const cMin = Math.min(...concurrency);
  const cMax = Math.max(...concurrency);
  for (const m of r.models) {
    const mode = headlineMode(m);
    const p1 = at(m.runtime.sampling, cMin);
    const pN = at(m.runtime.sampling, cMax);
    const w = sliceWidth(m);
    if (p1?.graphs?.length) {
      const [top, next] = costItems(p1);
      let line = `${m.name}, sampling at concurrency ${cMin} (decode ${mode}): ${top.what} take ${pct(top.share)} of the workers' time (${top.note})`;
      const fit = pN && top.kind ? perRunFit(p1, pN, top.kind) : null;
      if (fit && fit.fixed > 0 && fit.perLane >= 0) {   // a negative slope is noise between two short phases
        line += `; a run costs about ${fit.fixed.toFixed(3)} ms fixed + ${fit.perLane.toFixed(4)} ms per lane (fit between concurrency ${cMin} and ${cMax}), `
          + `so ${pct(fit.fixed / (fit.fixed + fit.perLane))} of a batch-1 run is cost that does not grow with the batch (binding, dispatch, small kernels), not arithmetic`;
        if (top.kind === 'sample_row' && w) {
          line += ` — about ${(fit.fixed / w).toFixed(4)} ms per pixel step of the unrolled row, mostly dispatching its small nodes`;
        }
      }
      if (next) line += `. Next: ${next.what}, ${pct(next.share)}.`;
      lines.push(line);
    }
    if (pN?.graphs?.length && cMax !== cMin) {
      const [top, next] = costItems(pN);
      const split = flopSplit(m);
      const ceiling = peak / (m.flops.runtimeSampleImage ?? m.flops.sampleImage) * 1e9;
      const head = `${m.name}, sampling at concurrency ${cMax} (decode ${mode}): ${top.what} ${pct(top.share)} and ${next?.what ?? '-'} ${pct(next?.share ?? 0)} of the workers' time; `
        + `the runtime computes at ${fmt(pN.gflops)} GFLOP/s, ${pct(pN.gflops / peak)} of the ${fmt(peak)} GFLOP/s matrix-product peak. `;
      const flops = `Sampling one image executes ${fmt(m.flops.sampleImage / m.flops.likelihoodImage)}× the FLOPs of scoring it`
        + `${split ? ` (the cached decoder computes each position once, as scoring does; ${split})` : ''}, so even at peak sampling would top out near ${fmt(ceiling)} images/s, `
        + `${fmt(p1 ? ceiling / p1.imagesPerSec : NaN)}× the concurrency-${cMin} rate.`;
      lines.push(pN.gflops / peak < 0.4
        ? `${head}Far from the peak: the runs are too small for their arithmetic to matter; their fixed cost does. ${flops}`
        : `${head}${flops}`);
    }
    const cmp = decodeComparison(m, concurrency);
    if (cmp) lines.push(cmp);
    if (likelihoodBatches.length) {
      const b = Math.max(...likelihoodBatches);
      const rl = atBatch(m.runtime.likelihood, b);
      const pl = atBatch(m.torch.likelihood, b);
      if (rl && pl) {
        lines.push(`${m.name}, likelihood at batch ${b}: runtime ${fmt(rl.gflops)} GFLOP/s (${pct(rl.gflops / peak)} of peak), `
          + `PyTorch ${fmt(pl.gflops)} GFLOP/s (${pct(pl.gflops / peak)}); `
          + (pl.gflops / peak > 0.6 ? 'both are compute-bound, so beating PyTorch here takes fewer or cheaper FLOPs (e.g. lower precision), not scheduling.'
            : `the score runs take ${pct(((kinds(rl).get('score')?.seconds ?? 0) + (kinds(rl).get('score_context')?.seconds ?? 0)) / capacityOf(rl))} of the workers' time.`));
      }
    }
  }
  return lines;
}

export const fmt = (x: number): string => {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toFixed(3);
};
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const busy = (x?: number) => (x === undefined ? '' : x.toFixed(2));
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function samplingTable(r: ThreadsResult): string {
  const peak = Math.max(r.peak.torchMatmul, r.peak.onnxMatmul);
  const rows: (string | number)[][] = [];
  for (const m of r.models) {
    const series: [string, SamplingPoint[]][] = [...decodeModes(m).map((d) => [`runtime, decode ${d.mode}`, d.sampling] as [string, SamplingPoint[]]), ['PyTorch', m.torch.sampling]];
    for (const [engine, pts] of series) {
      for (const p of pts) {
        rows.push([m.name, engine, engine !== 'PyTorch' ? `${p.concurrency} concurrent` : `batch ${p.concurrency}${p.threads ? `, ${plural(p.threads, 'thread')}` : ''}`, p.images,
          fmt(p.imagesPerSec), ms(p.latencyMs.p50), ms(p.latencyMs.p95), fmt(p.gflops), pct(p.gflops / peak), busy(p.cores),
          p.eventLoopMs ? p.eventLoopMs.p99.toFixed(1) : '']);
      }
    }
  }
  return table(['model', 'engine', 'setting', 'images', 'images/s', 'p50 ms', 'p95 ms', 'GFLOP/s', 'of peak', 'CPU cores busy', 'event loop p99 ms'], rows);
}

/** The decode modes side by side, per model and concurrency. */
function decodeTable(r: ThreadsResult): string | null {
  const rows: (string | number)[][] = [];
  for (const m of r.models) {
    const modes = decodeModes(m);
    if (modes.length < 2) continue;
    const base = modes.find((d) => d.mode === 'pixel') ?? modes[modes.length - 1];
    for (const d of modes) {
      for (const p of d.sampling) {
        const pt = at(m.torch.sampling, p.concurrency);
        const b = at(base.sampling, p.concurrency);
        const k = kinds(p);
        const runs = [...k.values()].reduce((a, x) => a + x.runs, 0);
        rows.push([m.name, d.mode, p.concurrency, fmt(p.imagesPerSec), b && d !== base ? `${fmt(p.imagesPerSec / b.imagesPerSec)}×` : '',
          pt ? `${fmt(p.imagesPerSec / pt.imagesPerSec)}×` : '', ms(p.latencyMs.p50), fmt(runs / p.images),
          pct(breakdown(p).outsideShare), p.eventLoopMs ? p.eventLoopMs.p99.toFixed(1) : '']);
      }
    }
  }
  if (!rows.length) return null;
  return table(['model', 'decode', 'concurrency', 'images/s', 'vs pixel', 'vs PyTorch (same batch)', 'p50 ms', 'runs per image', 'outside graph runs', 'event loop p99 ms'], rows);
}

function likelihoodTable(r: ThreadsResult): string {
  const peak = Math.max(r.peak.torchMatmul, r.peak.onnxMatmul);
  const rows: (string | number)[][] = [];
  for (const m of r.models) {
    for (const [engine, pts] of [['runtime', m.runtime.likelihood], ['PyTorch', m.torch.likelihood]] as const) {
      for (const p of pts) {
        rows.push([m.name, engine, engine === 'runtime' ? `${p.batch} concurrent` : `batch ${p.batch}${p.threads ? `, ${plural(p.threads, 'thread')}` : ''}`, p.images,
          fmt(p.imagesPerSec), fmt(p.gflops), pct(p.gflops / peak), busy(p.cores), p.meanBitsPerDim.toFixed(4)]);
      }
    }
  }
  return table(['model', 'engine', 'setting', 'images', 'images/s', 'GFLOP/s', 'of peak', 'CPU cores busy', 'mean bits/dim'], rows);
}

function targetTable(checks: TargetCheck[]): string {
  return table(['target', 'model', 'workers × threads', 'measured', 'goal', 'result', 'detail'], checks.map((c) => [
    c.name, c.model, c.setup,
    c.unit === 'x' ? `${fmt(c.measured)}×` : `${c.measured.toFixed(1)} ms`,
    c.unit === 'x' ? `≥ ${c.goal}×` : `< ${c.goal} ms`,
    c.pass ? 'PASS' : '**MISS**', c.detail,
  ]));
}

function graphTable(m: ModelResult, p: SamplingPoint | LikelihoodPoint, what: string): string {
  const b = breakdown(p);
  const rows = b.rows.map((g) => [g.label, fmt(g.runsPerImage), fmt(g.meanBatch), g.msPerRun.toFixed(3), pct(g.share), fmt(g.gflops)]);
  rows.push(['(outside graph runs)', '', '', '', pct(b.outsideShare), '']);
  return `**${m.name}, ${what}** (${fmt(p.seconds)} s wall for ${p.images} images)\n\n`
    + table(['stage/graph', 'runs per image', 'mean batch', 'ms per run', "share of the workers' time", 'GFLOP/s'], rows);
}

export function consoleReport(res: BenchResult): string {
  const lines: string[] = [];
  for (const r of res.runs) {
    lines.push('', `== runtime ${setupName(r, res.settings.workers)}; ${torchSetup(r)}`,
      `matrix-product peak (${r.peak.n}x${r.peak.n} float32): torch ${fmt(r.peak.torchMatmul)} GFLOP/s, onnxruntime ${fmt(r.peak.onnxMatmul)} GFLOP/s`);
    for (const m of r.models) {
      lines.push(`-- ${m.name} (${m.stages.join(' -> ')}, ${m.parameters} parameters, ${fmt(m.flops.sampleImage / 1e6)} MFLOP per sampled image, ${fmt(m.flops.likelihoodImage / 1e6)} MFLOP per scored image)`);
      const series: [string, SamplingPoint[]][] = [...decodeModes(m).map((d) => [`runtime/${d.mode}`, d.sampling] as [string, SamplingPoint[]]), ['torch', m.torch.sampling]];
      for (const [engine, pts] of series) {
        for (const p of pts) {
          lines.push(`  sample   ${engine.padEnd(13)} ${engine !== 'torch' ? 'c' : 'b'}=${String(p.concurrency).padEnd(3)} ${fmt(p.imagesPerSec).padStart(7)} images/s  p50 ${ms(p.latencyMs.p50).padStart(6)} ms  p95 ${ms(p.latencyMs.p95).padStart(6)} ms  ${fmt(p.gflops).padStart(6)} GFLOP/s`
            + (p.eventLoopMs ? `  event loop p99 ${p.eventLoopMs.p99.toFixed(1)} ms` : ''));
        }
      }
      for (const [engine, pts] of [['runtime', m.runtime.likelihood], ['torch', m.torch.likelihood]] as const) {
        for (const p of pts) {
          lines.push(`  score    ${engine.padEnd(13)} b=${String(p.batch).padEnd(3)} ${fmt(p.imagesPerSec).padStart(7)} images/s  ${fmt(p.gflops).padStart(6)} GFLOP/s  mean ${p.meanBitsPerDim.toFixed(4)} bits/dim`);
        }
      }
      if (m.runtime.decodeParity != null) {
        lines.push(`  decode modes ${decodeModes(m).map((d) => d.mode).join(' and ')} sampled ${m.runtime.decodeParity ? 'the same pixels' : 'DIFFERENT pixels'} from the same seed`);
      }
      lines.push(`  same weights: max |bits/dim runtime - PyTorch| = ${m.weightsCheck.maxAbsDiff.toExponential(2)} over ${m.weightsCheck.images} images`
        + (sameWeights(m) ? '' : ' -- MISMATCH: the ONNX graphs were not exported from these checkpoints'));
    }
  }
  const s = res.settings;
  lines.push('', '== targets');
  for (const r of res.runs) {
    for (const c of targets(r, s.concurrency, s.likelihoodBatches, s.workers)) {
      lines.push(`  ${c.pass ? 'PASS' : 'MISS'}  [${c.setup}] ${c.model}: ${c.name}: ${c.unit === 'x' ? `${fmt(c.measured)}x (goal >= ${c.goal}x)` : `${c.measured.toFixed(1)} ms (goal < ${c.goal} ms)`}; ${c.detail}`);
    }
  }
  lines.push('', '== largest remaining cost');
  for (const l of largestCosts(res.runs[0], s.concurrency, s.likelihoodBatches)) lines.push(`  ${l}`);
  if (res.busyWarning) lines.push('', `WARNING: ${res.busyWarning}`);
  return lines.join('\n');
}

export function markdownReport(res: BenchResult, pngName: string): string {
  const s = res.settings;
  const head = res.runs[0];
  const checks = res.runs.flatMap((r) => targets(r, s.concurrency, s.likelihoodBatches, s.workers));
  const out: string[] = [];
  out.push('# Benchmark: the TypeScript runtime against the PyTorch reference sampler', '');
  out.push(`Generated by \`${res.command}\` on ${res.date} (${fmt(res.wallSeconds)} s wall). `
    + `Everything below comes from that one run: the same trained weights (the ONNX graphs in \`${s.modelsDir}/\` and the `
    + `checkpoints in \`${s.runsDir}/\` they were exported from) on the same machine.`, '');
  if (res.quick) out.push('> **Quick mode**: few images per setting; the figures are indicative only.', '');
  if (res.busyWarning) out.push(`> **Warning**: ${res.busyWarning}`, '');
  out.push(`- Machine: ${res.machine.cpu}, ${res.machine.cores} cores; load average at start ${res.machine.load.map((l) => l.toFixed(2)).join(', ')}`);
  out.push(`- Node ${res.machine.node}, onnxruntime-node ${res.machine.onnxruntime} (CPU execution provider), PyTorch ${res.machine.torch}`);
  out.push(`- Setups (inference workers × intra-op threads per worker, against PyTorch on as many cores): ${res.runs.map((r) => `${setupName(r, s.workers)} against ${torchSetup(r)}`).join('; ')}. `
    + 'PyTorch\'s thread count is pinned for OpenBLAS and OpenMP too (`torch.set_num_threads` alone leaves OpenBLAS multiplying on every core); '
    + 'the "CPU cores busy" columns show what each side really used');
  out.push(`- Sampling: temperature 1, requests of one image each; ${s.concurrency.map((c, i) => `${s.sampleImages[i]} images at concurrency ${c}`).join(', ')}; `
    + `decode mode${(s.decode ?? ['row']).length > 1 ? 's' : ''} ${(s.decode ?? ['row']).join(' and ')} (the runtime's \`decode\` option; ${(s.decode ?? ['row'])[0]} is the headline and the one the targets read)`);
  out.push(`- Likelihood: the first Fashion-MNIST test images; ${s.likelihoodBatches.map((b, i) => `${s.likelihoodImages[i]} images at batch ${b}`).join(', ')}`);
  out.push('', `![images/s of the runtime and PyTorch, and the targets](${pngName})`, '');

  out.push('## Targets', '', targetTable(checks), '');
  out.push('## Largest remaining cost', '');
  for (const l of largestCosts(head, s.concurrency, s.likelihoodBatches)) out.push(`- ${l}`);
  out.push('');

  for (const r of res.runs) {
    out.push(`## Runtime ${setupName(r, s.workers)}; ${torchSetup(r)}`, '');
    out.push(`Matrix-product peak (${r.peak.n}×${r.peak.n} float32, ${plural(cores(r, s.workers), 'thread')}): torch.matmul ${fmt(r.peak.torchMatmul)} GFLOP/s${r.peak.torchMatmulCores !== undefined ? ` (keeping ${r.peak.torchMatmulCores.toFixed(2)} cores busy)` : ''}, `
      + `onnxruntime MatMul ${fmt(r.peak.onnxMatmul)} GFLOP/s; "of peak" uses the larger.`, '');
    out.push('### Sampling', '', samplingTable(r), '');
    const dt = decodeTable(r);
    if (dt) {
      out.push('### Decode modes', '', 'The runtime\'s `decode` option: `row` runs `sample_row` once per row (decoder_row, then the row\'s '
        + 'pixel steps unrolled in the graph); `pixel` runs `decoder_row` once per row and `decoder_pixel` '
        + 'once per pixel (all channels). Both sample the same pixels from the same seed. "vs PyTorch" divides by PyTorch at the batch '
        + 'size equal to the concurrency.', '', dt, '');
    }
    out.push('### Likelihood', '', likelihoodTable(r), '');
    out.push('### Models', '');
    const both = (torch: number, rt?: number) => (rt !== undefined && rt !== torch ? `${fmt(torch / 1e6)} (runtime ${fmt(rt / 1e6)})` : fmt(torch / 1e6));
    out.push(table(['model', 'stages', 'parameters', 'MFLOP per sampled image', 'MFLOP per scored image', 'max |Δ bits/dim| runtime vs PyTorch'],
      r.models.map((m) => [m.name, m.stages.join(' → '), m.parameters, both(m.flops.sampleImage, m.flops.runtimeSampleImage),
        both(m.flops.likelihoodImage, m.flops.runtimeLikelihoodImage),
        `${m.weightsCheck.maxAbsDiff.toExponential(1)} (${m.weightsCheck.images} images)${sameWeights(m) ? '' : ' **MISMATCH: not the same weights**'}`])), '');
  }

  out.push(`## Where the runtime's time goes (${setupName(head, s.workers)})`, '');
  out.push('Every ONNX run is timed in the worker (`observer.graphRun`): the time from `session.run()` to its result, '
    + 'for a batch of lanes; only the part of a run inside the measured window counts (a run still in flight when the '
    + 'window closes, e.g. of the aborted tail of a closed loop, counts up to the close). Shares are of the workers\' time: '
    + 'the phase\'s wall time × the workers it could keep busy '
    + '(a request runs on one worker, so one at concurrency 1). "Outside graph runs" is the rest: building feeds, copying '
    + 'contexts and rows between lanes, messages to the main thread, and scheduling.', '');
  for (const m of head.models) {
    for (const d of decodeModes(m)) {
      for (const c of [Math.min(...s.concurrency), Math.max(...s.concurrency)]) {
        const p = at(d.sampling, c);
        if (p?.graphs?.length) out.push(graphTable(m, p, `sampling at concurrency ${c}, decode ${d.mode}`), '');
      }
    }
    const l = atBatch(m.runtime.likelihood, Math.max(...s.likelihoodBatches));
    if (l?.graphs?.length) out.push(graphTable(m, l, `likelihood at batch ${l.batch}`), '');
  }

  out.push('## Method', '');
  out.push(...[
    '- **Runtime sampling**: `createRuntime({ provider: "cpu", workers, threads, decode })`, one runtime per decode mode, then `c` '
      + 'request loops in parallel, each calling `runtime.sample({ count: 1, seed, temperature: 1 })` and draining its events until '
      + '`done` and starting the next, so that `c` requests are in flight throughout (the same seeds in every mode). images/s = '
      + 'images / the time to the n-th completed image; requests still running then are aborted and not counted, since waiting '
      + 'for them would time a tail at falling concurrency that a PyTorch batch does not have. Latency = '
      + 'request start to its `done` event (queue included). Scoring does not depend on the decode mode and is measured once, in '
      + 'the headline mode\'s runtime.',
    '- **PyTorch sampling**: `scripts/bench_torch.py` runs `spn.sampler.sample_pipeline` (cached: context once per slice, '
      + 'then `SPN.sample_row` once per row: the vertical stack from its cache of the row above, the horizontal stack one pixel at a '
      + 'time from per-layer partial sums — the function `sample_row.onnx` is exported from; batched; `torch.no_grad`) on the '
      + 'checkpoints, at batch 1 and at the batch sizes that match the concurrency levels — what a user would otherwise run. '
      + 'Latency is one call\'s time (every image of a batch finishes at its end), so PyTorch\'s percentiles come from images / '
      + 'batch calls (8 at batch 8 and 32 in the default settings: its p95 is then the slowest call). PyTorch runs at every thread count from 1 to '
      + 'the setup\'s cores (with OpenBLAS and OpenMP pinned to it), and the table keeps the best figure at each point.',
    '- **Likelihood**: the exact NLL over every slice of every stage. Runtime: `c` concurrent `runtime.likelihood` requests '
      + '(they share batched `score` runs), each of the first n test images once. PyTorch: `SPN.slice_nll` on batches of `b` images. Both score the same test '
      + 'images (bench_torch.py writes them to a temporary file for Node), and their bits/dim must agree: the "max |Δ '
      + 'bits/dim|" column checks that both sides run the same weights.',
    '- **Event loop**: `perf_hooks.monitorEventLoopDelay` (1 ms resolution) on the main thread during each runtime phase; '
      + 'the target reads the sampling phase at the highest concurrency. The histogram records the time between firings of its '
      + '1 ms timer, so the figures include that interval (an idle loop reads about 1.1 ms): the delay beyond it is about 1 ms less.',
    '- **FLOPs**: bench_torch.py runs each exported graph\'s PyTorch function once at batch 1 with the graph\'s input shapes '
      + '(caches included) under a dispatch mode that sees every aten convolution and matrix product (`convolution`, `addmm`, '
      + '`mm`, `bmm`), so the functional `F.conv2d` / `F.linear` calls of the cached steps count as well as modules, and counts '
      + '2 × output elements × the reduced dimension; the cached steps\' counts are checked against the layer sizes. A sampled '
      + 'image costs, per stage and slice, one `conditioning` run, one `decoder_row` run per row and one `decoder_pixel` run per '
      + 'pixel (all channels); a `sample_row` run counts as one `decoder_row` + w `decoder_pixel` (what it runs); a scored '
      + 'image costs one `score` run per slice. Embedding look-ups, softmax, padding and element-wise ops are not counted, so the '
      + 'figures are a slight underestimate. Both decode modes run the same steps. The runtime skips work PyTorch does: where the '
      + 'manifest says a stage\'s first-slice context is constant (no aux plane, first slice 0), it computes that context once at '
      + 'load, so it runs no conditioning network for that slice when sampling and scores it with `score_context`; the "runtime" '
      + 'figures in the models table subtract that. Achieved GFLOP/s = FLOPs each side executes per image × images/s.',
    '- **Peak**: a 1024 × 1024 float32 matrix product with torch.matmul and with an onnxruntime `MatMul` graph, on as many '
      + 'threads as the setup has cores (workers × threads), best of 5 trials of 0.2 s. It is a practical peak, not the CPU\'s theoretical one: a graph whose '
      + 'convolutions run more efficiently than this product can read above 100%.',
    `- **Passes**: the whole measurement runs ${res.settings.trials ?? 1} time${(res.settings.trials ?? 1) > 1 ? 's' : ''}, one pass after another, and every figure, on both sides, is the fastest of its passes: other work on this `
      + 'shared machine only ever slows a measurement down, and a slow spell hits different figures in each pass.',
    '- **CPU cores busy**: process CPU time (user + system, every thread) over wall time during the phase, on each side.',
    '- **Targets** (issue 3): sampling at concurrency 1 at least 5× PyTorch at batch 1; throughput at concurrency 32 at least '
      + '8× that at concurrency 1; likelihood at least 1.5× PyTorch (at each batch size); event-loop delay p99 under 20 ms.',
  ]);
  out.push('', '## Running it', '', '```sh',
    'npm run bench                                    # full run: mu-fmnist and spn8-fmnist, setups 2x1 and 1x1, decode row and pixel, writes docs/',
    'npm run bench -- --setups 1x1 --decode row       # one core, one decode mode (about a quarter of the time)',
    'npm run bench -- --quick --models tiny-c1        # about a minute, writes to a temporary folder',
    'npm run bench -- --help                          # every flag (and its BENCH_* environment variable)',
    '```', '');
  return out.join('\n');
}
