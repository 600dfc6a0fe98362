// `npm run bench`: the runtime against the PyTorch reference sampler, in one run, on the same
// weights and machine. For each setup (workers x threads) it runs scripts/bench_torch.py (PyTorch sampling,
// scoring, FLOP counts and a matmul peak, as JSON), then the runtime on the same models and test
// images in each decode mode (sampling: one sample_row run per row, its pixel steps unrolled, against one
// decoder_row run per row plus one decoder_pixel run per pixel; scoring does not depend on the
// mode and is measured once), and writes the report (docs/bench.md) and its chart (docs/bench.png).
import { spawn } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { createRuntime, type DecodeMode, type ModelSummary, type RawImage, type SpnRuntime } from '../src/runtime/index.js';
import { renderChart } from './bench-chart.js';
import { modelsSubset } from './graph-variants.js';
import {
  consoleReport, markdownReport, percentile,
  type BenchResult, type GraphTime, type LikelihoodPoint, type ModelResult, type SamplingPoint, type ThreadsResult,
} from './bench-report.js';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);

const HELP = `npm run bench -- [flags]     (each flag also reads the environment variable in brackets)

  --models a,b              models to run: folders of --models-dir, configs of scripts/configs, checkpoints
                            in --runs [BENCH_MODELS] (default mu-fmnist,spn8-fmnist)
  --setups 2x1,1x1          runtime setups to measure, each WORKERSxTHREADS (inference workers x intra-op threads
                            per worker); the first is the headline [BENCH_SETUPS] (default 2x1,1x1: the whole
                            two-core machine, then one core). PyTorch is run on as many cores: at every thread
                            count from 1 to WORKERS*THREADS, and each PyTorch figure is the best of them
  --trials 2                passes: every setup is measured this many times, one whole pass after another, on
                            both sides, and each figure's fastest kept (other work on a shared machine only
                            ever slows a measurement) [BENCH_TRIALS]
  --decode row,pixel        runtime decode modes to measure sampling in: row = one sample_row run per row (its
                            pixel steps unrolled in the graph), pixel = one decoder_row run per row and one
                            decoder_pixel run per pixel; row is the headline when listed [BENCH_DECODE]
                            (default row,pixel)
  --concurrency 1,8,32      runtime concurrency = PyTorch batch sizes for sampling [BENCH_CONCURRENCY]
  --sample-images 24,64,256 images sampled at each concurrency [BENCH_SAMPLE_IMAGES]
  --likelihood-batches 1,64 [BENCH_LIKELIHOOD_BATCHES]
  --likelihood-images 32,256 test images scored at each batch size [BENCH_LIKELIHOOD_IMAGES]
  --quick                   fewer images (2,8,32 sampled; 4,64 scored), and the report goes to a temporary
                            folder unless --out is given [BENCH_QUICK=1]
  --models-dir models       [BENCH_MODELS_DIR]
  --runs runs               PyTorch checkpoints, <runs>/<model>/<stage>/best.pt [BENCH_RUNS]
  --python /usr/bin/python3 a Python with torch [PYTHON]
  --out docs                where bench.md and bench.png go [BENCH_OUT]
  --json FILE               also write the raw results as JSON [BENCH_JSON]
  --report-from FILE        measure nothing: write the report and chart from a --json file
  --help

  npm run bench                                # the full run (under 10 minutes on two idle cores)
  npm run bench -- --quick --models tiny-c1    # about a minute
`;

interface Setup { workers: number; threads: number }

