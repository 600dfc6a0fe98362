// `npm run bench:scheduler`: the engine's turn-taking scheduler (each stage's row graph keeps the
// turn for QUANTUM steps) against running every stage every step (QUANTUM=1, the previous
// scheduler), in one run on the same models: two runtimes in this process, identical but for the
// quantum, taking turns block by block so that a slow spell of the shared machine hits both.
//
// Clients run closed loops (each sends its next request when its last is answered), optionally
// after a random think time: with none, requests that start together stay in step through the
// stages (the main benchmark's condition); with some, they arrive out of step, as independent
// users' requests do, and spread over the stages. Writes docs/bench-scheduler.md (or --out).
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DEFAULT_WORKERS } from '../src/config.js';
import { createRuntime, DEFAULT_QUANTUM, type SpnRuntime } from '../src/runtime/index.js';
import { percentile } from './bench-report.js';
import { generatedAt, modelsSubset, ROOT } from './graph-variants.js';

const HELP = `npm run bench:scheduler -- [flags]
  --models mu-fmnist,spn8-fmnist
  --quantum ${DEFAULT_QUANTUM}              the quantum measured against the baseline's
  --baseline 1              the baseline's quantum (1: every stage every step, the previous scheduler)
  --concurrency 8,32        clients
  --think 0,20              each client waits a random 0..think ms before each request
  --seconds 3               length of one block
  --blocks 4                blocks per setting and scheduler (they alternate)
  --workers 2               inference workers per runtime (default: one per core, at most 8)
  --out docs/bench-scheduler.md ('-': print only)`;

/** One runtime and what its blocks measured; `rows` counts its sample_row runs and their lanes while `on`. */
interface Side { quantum: number; rt: SpnRuntime; rates: number[]; lat: number[]; first: number[]; rows: { runs: number; lanes: number; on: boolean } }

