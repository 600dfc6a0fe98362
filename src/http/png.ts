// Encoding the runtime's 8-bit HWC images as PNG for answers and stream events.
import sharp from 'sharp';
import type { RawImage } from '../runtime/types.js';

// Small images, sent many times per stream: favour encoding speed over a few bytes.
const PNG_OPTIONS = { compressionLevel: 3, adaptiveFiltering: false } as const;

export async function encodePng(img: RawImage): Promise<Buffer> {
  if (img.data.length !== img.width * img.height * img.channels) {
    throw new Error(`image buffer holds ${img.data.length} bytes, expected ${img.width}x${img.height}x${img.channels}`);
  }
  if (img.channels !== 1 && img.channels !== 3) throw new Error(`cannot encode ${img.channels}-channel image as PNG`);
  const s = sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: img.channels },
  });
  // sharp writes 1-channel input as RGB unless told the colour space is grey.
  return (img.channels === 1 ? s.toColourspace('b-w') : s).png(PNG_OPTIONS).toBuffer();
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
