// `npm run bench:cores`: how well this machine's cores add up for the service's graphs. The same
// graph, at the same batch size, run back to back by one worker thread alone, then by two worker
// threads at once (each with its own session, as the service's workers have), the two taking
// turns trial by trial. The ratio of the two workers' runs per second together to one worker's
// alone is the throughput a second core adds (2.00: it doubles it).
//
// Why it matters: `npm run bench`'s target of 32 concurrent requests at 8x the throughput of one
// is the product of two factors. One request keeps one worker busy; 32 requests keep both busy and
// batch 16 lanes per run on each. So 32-vs-1 = (what the second worker adds) x (lanes per second at
// batch 16 over lanes per second at batch 1, on one worker). This script measures both factors.
// Writes docs/bench-cores.md (or --out) and prints it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { decodeModes, type BenchResult } from './bench-report.js';
import { generatedAt, ONE_THREAD, rng, ROOT } from './graph-variants.js';

interface Job { path: string; inputs: InputSpec[]; batch: number; ms: number }
interface InputSpec { name: string; dtype: 'int32' | 'float32'; shape: (string | number)[] }
interface Manifest { stages: Array<{ name: string; firstSlice: number; graphs: Record<string, { file: string; inputs: InputSpec[] }> }> }

/** Inputs of the graph's declared shapes at this batch size: values valid for every graph (int
 * planes 0 or 1, a row/column/target index that exists), seeded. */
function feeds(inputs: InputSpec[], batch: number, target: number): Record<string, ort.Tensor> {
  const r = rng(7);
  const out: Record<string, ort.Tensor> = {};
  for (const t of inputs) {
    const shape = t.shape.map((d) => (typeof d === 'number' ? d : batch));
    const n = shape.reduce((a, b) => a * b, 1);
    if (t.dtype === 'int32') {
      const fixed = t.name === 'target' ? target : t.name === 'row' || t.name === 'col' ? 3 : -1;
      out[t.name] = new ort.Tensor('int32', Int32Array.from({ length: n }, () => (fixed >= 0 ? fixed : r() < 0.5 ? 0 : 1)), shape);
    } else {
      out[t.name] = new ort.Tensor('float32', Float32Array.from({ length: n }, () => (t.name === 'temperature' ? 1 : r())), shape);
    }
  }
  return out;
}

// ---- worker: opens the graph, then on each 'go' runs it for the asked time and answers runs/s ----
if (!isMainThread) {
  const job = workerData as Job & { target: number };
  const session = await ort.InferenceSession.create(job.path, ONE_THREAD);
  const f = feeds(job.inputs, job.batch, job.target);
  for (let i = 0; i < 20; i++) await session.run(f);
  parentPort!.on('message', async (m: { type: 'go' } | { type: 'stop' }) => {
    if (m.type === 'stop') {
      await session.release();
      parentPort!.close();
      return;
    }
    let runs = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < job.ms) {
      await session.run(f);
      runs++;
    }
    parentPort!.postMessage(runs / ((performance.now() - t0) / 1000));
  });
  parentPort!.postMessage('ready');
}

class Runner {
  private constructor(private readonly w: Worker) {}

  static async start(job: Job & { target: number }): Promise<Runner> {
    const w = new Worker(new URL(import.meta.url), { workerData: job });
    await new Promise<void>((resolve, reject) => {
      w.once('error', reject);
      w.once('message', () => resolve());
    });
    return new Runner(w);
  }

  /** runs per second over the job's time */
  go(): Promise<number> {
    return new Promise((resolve) => {
      this.w.once('message', (x: number) => resolve(x));
      this.w.postMessage({ type: 'go' });
    });
  }

  async stop(): Promise<void> {
    this.w.postMessage({ type: 'stop' });
    await new Promise((r) => this.w.once('exit', r));
  }
}

interface Row { model: string; stage: string; graph: string; batch: number; alone: number; together: number[] }

/**
 * What these factors predict for the main benchmark's highest concurrency against one request
 * (its report's JSON, headline setup, decode row), and what 8x would take. One request's time per
 * image is split by graph (and the rest, outside graph runs) as that report measured it at
 * concurrency 1; at concurrency N each graph's share shrinks by its batching gain at the largest
 * batch measured here, the rest is taken as the report measured it at N, and the workers add what
 * two add here (weighted by the graphs' time at N). For 8x: how fast the graph with the largest
 * share at N would have to run at that batch, all else as it is.
 */