interface Options {
  models: string[];
  trials: number;
  setups: Setup[];
  /** headline first */
  decode: DecodeMode[];
  concurrency: number[];
  sampleImages: number[];
  likelihoodBatches: number[];
  likelihoodImages: number[];
  quick: boolean;
  modelsDir: string;
  runs: string;
  python: string;
  out: string;
  json: string;
  reportFrom: string;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      models: { type: 'string' }, setups: { type: 'string' }, decode: { type: 'string' }, trials: { type: 'string' },
      concurrency: { type: 'string' }, 'sample-images': { type: 'string' },
      'likelihood-batches': { type: 'string' }, 'likelihood-images': { type: 'string' },
      quick: { type: 'boolean' }, 'models-dir': { type: 'string' }, runs: { type: 'string' },
      python: { type: 'string' }, out: { type: 'string' }, json: { type: 'string' }, 'report-from': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const env = process.env;
  const ints = (s: string, what: string) => {
    const l = s.split(',').filter(Boolean).map(Number);
    if (!l.length || l.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`--${what}: expected positive integers, got '${s}'`);
    return l;
  };
  const quick = values.quick ?? env.BENCH_QUICK === '1';
  const decode = (values.decode ?? env.BENCH_DECODE ?? 'row,pixel').split(',').filter(Boolean);
  if (!decode.length || decode.some((d) => d !== 'row' && d !== 'pixel') || new Set(decode).size !== decode.length) {
    throw new Error(`--decode: expected row and/or pixel, got '${decode.join(',')}'`);
  }
  decode.sort((a, b) => Number(b === 'row') - Number(a === 'row'));   // row, the runtime's default, is the headline
  const o: Options = {
    models: (values.models ?? env.BENCH_MODELS ?? 'mu-fmnist,spn8-fmnist').split(',').filter(Boolean),
    setups: (values.setups ?? env.BENCH_SETUPS ?? '2x1,1x1').split(',').filter(Boolean).map((x) => {
      const m = /^(\d+)x(\d+)$/.exec(x);
      if (!m || +m[1] < 1 || +m[2] < 1) throw new Error(`--setups: expected WORKERSxTHREADS entries like 2x1, got '${x}'`);
      return { workers: +m[1], threads: +m[2] };
    }),
    decode: decode as DecodeMode[],
    trials: ints(values.trials ?? env.BENCH_TRIALS ?? (quick ? '1' : '2'), 'trials')[0],
    concurrency: ints(values.concurrency ?? env.BENCH_CONCURRENCY ?? '1,8,32', 'concurrency'),
    sampleImages: ints(values['sample-images'] ?? env.BENCH_SAMPLE_IMAGES ?? (quick ? '2,8,32' : '24,64,256'), 'sample-images'),
    likelihoodBatches: ints(values['likelihood-batches'] ?? env.BENCH_LIKELIHOOD_BATCHES ?? '1,64', 'likelihood-batches'),
    likelihoodImages: ints(values['likelihood-images'] ?? env.BENCH_LIKELIHOOD_IMAGES ?? (quick ? '4,64' : '32,256'), 'likelihood-images'),
    quick,
    modelsDir: resolve(values['models-dir'] ?? env.BENCH_MODELS_DIR ?? join(ROOT, 'models')),
    runs: resolve(values.runs ?? env.BENCH_RUNS ?? join(ROOT, 'runs')),
    python: values.python ?? env.PYTHON ?? '/usr/bin/python3',
    out: resolve(values.out ?? env.BENCH_OUT ?? (quick ? join(tmpdir(), 'spn-bench') : join(ROOT, 'docs'))),
    json: values.json ?? env.BENCH_JSON ?? '',
    reportFrom: values['report-from'] ?? '',
  };
  if (o.reportFrom) return o;
  if (o.sampleImages.length !== o.concurrency.length) throw new Error('--sample-images needs one count per --concurrency entry');
  if (o.likelihoodImages.length !== o.likelihoodBatches.length) throw new Error('--likelihood-images needs one count per --likelihood-batches entry');
  for (const m of o.models) {
    if (!existsSync(join(o.modelsDir, m, 'manifest.json'))) {
      throw new Error(`${join(o.modelsDir, m, 'manifest.json')} does not exist (export the model first, or pick others: --models tiny-c1)`);
    }
  }
  return o;
}

// ---- PyTorch side ------------------------------------------------------------------------------

interface TorchPoint { batch: number; images: number; seconds: number; cpu_seconds: number; latencies: number[]; bits_per_dim?: number[]; threads?: number }
interface TorchModel {
  parameters: number;
  /** FLOPs of one run at batch 1 per stage and graph (sample_row = decoder_row + w x decoder_pixel) */
  flops: {
    per_graph: Record<string, Record<string, number>>;
    sample_image: number;
    /** FLOPs of one sampled image per graph kind (conditioning, decoder_row, decoder_pixel) */
    sample_parts: Record<string, number>;
    likelihood_image: number;
    /** what the runtime executes: less the conditioning of first slices with a constant context */
    runtime_sample_image?: number;
    runtime_likelihood_image?: number;
  };
  sampling: TorchPoint[];
  likelihood: TorchPoint[];
}
interface TorchResult { torch: string; threads: number; matmul: { n: number; gflops: number; cores: number }; models: Record<string, TorchModel> }

