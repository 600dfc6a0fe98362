// Per-pixel bits as a colour heat map: dark = cheap (predictable) pixels, bright = costly ones.
import type { RawImage } from '../runtime/types.js';

// A short perceptual ramp (black, purple, red, orange, pale yellow), linearly interpolated.
const RAMP: Array<[number, number, number]> = [
  [0, 0, 4],
  [87, 16, 110],
  [188, 55, 84],
  [249, 142, 9],
  [252, 255, 164],
];

export interface HeatMap {
  image: RawImage;
  /** the values mapped to the ends of the ramp */
  minBits: number;
  maxBits: number;
}

export function heatMap(bits: Float32Array, height: number, width: number): HeatMap {
  if (bits.length !== height * width) throw new Error(`per-pixel bits hold ${bits.length} values, expected ${height}x${width}`);
  let minBits = Infinity;
  let maxBits = -Infinity;
  for (const b of bits) {
    if (b < minBits) minBits = b;
    if (b > maxBits) maxBits = b;
  }
  const span = maxBits - minBits || 1;
  const data = new Uint8Array(height * width * 3);
  for (let i = 0; i < bits.length; i++) {
    const t = ((bits[i] - minBits) / span) * (RAMP.length - 1);
    const k = Math.min(Math.floor(t), RAMP.length - 2);
    const f = t - k;
    for (let ch = 0; ch < 3; ch++) data[i * 3 + ch] = Math.round(RAMP[k][ch] + f * (RAMP[k + 1][ch] - RAMP[k][ch]));
  }
  return { image: { height, width, channels: 3, data }, minBits, maxBits };
}
