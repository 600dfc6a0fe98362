// Reads the parity fixtures that scripts/export.py writes next to each manifest.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Fixtures {
  nll: { image: number[]; nats: number; bits_per_dim: number; stages: { stage: string; nats: number; slices: { slice: number; nats: number }[] }[] }[];
  sampling: {
    uniforms: Record<string, number[]>;
    temperatures: {
      temperature: number;
      stages: Record<string, { plane: number[][]; nats: number[] }>;
      pipeline: { images: number[][]; nats: number[] };
    }[];
  };
}

export const MODELS_DIR = new URL('../../../models', import.meta.url).pathname;

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
