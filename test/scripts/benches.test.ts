// The benchmark scripts, run small on the tiny model, so that they keep working as the code under
// them changes: each must finish, and what it reports must hold together. No timing is asserted
// (the machines are shared); what is asserted is the shape of each report and, for `npm run
// bench`, that PyTorch (the checkpoints shipped in runs/) and the runtime (the graphs in models/)
// score the same images to within float32 rounding: both sides run the same weights.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchResult } from '../../scripts/bench-report.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const run = (script: string, args: string[]) =>
  execFileSync(process.execPath, [join(ROOT, 'dist', 'scripts', script), ...args], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
/** the rows of the first markdown table whose header starts with `first` */
const table = (md: string, first: string) => {
  const lines = md.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`| ${first} |`));
  const rows: string[][] = [];
  for (let i = at + 2; at >= 0 && i < lines.length && lines[i].startsWith('|'); i++) rows.push(lines[i].split('|').slice(1, -1).map((c) => c.trim()));
  return rows;
};

t.test('npm run bench (quick, tiny-c1, one core): both sides run the same weights, every point measured', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'spn-bench-test-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  run('bench.js', ['--quick', '--models', 'tiny-c1', '--setups', '1x1', '--decode', 'row', '--trials', '1', '--out', out, '--json', join(out, 'bench.json')]);
  const res = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as BenchResult;
  t.equal(res.runs.length, 1);
  const [m] = res.runs[0].models;
  t.equal(m.name, 'tiny-c1');
  t.ok(m.weightsCheck.images > 0, 'images scored on both sides');
  t.ok(m.weightsCheck.maxAbsDiff < 1e-4, `PyTorch and the runtime agree on bits/dim (${m.weightsCheck.maxAbsDiff})`);
  t.ok(res.settings.concurrency.length > 0 && res.settings.likelihoodBatches.length > 0, 'points to measure');
  t.equal(m.weightsCheck.images, Math.max(...res.settings.likelihoodImages), 'every scored image compared, each once');
  // each side scores exactly the first n test images at each batch size, so their means agree too
  // (the runtime's closed loop once ran past n, scoring some images twice and others not at all)
  m.runtime.likelihood.forEach((p, k) => {
    const tp = m.torch.likelihood[k];
    t.equal(p.images, tp.images, `batch ${p.batch}: the same number of images`);
    t.ok(Math.abs(p.meanBitsPerDim - tp.meanBitsPerDim) < 1e-4, `batch ${p.batch}: mean bits/dim ${p.meanBitsPerDim} (runtime) and ${tp.meanBitsPerDim} (PyTorch)`);
  });
  for (const side of [m.runtime, m.torch]) {
    t.same(side.sampling.map((p) => p.concurrency), res.settings.concurrency, 'a sampling point per concurrency');
    t.same(side.likelihood.map((p) => p.batch), res.settings.likelihoodBatches, 'a likelihood point per batch');
    for (const p of [...side.sampling, ...side.likelihood]) t.ok(p.imagesPerSec > 0 && p.images > 0);
  }
  const md = readFileSync(join(out, 'bench.md'), 'utf8');
  t.equal(table(md, 'target').length, 5, 'the five targets of issue 3 are reported');
  t.match(md, /## Largest remaining cost/);
});

t.test('npm run bench:cores (tiny-c1): a row per stage, graph and batch', async (t) => {
  const md = run('bench-cores.js', ['--models', 'tiny-c1', '--batches', '1,4', '--seconds', '0.05', '--trials', '1', '--out', '-']);
  const rows = table(md, 'model');
  t.equal(rows.length, 3 * 2 * 2, 'three stages x two graphs x two batch sizes');
  for (const r of rows) {
    t.ok(Number(r[4]) > 0 && Number(r[5]) > 0, 'ms per run alone and together');
    t.ok(Number(r[6].replace(/\*/g, '')) > 0, 'two workers / one');
  }
  for (const r of rows.filter((x) => x[3] === '4')) t.ok(parseFloat(r[7]) > 0, `${r[1]}/${r[2]}: lanes/s at batch 4 against batch 1 (${r[7]})`);
});

