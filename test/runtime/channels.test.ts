// Channel order: a manifest's channelOrder names each of the image's channels once; the runtime
// permutes between the image's order (gray; R, G, B; with A) and the model's.
import fc from 'fast-check';
import t from 'tap';
import { channelPerm, toImageChannels, toModelChannels } from '../../src/runtime/channels.js';

t.test('channelPerm: the image channel of each model channel, null for the image\'s own order', async (t) => {
  t.equal(channelPerm(['gray'], 1), null);
  t.equal(channelPerm(['R', 'G', 'B'], 3), null);
  t.equal(channelPerm(['r', 'g', 'b'], 3), null, 'names in any case');
  t.equal(channelPerm(['grey'], 1), null, 'one channel: any name, nothing to permute');
  t.same(channelPerm(['B', 'R', 'G'], 3), [2, 0, 1]);
  t.same(channelPerm(['A', 'R', 'G', 'B'], 4), [3, 0, 1, 2]);
  for (const [order, C] of [[['R', 'R', 'B'], 3], [['R', 'G'], 3], [['R', 'G', 'B', 'A'], 3], [['X', 'G', 'B'], 3], [['gray', 'A'], 1]] as const) {
    t.throws(() => channelPerm(order, C), { message: /channelOrder .* must name each of the image's channels \(.*\) once/ }, JSON.stringify(order));
  }
  t.throws(() => channelPerm(['x'], 5), { message: /images have 1 to 4/ });
});

t.test('to the model\'s order and back is the identity; the model\'s channel k is the image\'s perm[k]', async (t) => {
  fc.assert(fc.property(fc.constantFrom<[string[], number]>([['B', 'R', 'G'], 3], [['G', 'B', 'R'], 3], [['B', 'G', 'R'], 3], [['A', 'B', 'G', 'R'], 4]),
    fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 2 ** 31 }), ([order, C], pixels, seed) => {
      const perm = channelPerm(order, C)!;
      const data = Uint8Array.from({ length: pixels * C }, (_, i) => (seed + i * 7919) & 255);
      const model = toModelChannels(data, perm);
      const ok = Array.from({ length: pixels * C }, (_, i) => model[i] === data[Math.floor(i / C) * C + perm[i % C]]).every(Boolean);
      return ok && Buffer.compare(Buffer.from(toImageChannels(model, perm)), Buffer.from(data)) === 0;
    }));
  const rgb = Uint8Array.of(10, 20, 30, 11, 21, 31);
  t.same([...toModelChannels(rgb, channelPerm(['B', 'R', 'G'], 3))], [30, 10, 20, 31, 11, 21], 'B, R, G');
  t.equal(toModelChannels(rgb, null), rgb, 'the same order: no copy');
  t.not(toModelChannels(rgb, null, true), rgb, 'unless asked');
});