/** PyTorch at each thread count, each figure the best of them (tagged with its thread count); the
 * matmul peak is the one at the most threads. */
async function runTorchBest(o: Options, threadCounts: number[], imagesOut: string, matmulOnnx: string): Promise<TorchResult> {
  const all: TorchResult[] = [];
  for (const t of threadCounts) {
    process.stderr.write(`-- PyTorch at ${t} thread${t > 1 ? 's' : ''}\n`);
    all.push(await runTorch(o, t, imagesOut, matmulOnnx));
  }
  const top = all[all.length - 1];
  const best = <P extends TorchPoint>(pick: (r: TorchResult) => P[]) => pick(top).map((_, i) => {
    const options = all.map((r) => ({ ...pick(r)[i], threads: r.threads }));
    return options.reduce((a, b) => (b.images / b.seconds > a.images / a.seconds ? b : a));
  });
  const models: Record<string, TorchModel> = {};
  for (const name of Object.keys(top.models)) {
    models[name] = { ...top.models[name], sampling: best((r) => r.models[name].sampling), likelihood: best((r) => r.models[name].likelihood) };
  }
  return { ...top, models };
}

function runTorch(o: Options, threads: number, imagesOut: string, matmulOnnx: string): Promise<TorchResult> {
  const args = [join(ROOT, 'scripts', 'bench_torch.py'), '--models', o.models.join(','), '--runs', o.runs,
    '--threads', String(threads), '--sample-batches', o.concurrency.join(','), '--sample-images', o.sampleImages.join(','),
    '--likelihood-batches', o.likelihoodBatches.join(','), '--likelihood-images', o.likelihoodImages.join(','),
    '--images-out', imagesOut, '--matmul-onnx', matmulOnnx];
  return new Promise((done, fail) => {
    const p = spawn(o.python, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.on('error', fail);
    p.on('close', (code) => {
      if (code !== 0) return fail(new Error(`${o.python} scripts/bench_torch.py exited with ${code}`));
      try { done(JSON.parse(stdout)); } catch (e) { fail(new Error(`bench_torch.py printed no JSON: ${(e as Error).message}`)); }
    });
  });
}

// ---- runtime side ------------------------------------------------------------------------------

async function onnxMatmulPeak(path: string, n: number, threads: number): Promise<number> {
  const s = await ort.InferenceSession.create(path, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1 });
  const a = new ort.Tensor('float32', Float32Array.from({ length: n * n }, () => Math.random() - 0.5), [n, n]);
  const b = new ort.Tensor('float32', Float32Array.from({ length: n * n }, () => Math.random() - 0.5), [n, n]);
  for (let i = 0; i < 3; i++) (await s.run({ a, b })).y.dispose();
  let best = 0;
  for (let trial = 0; trial < 5; trial++) {   // best of 5: other work only ever slows a trial
    let reps = 0;
    let dt = 0;
    const t0 = performance.now();
    while (dt < 200 || reps < 2) {
      (await s.run({ a, b })).y.dispose();
      reps++;
      dt = performance.now() - t0;
    }
    best = Math.max(best, (2 * n ** 3 * reps) / (dt / 1000) / 1e9);
  }
  await s.release();
  return best;
}

/** c loops in parallel, each starting a new job as soon as its last one ends, so that c jobs are
 * in flight throughout; timed until the n-th job completes. Jobs still running then are aborted
 * and not counted: waiting for them would time a tail at falling concurrency (a batch of PyTorch
 * has no such tail). Returns the seconds to the n-th completion and each completed job's ms. */
async function closedLoop(n: number, c: number, job: (i: number, signal: AbortSignal) => Promise<number>, exact = false) {
  let next = 0;
  let done = 0;
  let seconds = 0;
  const lat: number[] = [];
  const stop = new AbortController();
  setMaxListeners(0, stop.signal);   // every job in flight listens to it
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(c, n) }, async () => {
    while (!stop.signal.aborted && (!exact || next < n)) {
      let ms: number;
      try {
        ms = await job(next++, stop.signal);
      } catch (err) {
        if (stop.signal.aborted) break;
        throw err;
      }
      if (stop.signal.aborted) break;
      lat.push(ms);
      if (++done === n) {
        seconds = (performance.now() - t0) / 1000;
        stop.abort();
      }
    }
  }));
  return { seconds, lat };
}

