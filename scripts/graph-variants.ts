// What the benchmark scripts share. `npm run bench:row-graph` and `npm run bench:score-graph` both
// export two variants of some graphs fresh from the checkpoints (a Python script that prints the
// stages as JSON), feed them the same seeded inputs, and time them on one intra-op thread; the
// runtime benchmarks load only the models they measure.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';

export const ROOT = resolve(new URL('../..', import.meta.url).pathname);

export const ONE_THREAD: ort.InferenceSession.SessionOptions = {
  executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all',
};

/** A small seeded generator for the inputs, so both variants get the same numbers. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

/** Runs scripts/<script> --config <model> --runs <runs> --out <out> and parses what it prints. */
export function exportVariants<T>(python: string, script: string, model: string, runs: string, out: string): T {
  const p = spawnSync(python, [join(ROOT, 'scripts', script), '--config', model, '--runs', runs, '--out', out],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (p.status !== 0) throw new Error(`${script} --config ${model} exited with ${p.status}`);
  return JSON.parse(p.stdout) as T;
}

/** ms per run of each session: `warm` runs each first, then the best of `trials` trials of `reps`
 * runs (other work only ever slows a trial), the sessions taking turns trial by trial. */
export async function bestMs(sessions: ort.InferenceSession[], f: Record<string, ort.Tensor>, reps: number, trials: number,
  warm: number): Promise<number[]> {
  for (const s of sessions) for (let i = 0; i < warm; i++) await s.run(f);
  const best = sessions.map(() => Infinity);
  for (let t = 0; t < trials; t++) {
    for (const [k, s] of sessions.entries()) {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) await s.run(f);
      best[k] = Math.min(best[k], (performance.now() - t0) / reps);
    }
  }
  return best;
}

export const generatedAt = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

/** A folder holding only `models` (links into `modelsDir`): the runtime loads every model folder
 * under its modelsDir. */
export function modelsSubset(modelsDir: string, models: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'spn-bench-models-'));
  for (const m of models) {
    mkdirSync(join(dir, m));
    for (const e of readdirSync(join(modelsDir, m))) symlinkSync(join(modelsDir, m, e), join(dir, m, e));
  }
  return dir;
}
