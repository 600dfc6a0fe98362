// Counter-based uniform random numbers: the number for one sub-pixel depends only on the seed,
// the sample's index in its request and the sub-pixel's place in the generation order, so a
// seeded result is the same whether the request runs alone or batched with others.

function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** A key for one sample of a request. seed: integer in [0, 2^32). */
export function sampleKey(seed: number, sample: number): number {
  return mix32(mix32(seed >>> 0) ^ mix32((sample + 0x9e3779b9) >>> 0));
}

/** Uniform in [0, 1), exactly representable in float32 (24 bits). */
export function uniformAt(key: number, stage: number, counter: number): number {
  const x = mix32(key ^ mix32(Math.imul(stage + 1, 0x85ebca6b) ^ mix32(counter + 0x632be5ab)));
  return (x >>> 8) / 16777216;
}