function predict(rows: Row[], bench: BenchResult, B: number): string[] {
  const run = bench.runs[0];
  const workers = run.workers ?? bench.settings.workers;
  const out: string[] = [];
  for (const m of run.models) {
    const at = (stage: string, graph: string, batch: number) => rows.find((r) => r.model === m.name && r.stage === stage && r.graph === graph && r.batch === batch);
    const mode = decodeModes(m).find((d) => d.mode === 'row') ?? decodeModes(m)[0];
    const p1 = mode.sampling.find((p) => p.concurrency === 1);
    const pN = mode.sampling.reduce((a, b) => (b.concurrency > a.concurrency ? b : a));
    if (!p1?.graphs || !pN.graphs || pN === p1) continue;
    const terms = p1.graphs.map((g) => {
      const one = at(g.stage, g.graph, 1);
      const big = at(g.stage, g.graph, B);
      if (!one || !big) return undefined;
      const gain = (big.alone * B) / one.alone;
      return { g, t1: g.seconds / p1.images, gain, two: (big.together[0] + big.together[1]) / big.alone, msB: 1000 / big.alone, msB1: 1000 / one.alone };
    });
    if (terms.some((x) => x === undefined)) continue;
    const ts = terms as NonNullable<(typeof terms)[number]>[];
    const sum = (f: (x: (typeof ts)[number]) => number) => ts.reduce((a, x) => a + f(x), 0);
    const T1 = p1.seconds / p1.images;                 // one worker's time per image, one request at a time
    const restN = (pN.seconds * workers - pN.graphs.reduce((a, g) => a + g.seconds, 0)) / pN.images;
    const TN = sum((x) => x.t1 / x.gain) + restN;     // one worker's time per image at N, predicted
    const two = sum((x) => (x.t1 / x.gain) * x.two) / sum((x) => x.t1 / x.gain);
    const predicted = (two * T1) / TN;
    const measured = pN.imagesPerSec / p1.imagesPerSec;
    const L = ts.reduce((a, x) => (x.t1 / x.gain > a.t1 / a.gain ? x : a));
    const room = (two * T1) / 8 - (TN - L.t1 / L.gain); // what L may take per image for 8x
    const needMs = room > 0 ? (B * L.msB1) / (L.t1 / room) : NaN;
    const gN = pN.graphs.find((g) => g.stage === L.g.stage && g.graph === L.g.graph);
    const batchN = gN && gN.runs ? (gN.lanes / gN.runs).toFixed(1) : '';
    const gflops = (ms: number) => (L.g.flopsPerLane * B) / (ms / 1000) / 1e9;
    out.push(`| ${m.name} | ${pN.concurrency} | **${measured.toFixed(2)}×** | **${predicted.toFixed(2)}×** | ${(T1 / TN).toFixed(2)}× | ${two.toFixed(2)}× | ${L.g.stage}/${L.g.graph} (${batchN}) | ${L.msB.toFixed(3)} (${gflops(L.msB).toFixed(0)} GFLOP/s) | ${room > 0 ? `${needMs.toFixed(3)} (${gflops(needMs).toFixed(0)} GFLOP/s)` : 'not reachable: the rest alone is too slow'} |`);
  }
  if (!out.length) return [];
  return [
    '',
    `## What this predicts for ${bench.settings.concurrency.at(-1)} concurrent requests against one`,
    '',
    `From \`docs/bench.json\` (the main benchmark's report, ${bench.date}; its headline setup, ${workers} workers, decode row): one request's time per image split by graph at concurrency 1; at the highest concurrency each graph's share shrinks by its batching gain at batch ${B} measured above, the time outside graph runs is taken as that report measured it there, and the workers add what two add above (weighted by the graphs' time). The last columns: how fast a batch-${B} run of the graph with the largest share would have to be for 8×, all else as it is.`,
    '',
    `| model | concurrency | measured vs 1 | predicted vs 1 | one worker's gain | second worker | largest share (its mean batch there) | ms per batch-${B} run now | for 8× |`,
    '|---|---|---|---|---|---|---|---|---|',
    ...out,
  ];
}

