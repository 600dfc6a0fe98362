// Encoding the runtime's 8-bit HWC images as PNG for answers and stream events.
//
// Written here rather than with sharp: the images are tiny (28x28 grey, a 14x14 slice) and a
// stream sends two per slice, 17 per MU image. sharp spends about 0.7 ms of CPU on each, whatever
// the size (a libvips pipeline and a trip through libuv's thread pool); this encoder about 0.03 ms
// (zlib on the filtered rows), which is what lets event streams keep up at 32 concurrent requests
// (npm run bench:http, its PNG table). Uploads other than plain PNGs are still decoded with sharp.
import * as zlib from 'node:zlib';
import { deflateSync, inflateSync } from 'node:zlib';
import type { RawImage } from '../runtime/types.js';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** CRC-32 (ISO 3309, as PNG chunks use it), table-driven. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** zlib's own CRC-32 (Node 20.15 and later), for whole uploads; the table otherwise. */
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

export function crc32(bytes: Uint8Array): number {
  if (nativeCrc32 && bytes.length > 256) return nativeCrc32(bytes);
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A PNG chunk: length, type, data, CRC of type + data. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** An 8-bit grey (1 channel) or RGB (3) image as PNG: no interlace, filter type 0 (none) on every
 * row, deflated at level 3 (small images: speed over a few bytes). */
export function encodePng(img: RawImage): Buffer {
  const { width, height, channels, data } = img;
  if (data.length !== width * height * channels) {
    throw new Error(`image buffer holds ${data.length} bytes, expected ${width}x${height}x${channels}`);
  }
  if (channels !== 1 && channels !== 3) throw new Error(`cannot encode ${channels}-channel image as PNG`);
  if (width < 1 || height < 1) throw new Error(`cannot encode a ${width}x${height} image as PNG`);
  const stride = width * channels;
  const rows = Buffer.alloc(height * (stride + 1));   // each row: filter byte 0, then its bytes
  for (let y = 0; y < height; y++) rows.set(data.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;                          // bit depth
  ihdr[9] = channels === 1 ? 0 : 2;     // colour type: grey, truecolour
  // compression, filter method, interlace: 0
  return Buffer.concat([SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(rows, { level: 3 })), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A slice's values at its stage's depth (0 .. 2^bits-1), stretched to 0..255 so it can be looked at. */
export function sliceForDisplay(values: Uint8Array, height: number, width: number, channels: number, bits: number): RawImage {
  const max = (1 << bits) - 1;
  const data = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = Math.round((Math.min(values[i], max) * 255) / max);
  return { height, width, channels, data };
}

export const GRID_GAP = 2;

/** Tiles same-sized images in a near-square grid, row-major, separated by GRID_GAP black pixels. */
export function grid(images: RawImage[]): RawImage {
  if (images.length === 0) throw new Error('grid of no images');
  const { height: h, width: w, channels: c } = images[0];
  const cols = Math.ceil(Math.sqrt(images.length));
  const rows = Math.ceil(images.length / cols);
  const width = cols * w + (cols - 1) * GRID_GAP;
  const height = rows * h + (rows - 1) * GRID_GAP;
  const data = new Uint8Array(width * height * c);
  images.forEach((img, k) => {
    const top = Math.floor(k / cols) * (h + GRID_GAP);
    const left = (k % cols) * (w + GRID_GAP);
    for (let y = 0; y < h; y++) {
      data.set(img.data.subarray(y * w * c, (y + 1) * w * c), ((top + y) * width + left) * c);
    }
  });
  return { height, width, channels: c, data };
}

/** The largest PNG (width x height) decodePlainPng takes: it decodes on the calling thread, so a big
 * upload goes to sharp (its own threads) instead. */
export const PLAIN_PNG_MAX_PIXELS = 256 * 256;

// chunks that do not change the pixels as sharp decodes them; any other ancillary chunk (a colour
// profile, gamma, transparency, significant bits...) sends the file to sharp
const HARMLESS = new Set(['tEXt', 'zTXt', 'iTXt', 'pHYs', 'tIME', 'sRGB']);

/** A PNG's chunks after the signature, up to and with IEND, and where IEND ends; or what is wrong
 * with its chunk structure: a chunk running past the end, a chunk whose CRC does not match its
 * bytes, or no IEND. */
function pngChunks(b: Buffer): { chunks: { type: string; data: Buffer }[]; end: number } | string {
  const chunks: { type: string; data: Buffer }[] = [];
  let pos = 8;
  while (pos + 12 <= b.length) {
    const len = b.readUInt32BE(pos);
    const type = b.toString('latin1', pos + 4, pos + 8);
    if (len > b.length - pos - 12) return `its ${JSON.stringify(type)} chunk runs past the end of the file`;
    if (crc32(b.subarray(pos + 4, pos + 8 + len)) !== b.readUInt32BE(pos + 8 + len)) return `its ${JSON.stringify(type)} chunk's CRC does not match its bytes`;
    chunks.push({ type, data: b.subarray(pos + 8, pos + 8 + len) });
    pos += 12 + len;
    if (type === 'IEND') return { chunks, end: pos };
  }
  return 'it ends before its IEND chunk';
}

/** Decodes the common plain PNG on the calling thread: 8 bits per sample, grey, grey + alpha, RGB or
 * RGBA, not interlaced, at most `maxPixels` (and PLAIN_PNG_MAX_PIXELS), every chunk's CRC right.
 * Gives the samples as stored (1, 2, 3 or 4 channels), as decodeImage's sharp path gives them too,
 * in about 0.02 ms of CPU for 28x28 against about 0.8 ms for sharp's header read and decode
 * (npm run bench:http, its PNG table).
 * Anything else, including any damage, gives undefined (readPng, below, says what the damage is). */
export function decodePlainPng(bytes: Uint8Array, maxPixels: number): RawImage | undefined {
  const read = readPng(bytes, maxPixels);
  return typeof read === 'string' ? undefined : read;
}

/** decodePlainPng, but a PNG whose chunk structure is damaged (pngChunks) answers what is wrong:
 * one walk over the chunks for both. sharp (libpng) decodes damaged files without a word when the
 * pixel data happens to inflate (a damaged IHDR, a file cut after its last IDAT), so decodeImage
 * refuses them before it sees them: scoring a damaged file would give a number for other pixels.
 * Bytes after IEND are not damage (decoders ignore them), but they send the file to sharp. */
export function readPng(bytes: Uint8Array, maxPixels: number): RawImage | string | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 8 || !b.subarray(0, 8).equals(SIGNATURE)) return undefined;
  const read = pngChunks(b);
  if (typeof read === 'string') return read;
  if (read.end !== b.length) return undefined;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  for (const { type, data } of read.chunks) {
    if (type === 'IHDR') {
      if (width || data.length !== 13) return undefined;
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, colour, compression, filter, interlace] = data.subarray(8, 13);
      channels = ({ 0: 1, 4: 2, 2: 3, 6: 4 } as Record<number, number>)[colour] ?? 0;
      if (depth !== 8 || !channels || compression || filter || interlace) return undefined;
      if (!(width > 0 && height > 0) || width * height > Math.min(maxPixels, PLAIN_PNG_MAX_PIXELS)) return undefined;
    } else if (!width) {
      return undefined;                                  // IHDR must come first
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type !== 'IEND' && !HARMLESS.has(type)) {
      return undefined;
    }
  }
  if (!idat.length) return undefined;
  const stride = width * channels;
  let rows: Buffer;
  try {
    rows = inflateSync(Buffer.concat(idat), { maxOutputLength: height * (stride + 1) });
  } catch {
    return undefined;
  }
  if (rows.length !== height * (stride + 1)) return undefined;
  const out = new Uint8Array(height * stride);
  const bpp = channels;
  for (let y = 0; y < height; y++) {
    const f = rows[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const dst = y * stride;
    const up = dst - stride;   // the row above in `out` (reconstructed); none on row 0
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[dst + x - bpp] : 0;
      const u = y > 0 ? out[up + x] : 0;
      const c = x >= bpp && y > 0 ? out[up + x - bpp] : 0;
      let p: number;
      switch (f) {
        case 0: p = 0; break;
        case 1: p = a; break;
        case 2: p = u; break;
        case 3: p = (a + u) >> 1; break;
        case 4: {
          const pa = Math.abs(u - c);
          const pb = Math.abs(a - c);
          const pc = Math.abs(a + u - 2 * c);
          p = pa <= pb && pa <= pc ? a : pb <= pc ? u : c;
          break;
        }
        default: return undefined;
      }
      out[dst + x] = (rows[src + x] + p) & 0xff;
    }
  }
  return { width, height, channels, data: out };
}