async function sampleOne(rt: SpnRuntime, model: string, seed: number, signal?: AbortSignal): Promise<number> {
  const t0 = performance.now();
  for await (const ev of rt.sample({ model, count: 1, seed, temperature: 1, signal })) if (ev.type === 'done') break;
  return performance.now() - t0;
}

/** One image, for comparing decode modes: the same seed must give the same pixels in each. */
async function sampleImage(rt: SpnRuntime, model: string, seed: number): Promise<Uint8Array> {
  for await (const ev of rt.sample({ model, count: 1, seed, temperature: 1 })) if (ev.type === 'done') return ev.images[0].data;
  throw new Error(`sampling ${model} ended without a done event`);
}

/** The graph timings and event-loop delay of one measured phase. */
class Phase {
  private times = new Map<string, GraphTime>();
  private model = '';
  private active = false;
  private loop = monitorEventLoopDelay({ resolution: 1 });

  constructor(private readonly flops: () => Record<string, Record<string, number>>) {}

  /** the measured window, in ms since the epoch (the runs' clock); end is Infinity while it runs */
  private window = { start: 0, end: Infinity };

  graphRun(model: string, stage: string, graph: string, seconds: number, batch: number, endMs: number): void {
    if (!this.active || model !== this.model) return;
    // only the part of a run inside the window counts (runs in flight when it closes, e.g. of an
    // aborted tail, report after it), and a run counts as a run where it ends
    const startMs = endMs - seconds * 1000;
    const inside = Math.min(endMs, this.window.end) - Math.max(startMs, this.window.start);
    if (inside <= 0) return;
    const k = `${stage}/${graph}`;
    const g = this.times.get(k) ?? { stage, graph, runs: 0, seconds: 0, lanes: 0, flopsPerLane: this.flops()[stage]?.[graph] ?? 0 };
    g.seconds += inside / 1000;
    if (endMs <= this.window.end) { g.runs++; g.lanes += batch; }
    this.times.set(k, g);
  }