async function block(side: Side, model: string, clients: number, thinkMs: number, seconds: number): Promise<void> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  let seed = 0;
  const t0 = performance.now();
  side.rows.on = true;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) {
      if (thinkMs) await new Promise((r) => setTimeout(r, Math.random() * thinkMs));
      const s0 = performance.now();
      let first = NaN;
      for await (const ev of side.rt.sample({ model, count: 1, seed: seed++, temperature: 1 })) {
        if (ev.type === 'slice' && Number.isNaN(first)) first = performance.now() - s0;
        if (ev.type === 'done') break;
      }
      side.lat.push(performance.now() - s0);
      side.first.push(first);
      done++;
    }
  }));
  side.rows.on = false;
  side.rates.push(done / ((performance.now() - t0) / 1000));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      models: { type: 'string', default: 'mu-fmnist,spn8-fmnist' }, quantum: { type: 'string', default: String(DEFAULT_QUANTUM) },
      baseline: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '8,32' }, think: { type: 'string', default: '0,20' },
      seconds: { type: 'string', default: '3' }, blocks: { type: 'string', default: '4' }, workers: { type: 'string', default: '' },
      out: { type: 'string', default: join(ROOT, 'docs', 'bench-scheduler.md') }, help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const ints = (s: string, what: string, min = 1) => {
    const l = s.split(',').map(Number);
    if (!l.length || l.some((x) => !Number.isInteger(x) || x < min)) throw new Error(`--${what}: expected integers >= ${min}, got '${s}'`);
    return l;
  };
  const models = values.models!.split(',');
  const quantum = ints(values.quantum!, 'quantum', 2)[0];
  const baseline = ints(values.baseline!, 'baseline')[0];
  const concurrency = ints(values.concurrency!, 'concurrency');
  const thinks = ints(values.think!, 'think', 0);
  const seconds = ints(values.seconds!, 'seconds')[0];
  const blocks = ints(values.blocks!, 'blocks')[0];
  const workers = values.workers ? ints(values.workers, 'workers')[0] : DEFAULT_WORKERS;
  const load = loadavg();
  const started = performance.now();
  const modelsDir = modelsSubset(join(ROOT, 'models'), models);

  const rows: string[] = [];
  for (const model of models) {
    const sides: Side[] = [];
    for (const q of [baseline, quantum]) {
      const rows = { runs: 0, lanes: 0, on: false };
      const rt = await createRuntime({
        modelsDir, provider: 'cpu', workers, threads: 1, maxQueue: 1024, maxRunning: 256, quantum: q,
        observer: { graphRun: (_m, _s, graph, _sec, batch) => { if (rows.on && graph === 'sample_row') { rows.runs++; rows.lanes += batch; } } },
      });
      sides.push({ quantum: q, rt, rates: [], lat: [], first: [], rows });
    }
    for (const clients of concurrency) {
      for (const think of thinks) {
        for (const s of sides) await block(s, model, clients, think, 1);   // warm-up, not counted
        for (const s of sides) {
          Object.assign(s, { rates: [], lat: [], first: [] });
          Object.assign(s.rows, { runs: 0, lanes: 0 });   // in place: the runtime's observer holds it
        }
        for (let b = 0; b < blocks; b++) {
          for (const s of b % 2 ? [...sides].reverse() : sides) await block(s, model, clients, think, seconds);
        }
        const [a, q] = sides;
        const med = (s: Side) => percentile(s.rates, 50);
        const line = `| ${model} | ${clients} | ${think ? `0–${think} ms` : 'none'} | ${med(a).toFixed(1)} | ${med(q).toFixed(1)} | **${(med(q) / med(a)).toFixed(2)}×** | `
          + `${percentile(a.lat, 50).toFixed(0)} / ${percentile(q.lat, 50).toFixed(0)} | ${percentile(a.lat, 95).toFixed(0)} / ${percentile(q.lat, 95).toFixed(0)} | `
          + `${percentile(a.first, 50).toFixed(0)} / ${percentile(q.first, 50).toFixed(0)} | ${(a.rows.lanes / a.rows.runs).toFixed(1)} / ${(q.rows.lanes / q.rows.runs).toFixed(1)} |`;
        rows.push(line);
        process.stderr.write(`${line}\n`);
      }
    }
    for (const s of sides) await s.rt.close();
  }
  const wall = (performance.now() - started) / 1000;
  const md = [
    baseline === 1 ? '# Benchmark: the scheduler, stages taking turns against every stage every step' : `# Benchmark: the scheduler, turns of ${quantum} steps against turns of ${baseline}`,
    '',
    `Generated by \`npm run bench:scheduler${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\` on ${generatedAt()} (${wall.toFixed(0)} s wall), ${workers} inference workers per runtime, one intra-op thread. Load average at start ${load.map((x) => x.toFixed(2)).join(', ')}.`,
    '',
    `Two runtimes in one process, the same models and workers, one with \`QUANTUM=${baseline}\` (${baseline === 1 ? 'every group of lanes runs every step: the previous scheduler' : `turns of at most ${baseline} steps`}) and one with \`QUANTUM=${quantum}\` (each stage's row graph keeps the turn for at most ${quantum} steps, round robin, and passes it on sooner when it empties, as at a slice's end; run-once graphs such as conditioning still run every step). They take turns in blocks of ${seconds} s, ${blocks} blocks each per setting; images/s is the median block, latencies are over every request of the blocks. Clients run closed loops of one-image requests; "think" is a random wait before each request, which puts requests out of step with each other, as independent users' are.`,
    '',
    `| model | clients | think | images/s, QUANTUM=${baseline} | images/s, QUANTUM=${quantum} | ${quantum} / ${baseline} | latency p50 ms (${baseline} / ${quantum}) | latency p95 ms | first slice p50 ms | mean sample_row batch |`,
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  process.stdout.write(md);
  if (values.out !== '-') {
    writeFileSync(values.out!, md);
    process.stderr.write(`-- wrote ${values.out}\n`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