t.test('npm run bench:http (tiny-c1): every kind of request over HTTP and directly (batches too), and the server shuts down', async (t) => {
  const md = run('bench-http.js', ['--model', 'tiny-c1', '--concurrency', '1,2', '--sample-images', '2,4', '--likelihood-concurrency', '2',
    '--likelihood-images', '4', '--batch', '3', '--batch-concurrency', '2', '--batch-requests', '2', '--trials', '1', '--out', '-']);
  const rows = table(md, 'request');
  t.same(rows.map((r) => `${r[0]} ${r[1]} ${r[2]}`), ['sample (JSON) 1 2', 'sample (event stream) 1 2', 'sample (JSON) 2 4', 'sample (event stream) 2 4',
    'likelihood (PNG upload) 2 4', 'likelihood (batch of 3, JSON) 2 6']);
  for (const r of rows) t.ok(Number(r[3]) > 0 && Number(r[4]) > 0, `${r[0]}: images/s on both sides`);
  t.equal(table(md, 'work').length, 3, 'the PNG codec table');
  // the server's error log goes to the same output; the bench's fetch client sometimes leaves a
  // connection it never used, which held the server's shutdown before session 7
  t.notMatch(md, /shutdown did not finish in time/, 'the server shut down by itself');
});

t.test('npm run soak (two short rounds): every answer as expected, the same seeded sample, exit 0', async (t) => {
  // run() throws (fails the test) when the script exits non-zero: a 5xx, an unexpected status,
  // a changed sample or a failed shutdown
  const md = run('soak.js', ['--rounds', '2', '--seconds', '2', '--concurrency', '8', '--out', '-']);
  const rows = table(md, 'round');
  t.equal(rows.length, 2, 'a row per round');
  for (const r of rows) {
    t.ok(Number(r[1]) > 0, `round ${r[0]}: ${r[1]} requests`);
    t.equal(r[2], '0', 'no unexpected answer');
    t.ok(Number(r[3]) > 0, `resident memory ${r[3]} MB`);
    t.same(r.slice(5), ['0', '0'], 'nothing left running or queued');
  }
  t.match(md, /The seed-7 sample before and after: the same bytes/);
  t.match(md, /SIGTERM: exit 0/);
});

t.test('npm run bench:scheduler (tiny-c1): both quanta measured', async (t) => {
  const md = run('bench-scheduler.js', ['--models', 'tiny-c1', '--concurrency', '4', '--think', '0', '--seconds', '1', '--blocks', '1', '--out', '-']);
  const rows = table(md, 'model');
  t.same(rows.map((r) => r.slice(0, 3)), [['tiny-c1', '4', 'none']]);
  t.ok(Number(rows[0][3]) > 0 && Number(rows[0][4]) > 0, 'images/s with each scheduler');
  t.notMatch(md, /NaN|Infinity/, 'every figure is a number');
});

t.test('npm run bench:row-graph and bench:score-graph (tiny-c1): the variants exported fresh compute the same', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'spn-graph-bench-test-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  run('bench-row-graph.js', ['--models', 'tiny-c1', '--batches', '1,2', '--reps', '3', '--out', join(out, 'row.md')]);
  const rows = table(readFileSync(join(out, 'row.md'), 'utf8'), 'model');
  t.equal(rows.length, 3 * 2 * 4, 'three stages x two batch sizes x four variants');
  t.same([...new Set(rows.map((r) => r[3]))], ['loop', 'window', 'matmul-upper', 'cumsum-t']);
  t.same(rows.map((r) => r[7]), Array(24).fill('yes'), 'every variant samples the pixels the shipped graph samples');
  run('bench-score-graph.js', ['--models', 'tiny-c1', '--batches', '1,2', '--trials', '1', '--out', join(out, 'score.md')]);
  const score = table(readFileSync(join(out, 'score.md'), 'utf8'), 'model');
  t.ok(score.length >= 3 * 2, 'every stage\'s scoring graphs at both batch sizes');
  for (const r of score) t.ok(/^\d/.test(r[7]) && Number(r[7]) < 1e-4, `${r[1]}/${r[2]} batch ${r[3]}: plain and shipped score the same (${r[7]} nats)`);
});