  async run<T>(rt: SpnRuntime, model: string, fn: () => Promise<T>) {
    while (rt.stats().running || rt.stats().queued) await sleep(20);
    await sleep(250);                      // timings of earlier runs arrive every 100 ms
    this.times = new Map();
    this.model = model;
    this.active = true;
    this.loop.reset();
    this.loop.enable();
    const cpu0 = process.cpuUsage();       // every thread of the process: main, workers, ORT pools
    const t0 = performance.now();
    this.window = { start: performance.timeOrigin + t0, end: Infinity };
    const result = await fn();
    const t1 = performance.now();
    this.window.end = performance.timeOrigin + t1;
    const wall = (t1 - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    this.loop.disable();
    await sleep(250);
    this.active = false;
    const ns = (x: number) => x / 1e6;
    return {
      result, graphs: [...this.times.values()], cores: (cpu.user + cpu.system) / 1e6 / wall,
      eventLoopMs: { p50: ns(this.loop.percentile(50)), p99: ns(this.loop.percentile(99)), max: ns(this.loop.max) },
    };
  }
}

interface TestImages { height: number; width: number; channels: number; images: number[][] }

async function benchRuntime(o: Options, { workers, threads }: Setup, modelsDir: string, torch: TorchResult,
  images: Record<string, TestImages>): Promise<ModelResult[]> {
  const sampling = new Map<string, Map<DecodeMode, SamplingPoint[]>>(o.models.map((m) => [m, new Map()]));
  const firstImage = new Map<string, Map<DecodeMode, Uint8Array>>(o.models.map((m) => [m, new Map()]));
  const scoring = new Map<string, { likelihood: LikelihoodPoint[]; bpd: Map<number, number> }>();
  const summaries = new Map<string, ModelSummary>();
  // one runtime per decode mode (the mode is a runtime option); scoring does not depend on the
  // mode, so it is measured once, in the headline mode's runtime
  for (const decode of o.decode) {
    const headline = decode === o.decode[0];
    let flops: Record<string, Record<string, number>> = {};
    const phase = new Phase(() => flops);
    const rt = await createRuntime({
      modelsDir, provider: 'cpu', workers, threads, decode,
      maxRunning: Math.max(...o.concurrency, ...o.likelihoodBatches), maxQueue: 1024,
      observer: { graphRun: (m, s, g, sec, b, end) => phase.graphRun(m, s, g, sec, b, end) },
    });
    try {
      for (const name of o.models) {
        const tm = torch.models[name];
        flops = tm.flops.per_graph;
        summaries.set(name, rt.model(name)!);
        const img = images[name];
        const raw = img.images.map((d) => ({ height: img.height, width: img.width, channels: img.channels, data: Uint8Array.from(d) }));
        const cMax = Math.max(...o.concurrency);

        // warm-up: one image alone (JIT, every graph; the same seed in every mode, so the modes
        // must sample the same pixels), a burst at the highest concurrency that is aborted after a
        // moment (first runs at that batch size), and one round of scoring
        process.stderr.write(`runtime ${name} (${workers} workers x ${threads} threads, decode ${decode}): warming up\n`);
        firstImage.get(name)!.set(decode, await sampleImage(rt, name, 1e6));
        const aborts = Array.from({ length: cMax }, () => new AbortController());
        const burst = aborts.map((ac, i) => sampleOne(rt, name, 1e6 + 1 + i, ac.signal).catch(() => 0));
        await sleep(500);
        for (const ac of aborts) ac.abort();
        await Promise.all(burst);

        const points: SamplingPoint[] = [];
        let seed0 = 0;
        for (const [k, c] of o.concurrency.entries()) {
          const n = o.sampleImages[k];
          let seed = seed0;   // every pass samples the same images
          const p = await phase.run(rt, name, () => closedLoop(n, c, (_i, signal) => sampleOne(rt, name, seed++, signal)));
          seed0 += n;
          const ips = n / p.result.seconds;
          points.push({
            decode, concurrency: c, images: n, seconds: p.result.seconds, imagesPerSec: ips,
            latencyMs: { p50: percentile(p.result.lat, 50), p95: percentile(p.result.lat, 95) },
            gflops: ((tm.flops.runtime_sample_image ?? tm.flops.sample_image) * ips) / 1e9, cores: p.cores, workers, eventLoopMs: p.eventLoopMs, graphs: p.graphs,
          });
          process.stderr.write(`runtime ${name} decode ${decode} sampling concurrency ${c}: ${ips.toFixed(2)} images/s, event loop p99 ${p.eventLoopMs.p99.toFixed(1)} ms\n`);
        }
        sampling.get(name)!.set(decode, points);
        if (headline) scoring.set(name, await benchLikelihood(o, rt, phase, name, tm, raw, workers));
      }
    } finally {
      await rt.close();
    }
  }

  return o.models.map((name) => {
    const tm = torch.models[name];
    const { likelihood, bpd } = scoring.get(name)!;
    // the same weights on both sides: PyTorch's bits/dim of the same images
    let maxAbsDiff = 0;
    const compared = new Set<number>();
    for (const tp of tm.likelihood) {
      tp.bits_per_dim?.forEach((v, i) => {
        const r = bpd.get(i);
        if (r === undefined) return;
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs(r - v));
        compared.add(i);
      });
    }
    const firsts = [...firstImage.get(name)!.values()];
    const byMode = sampling.get(name)!;
    return {
      name, description: summaries.get(name)!.description, stages: summaries.get(name)!.stages.map((s) => s.name), parameters: tm.parameters,
      flops: { sampleImage: tm.flops.sample_image, likelihoodImage: tm.flops.likelihood_image,
        runtimeSampleImage: tm.flops.runtime_sample_image, runtimeLikelihoodImage: tm.flops.runtime_likelihood_image, sampleParts: tm.flops.sample_parts, perGraph: tm.flops.per_graph },
      runtime: {
        decode: o.decode[0], sampling: byMode.get(o.decode[0])!, likelihood,
        decodeModes: o.decode.map((mode) => ({ mode, sampling: byMode.get(mode)! })),
        decodeParity: firsts.length > 1 ? firsts.every((x) => Buffer.compare(x, firsts[0]) === 0) : null,
      },
      torch: torchSummary(tm),
      weightsCheck: { images: compared.size, maxAbsDiff },
    };
  });
}

