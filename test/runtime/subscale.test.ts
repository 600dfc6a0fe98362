// Subscale slicing and bit-depth planes, property-based over every S dividing the size and C in {1, 3}.
import fc from 'fast-check';
import t from 'tap';
import { bitPlane, fromSlices, mergeBitPlane, sliceIndexByOffset, sliceOffset, sliceOrderProblem, toSlices } from '../../src/runtime/subscale.js';

const divisorsOf = (n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);

t.test('toSlices / fromSlices round-trip for every S dividing the size, C in {1, 3}, in raster order or any other', async (t) => {
  for (const size of [28, 12]) {
    for (const S of divisorsOf(size)) {
      const raster = Array.from({ length: S * S }, (_, k) => [Math.floor(k / S), k % S]);
      for (const C of [1, 3]) {
        const anyOrder = fc.option(fc.shuffledSubarray(raster, { minLength: S * S, maxLength: S * S }), { nil: undefined, freq: 2 });
        fc.assert(fc.property(anyOrder, fc.uint8Array({ minLength: size * size * C, maxLength: size * size * C }), (order, img) => {
          const g = { height: size, width: size, channels: C, subscale: S, order };
          const sl = toSlices(img, g);
          const h = size / S;
          // the last slice, channel 0, at (h - 1, 0) is the image's pixel (r*S + i, q*S + j) for its offset [i, j]
          const [k, r, q] = [S * S - 1, h - 1, 0];
          const [i, j] = (order ?? raster)[k];
          return sl[k * C * h * h + r * h + q] === img[((r * S + i) * size + (q * S + j)) * C]
            && Buffer.compare(Buffer.from(fromSlices(sl, g)), Buffer.from(img)) === 0;
        }), { numRuns: 20 });
      }
    }
  }
  t.pass('round-trips hold');
});

t.test('slice k holds x[i::S, j::S] with (i, j) the raster offset', async (t) => {
  const g = { height: 4, width: 4, channels: 1, subscale: 2 };
  const img = Uint8Array.from({ length: 16 }, (_, i) => i);   // value = y*4 + x
  const s = toSlices(img, g);
  t.same([...s.subarray(0, 4)], [0, 2, 8, 10], 'slice 0 = offset (0,0)');
  t.same([...s.subarray(4, 8)], [1, 3, 9, 11], 'slice 1 = offset (0,1)');
  t.same([...s.subarray(8, 12)], [4, 6, 12, 14], 'slice 2 = offset (1,0)');
  t.same(sliceOffset(3, g), [1, 1]);
  // channels are planar inside a slice
  const rgb = Uint8Array.from({ length: 4 * 4 * 3 }, (_, i) => i);
  const sc = toSlices(rgb, { ...g, channels: 3 });
  t.same([...sc.subarray(0, 4)], [0, 6, 24, 30], 'slice 0, channel R');
  t.same([...sc.subarray(4, 8)], [1, 7, 25, 31], 'slice 0, channel G');
  t.throws(() => toSlices(img, { ...g, subscale: 3 }), /does not divide/);
});

t.test('any slice order: slice k holds x[i::S, j::S] for [i, j] = order[k]', async (t) => {
  const g = { height: 4, width: 4, channels: 1, subscale: 2, order: [[1, 1], [0, 0], [1, 0], [0, 1]] };
  const img = Uint8Array.from({ length: 16 }, (_, i) => i);   // value = y*4 + x
  const s = toSlices(img, g);
  t.same([...s.subarray(0, 4)], [5, 7, 13, 15], 'slice 0 = offset (1,1)');
  t.same([...s.subarray(4, 8)], [0, 2, 8, 10], 'slice 1 = offset (0,0)');
  t.same([...s.subarray(12, 16)], [1, 3, 9, 11], 'slice 3 = offset (0,1)');
  t.same(sliceOffset(0, g), [1, 1]);
  t.same(sliceOffset(2, g), [1, 0]);
  // the slice holding each offset: [0,0] is slice 1, [0,1] slice 3, [1,0] slice 2, [1,1] slice 0
  t.same([...sliceIndexByOffset(g)], [1, 3, 2, 0]);
  t.same([...sliceIndexByOffset({ subscale: 2 })], [0, 1, 2, 3], 'raster');
});

t.test('a slice order lists every offset once', async (t) => {
  t.equal(sliceOrderProblem([[0, 0], [0, 1], [1, 0], [1, 1]], 2), null);
  t.equal(sliceOrderProblem([[1, 1], [0, 1], [1, 0], [0, 0]], 2), null);
  t.equal(sliceOrderProblem([[0, 0], [0, 1], [1, 0]], 2), 'it has 3 offsets; subscale factor 2 makes 4 slices');
  t.equal(sliceOrderProblem([[0, 0], [0, 1], [1, 0], [0, 1]], 2), 'offset [0,1] comes twice');
  t.equal(sliceOrderProblem([[0, 0], [0, 1], [1, 0], [1, 2]], 2), 'offset 3 is [1,2]: an offset is [i, j] with 0 <= i, j < 2');
  t.equal(sliceOrderProblem([[0, 0], [0, 1], [1, 0], [1]], 2), 'offset 3 is [1]: an offset is [i, j] with 0 <= i, j < 2');
  t.equal(sliceOrderProblem([[0, 0], [0, 1], [1, 0], [1, 0.5]], 2), 'offset 3 is [1,0.5]: an offset is [i, j] with 0 <= i, j < 2');
});

t.test('bit-depth split and merge: 8 bits = 3 high + 5 low', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (x) => {
    const hi = bitPlane(x, 5, 3);
    const lo = bitPlane(x, 0, 5);
    const back = mergeBitPlane(mergeBitPlane(new Uint8Array(x.length), hi, 5, 3), lo, 0, 5);
    return hi.every((v, i) => v === x[i] >> 5) && lo.every((v, i) => v === (x[i] & 31)) && Buffer.compare(Buffer.from(back), Buffer.from(x)) === 0;
  }));
  t.same([...bitPlane(Uint8Array.of(255, 160, 31), 5, 3)], [7, 5, 0]);
  t.same([...bitPlane(Uint8Array.of(255, 160, 31), 0, 5)], [31, 0, 31]);
});
