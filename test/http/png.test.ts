// The plain PNG decoder against sharp (libpng): the same samples for every colour type and filter
// it takes, and no answer (so that sharp decodes, and reports) for anything else.
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import t from 'tap';
import { decodeImage } from '../../src/http/decode-image.js';
import { decodePlainPng, encodePng, PLAIN_PNG_MAX_PIXELS, pngChunk as chunk, readPng } from '../../src/http/png.js';

const COLOUR: Record<number, number> = { 1: 0, 2: 4, 3: 2, 4: 6 };

/** A PNG whose rows all use filter type `filter` (0-4), as the PNG specification defines them. */
function pngWithFilter(data: Uint8Array, width: number, height: number, channels: number, filter: number, extra: Buffer[] = []): Buffer {
  const stride = width * channels;
  const rows = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    rows[y * (stride + 1)] = filter;
    for (let x = 0; x < stride; x++) {
      const v = data[y * stride + x];
      const a = x >= channels ? data[y * stride + x - channels] : 0;
      const u = y > 0 ? data[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? data[(y - 1) * stride + x - channels] : 0;
      const pa = Math.abs(u - c);
      const pb = Math.abs(a - c);
      const pc = Math.abs(a + u - 2 * c);
      const paeth = pa <= pb && pa <= pc ? a : pb <= pc ? u : c;
      const p = [0, a, u, (a + u) >> 1, paeth][filter];
      rows[y * (stride + 1) + 1 + x] = (v - p) & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = COLOUR[channels];
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), ...extra,
    chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

/** What sharp decodes (grey + alpha comes out as RGBA: its grey and alpha, interleaved). */
async function sharpRaw(png: Buffer): Promise<{ channels: number; data: Buffer }> {
  const meta = await sharp(png).metadata();
  const s = sharp(png);
  const { data, info } = await (meta.channels === 1 ? s.toColourspace('b-w') : s).raw().toBuffer({ resolveWithObject: true });
  if (meta.channels !== 2) return { channels: info.channels, data };
  t.equal(info.channels, 4);
  return { channels: 2, data: Buffer.from(Array.from({ length: data.length / 4 }, (_, p) => [data[4 * p], data[4 * p + 3]]).flat()) };
}

const pixels = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => ((i + seed) * 2654435761) >>> 24);

t.test('the same samples as sharp for every colour type and filter type', async (t) => {
  const [w, h] = [13, 9];
  for (const channels of [1, 2, 3, 4]) {
    const data = pixels(w * h * channels, channels);
    for (const filter of [0, 1, 2, 3, 4]) {
      const png = pngWithFilter(data, w, h, channels, filter);
      const plain = decodePlainPng(png, 1e6);
      const ref = await sharpRaw(png);
      t.ok(plain, `${channels} channels, filter ${filter}: decoded`);
      t.same([plain!.width, plain!.height, plain!.channels], [w, h, ref.channels]);
      t.ok(Buffer.from(plain!.data).equals(ref.data), `${channels} channels, filter ${filter}: samples equal sharp's`);
      t.ok(Buffer.from(plain!.data).equals(Buffer.from(data)), `${channels} channels, filter ${filter}: samples as written`);
    }
  }
  // sharp's own encoder with adaptive filtering (a filter chosen per row), and this project's
  const data = pixels(28 * 28 * 3, 5);
  const adaptive = await sharp(Buffer.from(data), { raw: { width: 28, height: 28, channels: 3 } }).png({ adaptiveFiltering: true, compressionLevel: 9 }).toBuffer();
  t.ok(Buffer.from(decodePlainPng(adaptive, 1e6)!.data).equals((await sharpRaw(adaptive)).data), 'sharp-encoded, adaptive filters');
  const grey = { width: 28, height: 28, channels: 1, data: pixels(784, 9) };
  t.same([...decodePlainPng(encodePng(grey), 1e6)!.data], [...grey.data], 'encodePng round trip');
  // text chunks are skipped
  const withText = pngWithFilter(grey.data, 28, 28, 1, 1, [chunk('tEXt', Buffer.from('Comment\0hello', 'latin1'))]);
  t.same([...decodePlainPng(withText, 1e6)!.data], [...grey.data], 'a tEXt chunk does not matter');
});

t.test('grey + alpha: transparency is refused and an opaque alpha dropped, by either decoder', async (t) => {
  const model = { name: 'm', height: 16, width: 16, channels: 1 };
  const ga = new Uint8Array(16 * 16 * 2).fill(255);
  for (let p = 0; p < 256; p++) ga[2 * p] = p;
  const small = pngWithFilter(ga, 16, 16, 2, 1);
  t.ok(decodePlainPng(small, 1e6));
  // past the plain decoder's size, the same picture goes to sharp (tiled 17 x 17 times)
  const side = 16 * 17;
  const bigData = new Uint8Array(side * side * 2);
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) bigData.set(ga.subarray(((y % 16) * 16 + (x % 16)) * 2, ((y % 16) * 16 + (x % 16)) * 2 + 2), (y * side + x) * 2);
  const big = pngWithFilter(bigData, side, side, 2, 1);
  t.equal(decodePlainPng(big, 1e6), undefined);
  for (const [what, png, m] of [['plain', small, model], ['sharp', big, { ...model, width: side, height: side }]] as const) {
    const d = await decodeImage(png, m, {}, 1e6);
    t.same([...d.image.data.subarray(0, 16)], Array.from({ length: 16 }, (_, p) => p), `${what}: the grey samples`);
    t.equal(d.image.channels, 1);
    t.same(d.conversions, ['dropped an alpha channel that was fully opaque'], `${what}: says so`);
  }
  for (const p of [17, 16 * 17 * 16 + 1]) bigData[2 * p + 1] = 0;
  ga[2 * 17 + 1] = 0;
  for (const [png, m] of [[pngWithFilter(ga, 16, 16, 2, 1), model], [pngWithFilter(bigData, side, side, 2, 1), { ...model, width: side, height: side }]] as const) {
    await t.rejects(decodeImage(png, m, {}, 1e6), { statusCode: 422, message: /transparent/ });
  }
});