async function benchLikelihood(o: Options, rt: SpnRuntime, phase: Phase, name: string, tm: TorchModel, raw: RawImage[], workers: number) {
  const bMax = Math.max(...o.likelihoodBatches);
  await Promise.all(Array.from({ length: bMax }, (_, i) => rt.likelihood({ model: name, image: raw[i % raw.length] })));
  const likelihood: LikelihoodPoint[] = [];
  const bpd = new Map<number, number>();
  for (const [k, b] of o.likelihoodBatches.entries()) {
    const n = o.likelihoodImages[k];
    // exactly the first n images, each once, as PyTorch scores them (every image costs the same, so
    // the tail of the last batch is PyTorch's too)
    if (n > raw.length) throw new Error(`--likelihood-images ${n}: only ${raw.length} test images were written`);
    const p = await phase.run(rt, name, () => closedLoop(n, b, async (i, signal) => {
      const r = await rt.likelihood({ model: name, image: raw[i], signal });
      bpd.set(i, r.bitsPerDim);
      return r.timings.totalMs;
    }, true));
    const ips = n / p.result.seconds;
    // the first n test images, as PyTorch scores them (each image's bits/dim is the same in every trial)
    const firstN = [...Array(n).keys()].map((i) => bpd.get(i)!);
    const mean = firstN.reduce((a, x) => a + x, 0) / n;
    likelihood.push({
      batch: b, images: n, seconds: p.result.seconds, imagesPerSec: ips,
      gflops: ((tm.flops.runtime_likelihood_image ?? tm.flops.likelihood_image) * ips) / 1e9, cores: p.cores, workers, meanBitsPerDim: mean, eventLoopMs: p.eventLoopMs, graphs: p.graphs,
    });
    process.stderr.write(`runtime ${name} likelihood batch ${b}: ${ips.toFixed(1)} images/s\n`);
  }
  return { likelihood, bpd };
}

function torchSummary(tm: TorchModel): ModelResult['torch'] {
  return {
    sampling: tm.sampling.map((p) => {
      const ips = p.images / p.seconds;
      return {
        concurrency: p.batch, images: p.images, seconds: p.seconds, imagesPerSec: ips,
        latencyMs: { p50: percentile(p.latencies, 50) * 1e3, p95: percentile(p.latencies, 95) * 1e3 },
        gflops: (tm.flops.sample_image * ips) / 1e9, cores: p.cpu_seconds / p.seconds, threads: p.threads,
      };
    }),
    likelihood: tm.likelihood.map((p) => {
      const ips = p.images / p.seconds;
      const b = p.bits_per_dim ?? [];
      return {
        batch: p.batch, images: p.images, seconds: p.seconds, imagesPerSec: ips,
        gflops: (tm.flops.likelihood_image * ips) / 1e9, cores: p.cpu_seconds / p.seconds, threads: p.threads, meanBitsPerDim: b.reduce((x, y) => x + y, 0) / Math.max(1, b.length),
      };
    }),
  };
}

const shortPath = (p: string) => (p.startsWith(`${ROOT}/`) ? p.slice(ROOT.length + 1) : p);

/** Other work on the machine makes every figure noisy: say so in the report. The load average
 * counts only at the start: at the end it is the benchmark's own load. */
function busyWarning(atStart: boolean): string | null {
  const others: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (/\b(train|export|evaluate)\.py\b/.test(cmd)) others.push(cmd.trim().split('/').pop()!);
    } catch { /* gone */ }
  }
  const load = loadavg()[0];
  if (others.length) return `other processes were running during the benchmark (${others.join('; ')}); timings are noisy`;
  if (atStart && load > 0.7) return `the 1-minute load average was ${load.toFixed(2)} at start; other work competes for the cores and timings are noisy`;
  return null;
}

/** One setup measured in several passes -> each figure the fastest of the passes (other work on a
 * shared machine only ever slows a measurement down), on both sides alike. */
function fastestOf(rs: ThreadsResult[]): ThreadsResult {
  const pick = <P extends { imagesPerSec: number }>(lists: P[][]) => lists[0].map((_, i) => lists.map((l) => l[i]).reduce((a, b) => (b.imagesPerSec > a.imagesPerSec ? b : a)));
  const first = rs[0];
  return {
    ...first,
    peak: { ...first.peak, torchMatmul: Math.max(...rs.map((r) => r.peak.torchMatmul)), onnxMatmul: Math.max(...rs.map((r) => r.peak.onnxMatmul)) },
    models: first.models.map((m, k) => {
      const all = rs.map((r) => r.models[k]);
      const modes = (m.runtime.decodeModes ?? []).map((d, j) => ({ mode: d.mode, sampling: pick(all.map((a) => a.runtime.decodeModes![j].sampling)) }));
      return {
        ...m,
        runtime: {
          ...m.runtime,
          sampling: modes[0]?.sampling ?? pick(all.map((a) => a.runtime.sampling)),
          likelihood: pick(all.map((a) => a.runtime.likelihood)),
          decodeModes: modes,
          decodeParity: all.every((a) => a.runtime.decodeParity !== false) ? m.runtime.decodeParity : false,
        },
        torch: { sampling: pick(all.map((a) => a.torch.sampling)), likelihood: pick(all.map((a) => a.torch.likelihood)) },
        weightsCheck: { images: m.weightsCheck.images, maxAbsDiff: Math.max(...all.map((a) => a.weightsCheck.maxAbsDiff)) },
      };
    }),
  };
}

