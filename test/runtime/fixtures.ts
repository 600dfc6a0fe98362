// Reads the parity fixtures that scripts/export.py writes next to each manifest.
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Fixtures {
  nll: { image: number[]; nats: number; bits_per_dim: number; stages: { stage: string; nats: number; slices: { slice: number; nats: number }[] }[] }[];
  sampling: {
    uniforms: Record<string, number[]>;
    /** scripts/export.py's sampling_fixtures: how far (in probability) the uniforms keep from the
     * edges of the bins they pick; least is the smallest distance over every draw */
    uniform_margin: { target: number; least: number; moved: number; rounds: number; draws: number };
    temperatures: {
      temperature: number;
      stages: Record<string, { plane: number[][]; nats: number[] }>;
      pipeline: { images: number[][]; nats: number[] };
    }[];
  };
}

/** models/, or SPN_MODELS_DIR: the parity tests then check another export (e.g. one made under
 * PyTorch 2.x, see the README) against its own fixtures */
export const MODELS_DIR = process.env.SPN_MODELS_DIR ?? new URL('../../../models', import.meta.url).pathname;

/** A models folder with only the tiny test models (links), so that tests start fast and list
 * exactly these, whatever else models/ ships. */
export const TINY_MODELS_DIR = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'spn-tiny-models-'));
  for (const m of ['tiny-c1', 'tiny-c3']) symlinkSync(join(MODELS_DIR, m), join(dir, m));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
})();

export function readFixtures(model: string, dir = MODELS_DIR): Fixtures {
  return JSON.parse(readFileSync(join(dir, model, 'fixtures.json'), 'utf8'));
}

/** Uniforms of fixture sample b for every stage, [slice][row][col][channel] each. */
export function fixtureUniforms(f: Fixtures, stages: string[], b: number): Float32Array[] {
  return stages.map((s) => {
    const all = f.sampling.uniforms[s];
    const n = all.length / f.nll.length;
    return Float32Array.from(all.slice(b * n, (b + 1) * n));
  });
}