t.test('anything else is left to sharp', async (t) => {
  const grey = pixels(16 * 16, 3);
  const png = pngWithFilter(grey, 16, 16, 1, 0);
  const raw = (c: 1 | 3) => sharp(Buffer.from(pixels(16 * 16 * c, 1)), { raw: { width: 16, height: 16, channels: c } });
  const cases: [string, Buffer][] = [
    ['interlaced', await raw(3).png({ progressive: true }).toBuffer()],
    ['palette', await raw(3).png({ palette: true }).toBuffer()],
    ['16-bit', await raw(3).toColourspace('rgb16').png().toBuffer()],
    ['a colour profile', await raw(3).withMetadata({ icc: 'p3' }).png().toBuffer()],
    ['transparency chunk', pngWithFilter(grey, 16, 16, 1, 0, [chunk('tRNS', Buffer.from([0, 0]))])],
    ['a bad CRC', Buffer.concat([png.subarray(0, 30), Buffer.from([png[30] ^ 1]), png.subarray(31)])],
    ['truncated', png.subarray(0, png.length - 20)],
    ['bytes after IEND', Buffer.concat([png, Buffer.from([0])])],
    ['not a PNG', Buffer.from('GIF89a')],
  ];
  for (const [what, bytes] of cases) t.equal(decodePlainPng(bytes, 1e6), undefined, what);
  t.equal(decodePlainPng(png, 255), undefined, 'more pixels than the caller allows');
  const side = Math.sqrt(PLAIN_PNG_MAX_PIXELS) + 1;
  t.equal(decodePlainPng(pngWithFilter(new Uint8Array(side * side), side, side, 1, 0), 1e9), undefined, 'larger than decoded on the calling thread');
  // and decodeImage still answers those: the interlaced and palette files through sharp
  const model = { name: 'm', height: 16, width: 16, channels: 3 };
  for (const [what, bytes] of cases.slice(0, 2)) {
    const d = await decodeImage(bytes, model, {}, 1e6);
    t.same([d.image.width, d.image.height, d.image.channels], [16, 16, 3], `${what}: decoded by sharp`);
  }
  await t.rejects(decodeImage(cases[6][1], { ...model, channels: 1 }, {}, 1e6), { statusCode: 400, message: /corrupt or truncated/ });
});

t.test('a damaged PNG is refused, naming the damage, where sharp (libpng) would decode it', async (t) => {
  const png = pngWithFilter(pixels(16 * 16, 3), 16, 16, 1, 0);
  const model = { name: 'm', height: 16, width: 16, channels: 1 };
  const ihdrCrc = Buffer.from(png);
  ihdrCrc[29] ^= 0xff;   // IHDR: length 8-11, type 12-15, data 16-28, CRC 29-32
  const cases: [string, Buffer, string][] = [
    ['IHDR\'s CRC wrong', ihdrCrc, 'its "IHDR" chunk\'s CRC does not match its bytes'],
    ['cut after the last IDAT', png.subarray(0, png.length - 12), 'it ends before its IEND chunk'],
  ];
  for (const [what, bytes, damage] of cases) {
    t.equal(readPng(bytes, 1e6), damage, what);
    await t.resolves(sharp(bytes, { failOn: 'truncated' }).raw().toBuffer(), `${what}: libpng decodes it as it is`);
    await t.rejects(decodeImage(bytes, model, {}, 1e6), { statusCode: 400, message: `the PNG image is corrupt or truncated: ${damage}` }, what);
  }
  t.equal(readPng(png.subarray(0, png.length - 20), 1e6), 'its "IDAT" chunk runs past the end of the file');
  t.notOk(typeof readPng(png, 1e6) === 'string', 'a whole file');
  t.equal(readPng(Buffer.concat([png, Buffer.from([0])]), 1e6), undefined, 'bytes after IEND are ignored, as decoders do (and send the file to sharp)');
  const d = await decodeImage(Buffer.concat([png, Buffer.from([0])]), model, {}, 1e6);
  t.same([d.image.width, d.image.height], [16, 16], 'and such a file still decodes (by sharp)');
});