async function main(): Promise<void> {
  const o = options();
  if (o.reportFrom) {
    await writeReport(JSON.parse(readFileSync(o.reportFrom, 'utf8')) as BenchResult, o);
    return;
  }
  const t0 = performance.now();
  const loadAtStart = loadavg();
  const warning = busyWarning(true);
  if (warning) process.stderr.write(`WARNING: ${warning}\n`);
  const tmp = mkdtempSync(join(tmpdir(), 'spn-bench-'));
  const modelsDir = modelsSubset(o.modelsDir, o.models);
  const passes: ThreadsResult[][] = [];
  let torchVersion = '';
  try {
    // every setup is measured once per pass, and the passes run one after another: a slow spell
    // on this shared machine then hits different figures in each pass, and the fastest is kept
    for (let pass = 1; pass <= o.trials; pass++) {
     const runs: ThreadsResult[] = [];
     passes.push(runs);
     for (const setup of o.setups) {
      const { workers, threads } = setup;
      const cores = workers * threads;
      process.stderr.write(`\n== pass ${pass}/${o.trials}, ${workers} workers x ${threads} threads: PyTorch reference\n`);
      const imagesPath = join(tmp, 'images.json');
      const matmulPath = join(tmp, 'matmul.onnx');
      const torchThreads = Array.from({ length: cores }, (_, i) => i + 1);
      const torch = await runTorchBest(o, torchThreads, imagesPath, matmulPath);
      torchVersion = torch.torch;
      const images = JSON.parse(readFileSync(imagesPath, 'utf8')) as Record<string, TestImages>;
      process.stderr.write(`== ${workers} workers x ${threads} threads: runtime\n`);
      const onnxPeak = await onnxMatmulPeak(matmulPath, torch.matmul.n, cores);
      process.stderr.write(`onnxruntime MatMul ${torch.matmul.n}: ${onnxPeak.toFixed(1)} GFLOP/s at ${cores} threads\n`);
      const models = await benchRuntime(o, setup, modelsDir, torch, images);
      runs.push({ threads, workers, torchThreads, peak: { torchMatmul: torch.matmul.gflops, onnxMatmul: onnxPeak, n: torch.matmul.n, torchMatmulCores: torch.matmul.cores }, models });
     }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(modelsDir, { recursive: true, force: true });
  }

  const ortVersion = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')).version;
  const result: BenchResult = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    quick: o.quick,
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.versions.node, onnxruntime: ortVersion, torch: torchVersion, load: loadAtStart },
    settings: { modelsDir: shortPath(o.modelsDir), runsDir: shortPath(o.runs), workers: o.setups[0].workers, trials: o.trials, decode: o.decode, concurrency: o.concurrency, sampleImages: o.sampleImages, likelihoodBatches: o.likelihoodBatches, likelihoodImages: o.likelihoodImages },
    runs: o.setups.map((_, k) => fastestOf(passes.map((p) => p[k]))),
    busyWarning: warning ?? busyWarning(false), wallSeconds: (performance.now() - t0) / 1000,
  };
  await writeReport(result, o);
}

async function writeReport(result: BenchResult, o: Options): Promise<void> {
  process.stdout.write(`${consoleReport(result)}\n`);
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'bench.md'), markdownReport(result, 'bench.png'));
  writeFileSync(join(o.out, 'bench.png'), await renderChart(result));
  if (o.json && o.json !== o.reportFrom) writeFileSync(o.json, JSON.stringify(result, null, 1));
  process.stdout.write(`\nwrote ${join(o.out, 'bench.md')} and ${join(o.out, 'bench.png')} (${result.wallSeconds.toFixed(0)} s)\n`);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