async function measure(model: string, stage: Manifest['stages'][number], graph: string, batch: number, ms: number, trials: number): Promise<Row> {
  const g = stage.graphs[graph];
  const job = { path: join(ROOT, 'models', model, g.file), inputs: g.inputs, batch, ms, target: stage.firstSlice };
  const [a, b] = await Promise.all([Runner.start(job), Runner.start(job)]);
  let alone = 0;
  let together = [0, 0];
  try {
    for (let t = 0; t < trials; t++) {
      // best of the trials on each side: other work on a shared machine only ever slows a trial
      alone = Math.max(alone, await a.go());
      const both = await Promise.all([a.go(), b.go()]);
      if (both[0] + both[1] > together[0] + together[1]) together = both;
    }
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  return { model, stage: stage.name, graph, batch, alone, together };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      models: { type: 'string', default: 'mu-fmnist,spn8-fmnist' }, graphs: { type: 'string', default: 'sample_row,conditioning' },
      batches: { type: 'string', default: '1,16' }, seconds: { type: 'string', default: '1' }, trials: { type: 'string', default: '3' },
      out: { type: 'string', default: join(ROOT, 'docs', 'bench-cores.md') }, bench: { type: 'string', default: join(ROOT, 'docs', 'bench.json') },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log('npm run bench:cores -- [--models mu-fmnist,spn8-fmnist] [--graphs sample_row,conditioning] [--batches 1,16] [--seconds 1] [--trials 3] [--out docs/bench-cores.md (\'-\': print only)] [--bench docs/bench.json (the main benchmark\'s results to predict from; \'\': none)]');
    return;
  }
  const batches = values.batches!.split(',').map(Number);
  const ms = Number(values.seconds) * 1000;
  const trials = Number(values.trials);
  if (batches.some((b) => !Number.isInteger(b) || b < 1) || !(ms > 0) || !(trials >= 1)) throw new Error('--batches, --seconds and --trials must be positive');
  const load = loadavg()[0];
  const t0 = performance.now();
  const rows: Row[] = [];
  for (const model of values.models!.split(',')) {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'models', model, 'manifest.json'), 'utf8')) as Manifest;
    for (const stage of manifest.stages) {
      for (const graph of values.graphs!.split(',')) {
        if (!stage.graphs[graph]) throw new Error(`${model}/${stage.name} has no graph '${graph}'`);
        for (const batch of batches) {
          const r = await measure(model, stage, graph, batch, ms, trials);
          rows.push(r);
          process.stderr.write(`${model}/${stage.name}/${graph} batch ${batch}: alone ${r.alone.toFixed(0)} runs/s, together ${r.together.map((x) => x.toFixed(0)).join(' + ')}\n`);
        }
      }
    }
  }
  const msPer = (runsPerSec: number) => (1000 / runsPerSec).toFixed(3);
  const lines = [
    '# Benchmark: what a second core adds, graph by graph',
    '',
    `Generated by \`npm run bench:cores${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\` on ${generatedAt()} (${((performance.now() - t0) / 1000).toFixed(0)} s wall); 1-minute load average ${load.toFixed(2)} at start.`,
    '',
    `Each graph of the shipped models, at each batch size, runs back to back for ${ms / 1000} s on one worker thread alone, then on two worker threads at once (each its own session on one intra-op thread, as the service's workers), the two taking turns trial by trial; every figure is the best of ${trials} trials. **2 workers / 1** is the two workers' runs per second together over one worker's alone: 2.00 when a second core doubles the throughput. **lanes/s vs batch 1** is, on one worker, images advanced per second at this batch size over batch 1: what batching alone gives.`,
    '',
    '| model | stage | graph | batch | ms per run, 1 worker | ms per run, 2 workers at once | 2 workers / 1 | lanes/s vs batch 1 |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const b1 = rows.find((x) => x.model === r.model && x.stage === r.stage && x.graph === r.graph && x.batch === 1);
      const gain = b1 ? `${((r.alone * r.batch) / b1.alone).toFixed(2)}×` : '';
      const both = r.together[0] + r.together[1];
      return `| ${r.model} | ${r.stage} | ${r.graph} | ${r.batch} | ${msPer(r.alone)} | ${msPer(both / 2)} | **${(both / r.alone).toFixed(2)}** | ${gain} |`;
    }),
    ...(values.bench && existsSync(values.bench) ? predict(rows, JSON.parse(readFileSync(values.bench, 'utf8')) as BenchResult, Math.max(...batches)) : []),
    '',
  ];
  const md = lines.join('\n');
  process.stdout.write(md);
  if (values.out !== '-') {
    writeFileSync(values.out!, md);
    process.stderr.write(`wrote ${values.out}\n`);
  }
}

if (isMainThread) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
