// Conditional sampling plans: which slices each stage generates and which given bits are kept.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { InvalidInputError } from '../../src/runtime/errors.js';
import type { Manifest } from '../../src/runtime/manifest.js';
import { planSample } from '../../src/runtime/plan.js';
import { MODELS_DIR } from './fixtures.js';

const m: Manifest = JSON.parse(readFileSync(join(MODELS_DIR, 'tiny-c1', 'manifest.json'), 'utf8'));
const S = m.subscaleFactor;
const image = { height: 28, width: 28, channels: 1, data: new Uint8Array(784).fill(0b10110110) };
const sliceOf = (p: number) => (Math.floor(p / 28) % S) * S + (p % 28) % S;

t.test('unconditional: every stage from its first slice', async (t) => {
  const p = planSample(m, undefined);
  t.equal(p.image.length, 784, 'the whole image');
  t.same(p.starts, m.stages.map((s) => s.firstSlice));
  t.equal(p.stopAfter, m.stages.length - 1);
  t.ok(p.image.every((v) => v === 0));
});

t.test('upscale keeps the small image (high bits of slice 0) and nothing else', async (t) => {
  const p = planSample(m, undefined, { mode: 'upscale', image });
  t.equal(p.image.length, 784, 'the whole image');
  t.same(p.starts, [m.stages[0].lastSlice, m.stages[1].firstSlice, m.stages[2].firstSlice]);
  p.image.forEach((v, i) => { if (v !== (sliceOf(i) === 0 ? 0b10100000 : 0)) t.fail(`pixel ${i}: ${v}`); });
  t.pass('kept bits are right');
});

t.test('add-depth keeps all high bits and generates the low bits', async (t) => {
  const p = planSample(m, undefined, { mode: 'add-depth', image });
  t.equal(p.image.length, 784, 'the whole image');
  t.same(p.starts, [m.stages[0].lastSlice, m.stages[1].lastSlice, 0]);
  t.ok(p.image.every((v) => v === 0b10100000));
});

t.test('complete from the first k slices keeps every bit of those slices', async (t) => {
  const p = planSample(m, undefined, { mode: 'complete', image, slices: 3 });
  t.equal(p.image.length, 784, 'the whole image');
  t.same(p.starts, [3, 3, 3]);
  p.image.forEach((v, i) => { if (v !== (sliceOf(i) < 3 ? 0b10110110 : 0)) t.fail(`pixel ${i}`); });
  t.pass('kept bits are right');
});

t.test('bad plans are refused with a clear error', async (t) => {
  t.throws(() => planSample(m, 'nope'), InvalidInputError);
  t.throws(() => planSample(m, 'small', { mode: 'upscale', image }), /nothing to generate/);
  t.throws(() => planSample(m, undefined, { mode: 'complete', image, slices: S * S }), /slices must be between/);
  t.throws(() => planSample(m, undefined, { mode: 'upscale', image: { ...image, width: 14, data: new Uint8Array(392) } }), /takes 28x28/);
});

t.test('the kept slices are those first in the manifest\'s order (it used raster offsets whatever the order)', async (t) => {
  // tiny-c1's 16 slices in a shuffle that is not its own inverse (a reversal is)
  const order = [[3, 3], [0, 0], [2, 1], [1, 3], [0, 2], [3, 0], [1, 1], [2, 3], [0, 1], [3, 2], [1, 0], [2, 2], [0, 3], [3, 1], [1, 2], [2, 0]];
  const mo: Manifest = { ...m, sliceOrder: order };
  const at = (p: number) => [Math.floor(p / 28) % S, (p % 28) % S];
  const rank = (p: number) => order.findIndex(([i, j]) => i === at(p)[0] && j === at(p)[1]);
  const up = planSample(mo, undefined, { mode: 'upscale', image });
  t.equal(up.image.length, 784);
  up.image.forEach((v, i) => { if (v !== (rank(i) === 0 ? 0b10100000 : 0)) t.fail(`upscale, pixel ${i}: ${v}`); });
  t.equal(up.image[3 * 28 + 3], 0b10100000, 'upscale keeps the small image: the slice at [3, 3]');
  t.equal(up.image[0], 0, 'not the one at [0, 0]');
  const done = planSample(mo, undefined, { mode: 'complete', image, slices: 3 });
  t.equal(done.image.length, 784);
  done.image.forEach((v, i) => { if (v !== (rank(i) < 3 ? 0b10110110 : 0)) t.fail(`complete, pixel ${i}: ${v}`); });
  t.same([done.image[3 * 28 + 3], done.image[0], done.image[2 * 28 + 1], done.image[1 * 28 + 3]], [0b10110110, 0b10110110, 0b10110110, 0], 'complete keeps [3, 3], [0, 0], [2, 1], not [1, 3]');
});