t.test('npm run bench:exports (tiny-c1): every graph compared in both folders, and a graph that computes something else is caught', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'spn-exports-test-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const models = join(ROOT, 'models');
  run('bench-exports.js', ['--a', models, '--b', models, '--models', 'tiny-c1', '--batches', '1,2', '--reps', '2', '--trials', '1', '--out', join(out, 'same.md')]);
  const rows = table(readFileSync(join(out, 'same.md'), 'utf8'), 'model');
  t.equal(rows.length, 3 * 6 * 2, 'three stages x six graphs x two batch sizes');
  t.same(rows.map((r) => r[7]), Array(36).fill('yes'), 'the same folder computes the same');
  for (const r of rows) t.ok(Number(r[4]) > 0 && Number(r[5]) > 0, `${r[1]}/${r[2]} batch ${r[3]}: timed on both sides`);
  // B: tiny-c1 whose small stage points at the size stage's graphs (the same inputs, other weights)
  const other = join(out, 'other');
  mkdirSync(join(other, 'tiny-c1'), { recursive: true });
  for (const st of ['small', 'size', 'depth']) symlinkSync(join(models, 'tiny-c1', st), join(other, 'tiny-c1', st));
  const man = JSON.parse(readFileSync(join(models, 'tiny-c1', 'manifest.json'), 'utf8'));
  man.stages[0].graphs.sample_row = { ...man.stages[1].graphs.sample_row, file: 'size/sample_row.onnx' };
  writeFileSync(join(other, 'tiny-c1', 'manifest.json'), JSON.stringify(man));
  let status = 0;
  let md = '';
  try {
    run('bench-exports.js', ['--a', models, '--b', other, '--models', 'tiny-c1', '--graphs', 'sample_row', '--batches', '4', '--reps', '1', '--trials', '1', '--out', join(out, 'other.md')]);
  } catch (err) {
    status = (err as { status: number }).status;
  }
  md = readFileSync(join(out, 'other.md'), 'utf8');
  t.equal(status, 1, 'exits 1');
  t.match(table(md, 'model')[0][7], /^(row_values: other values|vcaches_out: differs by|nll: differs by)/, 'the small stage\'s row is not the same');
  t.match(md, /\*\*1 graph runs compute something else\*\*/);
});

t.test('scripts/experiment-width.sh (tiny-c1 at two widths): untrained variants with the scaled widths, measured on both sides with the same weights', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'spn-width-test-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const configs = readdirSync(join(ROOT, 'scripts', 'configs')).sort();
  execFileSync('sh', [join(ROOT, 'scripts', 'experiment-width.sh'), 'tiny-c1', '1,2', out, '--quick', '--trials', '1'],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
  const res = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as BenchResult;
  t.same(res.runs.map((r) => `${r.workers}x${r.threads}`), ['2x1'], 'the two-core setup only');
  const models = res.runs[0].models;
  t.same(models.map((m) => m.name), ['tiny-c1-x1', 'tiny-c1-x2']);
  t.same(models.map((m) => m.description.match(/\(([\d, ]+)\)/)?.[1]), ['8, 8, 8', '16, 16, 16'], 'every stage\'s width scaled');
  t.ok(models[1].parameters > 2 * models[0].parameters, `twice the width, over twice the parameters (${models[0].parameters}, ${models[1].parameters})`);
  for (const m of models) {
    t.ok(m.weightsCheck.images > 0 && m.weightsCheck.maxAbsDiff < 1e-4, `${m.name}: PyTorch and the runtime score alike (${m.weightsCheck.maxAbsDiff})`);
    t.ok(m.runtime.sampling.length > 0 && m.runtime.sampling.length === m.torch.sampling.length, `${m.name}: sampling points on both sides`);
    for (const p of [...m.runtime.sampling, ...m.torch.sampling]) t.ok(p.imagesPerSec > 0, `${m.name}: sampling measured`);
  }
  t.equal(table(readFileSync(join(out, 'bench.md'), 'utf8'), 'target').length, 10, 'five targets per variant');
  t.same(readdirSync(join(ROOT, 'scripts', 'configs')).sort(), configs, 'the variants\' configs stay out of scripts/configs');
  // --configs: only the configs, for training the variants
  execFileSync('sh', [join(ROOT, 'scripts', 'experiment-width.sh'), '--configs', 'tiny-c1', '2', out], { cwd: ROOT, stdio: 'ignore' });
  const cfg = JSON.parse(readFileSync(join(out, 'configs', 'tiny-c1-x2.json'), 'utf8')) as { name: string; stages: { net: { width: number } }[] };
  t.same([cfg.name, ...cfg.stages.map((s) => s.net.width)], ['tiny-c1-x2', 16, 16, 16], '--configs writes the scaled config');
});
