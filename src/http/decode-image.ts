// Turning uploaded bytes into the 8-bit HWC image a model takes, safely:
// - the format is sniffed from magic bytes, not trusted from headers;
// - dimensions are read from the header and checked before anything is decoded (decompression bombs);
// - an image that does not fit the model is refused (422) unless the caller asked for that conversion,
//   and every change made is reported back in `conversions`.
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import type { RawImage } from '../runtime/types.js';
import { readPng } from './png.js';
import { BadImageError, ImageMismatchError, ImageTooLargeError } from './errors.js';

export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}

export interface ConvertOptions {
  /** scale to cover the model's size and centre-crop */
  resize?: boolean;
  /** colour to grey (Rec. 601 luma), for a one-channel model */
  grayscale?: boolean;
  /** grey to RGB (replicated), for a three-channel model */
  rgb?: boolean;
}

export interface DecodedImage {
  image: RawImage;
  source: { format: 'png' | 'jpeg' | 'webp'; width: number; height: number; channels: number };
  /** what was done to the pixels, in order; empty when the image was taken as it is */
  conversions: string[];
}

export function sniffFormat(bytes: Uint8Array): 'png' | 'jpeg' | 'webp' | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return undefined;
}

const channelNames = (c: number) => (c === 1 ? '1 channel (grey)' : c === 3 ? '3 channels (RGB)' : `${c} channels`);

/** How a refusal names a conversion option to the caller: where the request would set it. */
export type AskFor = (option: keyof ConvertOptions) => string;
/** /likelihood's: a JSON body's `convert` object, or the query string */
const askLikelihood: AskFor = (o) => `convert.${o} (query ${o}=true)`;

export async function decodeImage(
  bytes: Buffer,
  model: { name: string } & ImageShape,
  convert: ConvertOptions,
  maxPixels: number,
  askFor: AskFor = askLikelihood,
): Promise<DecodedImage> {
  const format = sniffFormat(bytes);
  if (!format) throw new BadImageError('the data is not a PNG, JPEG or WebP image');

  // A plain PNG (8-bit, not interlaced, small) is decoded here, without sharp's fixed cost; sharp
  // takes everything else, and any file the plain decoder does not fully accept.
  const plain = format === 'png' ? readPng(bytes, maxPixels) : undefined;
  if (typeof plain === 'string') throw new BadImageError(`the PNG image is corrupt or truncated: ${plain}`);
  const raw = plain ?? await decodeWithSharp(bytes, format, maxPixels);
  const { width, height } = raw;
  const source = { format, width, height, channels: raw.channels };
  const conversions: string[] = [];
  let img: RawImage = raw;

  if (img.channels === 2 || img.channels === 4) {
    if (!alphaOpaque(img)) throw new ImageMismatchError('the image has transparent pixels and the model has no alpha channel; flatten it first');
    img = dropAlpha(img);
    conversions.push('dropped an alpha channel that was fully opaque');
  }
  if (img.channels === 3 && model.channels === 1 && channelsEqual(img)) {
    img = takeChannel0(img);
    conversions.push('read an RGB image whose three channels are equal as grey (lossless)');
  }

  const problems: string[] = [];
  if (img.channels !== model.channels) {
    if (model.channels === 1 && img.channels === 3 && convert.grayscale) {
      img = toGrey(img);
      conversions.push('converted RGB to grey (Rec. 601 luma)');
    } else if (model.channels === 3 && img.channels === 1 && convert.rgb) {
      img = toRgb(img);
      conversions.push('converted grey to RGB (replicated)');
    } else {
      const ask = askFor(model.channels === 1 ? 'grayscale' : 'rgb');
      problems.push(`it has ${channelNames(img.channels)} but the model takes ${channelNames(model.channels)} (send such an image, or ask for ${ask})`);
    }
  }
  if (img.width !== model.width || img.height !== model.height) {
    if (convert.resize) {
      const from = `${img.width}x${img.height}`;
      img = await resize(img, model.width, model.height, maxPixels);
      conversions.push(`resized ${from} to ${model.width}x${model.height} (scaled to cover, centre-cropped)`);
    } else {
      problems.push(`it is ${img.width}x${img.height} but the model takes ${model.width}x${model.height} (send such an image, or ask for ${askFor('resize')})`);
    }
  }
  if (problems.length) throw new ImageMismatchError(`the image does not fit model '${model.name}': ${problems.join('; ')}`);
  return { image: img, source, conversions };
}

/** Header first (size, frames, sample depth, colour space checked before any pixel is decoded),
 * then the pixels, on sharp's threads. */
async function decodeWithSharp(bytes: Buffer, format: string, maxPixels: number): Promise<RawImage> {
  // Header only: sharp does not decode pixels for metadata().
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new BadImageError(`the ${format.toUpperCase()} image is corrupt or truncated: ${firstLine(err)}`);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (!(width > 0 && height > 0)) throw new BadImageError(`the ${format.toUpperCase()} image declares no size`);
  if (width * height > maxPixels) {
    throw new ImageTooLargeError(`the image declares ${width}x${height} pixels, more than the limit of ${maxPixels} pixels; it was not decoded`);
  }
  if ((meta.pages ?? 1) > 1) throw new ImageMismatchError(`the image is animated (${meta.pages} frames); send a single frame`);
  if (meta.depth && meta.depth !== 'uchar') throw new ImageMismatchError(`the image has ${meta.depth} samples; send 8 bits per channel`);
  if (meta.space === 'cmyk') throw new ImageMismatchError('the image is CMYK; send a greyscale or RGB image');

  let decoded: { data: Buffer; info: OutputInfo };
  try {
    const grey = meta.channels === 1;
    // failOn 'truncated' (not the default 'warning') so a cut-off file is refused, not padded out.
    const s = sharp(bytes, { limitInputPixels: maxPixels, failOn: 'truncated' });
    // grey + alpha comes out as RGBA ('b-w' would drop the alpha unchecked): back to grey + alpha below
    decoded = await (grey ? s.toColourspace('b-w') : s).raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new BadImageError(`the ${format.toUpperCase()} image could not be decoded (corrupt or truncated): ${firstLine(err)}`);
  }
  const data = new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength);
  if (meta.channels !== 2 || decoded.info.channels !== 4) return { width, height, channels: decoded.info.channels, data };
  const greyAlpha = new Uint8Array(width * height * 2);
  for (let p = 0; p < width * height; p++) {
    greyAlpha[2 * p] = data[4 * p];
    greyAlpha[2 * p + 1] = data[4 * p + 3];
  }
  return { width, height, channels: 2, data: greyAlpha };
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}

function alphaOpaque(img: RawImage): boolean {
  for (let i = img.channels - 1; i < img.data.length; i += img.channels) if (img.data[i] !== 255) return false;
  return true;
}

function dropAlpha(img: RawImage): RawImage {
  const c = img.channels - 1;
  const n = img.width * img.height;
  const data = new Uint8Array(n * c);
  for (let p = 0; p < n; p++) for (let k = 0; k < c; k++) data[p * c + k] = img.data[p * img.channels + k];
  return { ...img, channels: c, data };
}

function channelsEqual(img: RawImage): boolean {
  const d = img.data;
  for (let i = 0; i < d.length; i += 3) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false;
  return true;
}

function takeChannel0(img: RawImage): RawImage {
  const n = img.width * img.height;
  const data = new Uint8Array(n);
  for (let p = 0; p < n; p++) data[p] = img.data[p * 3];
  return { ...img, channels: 1, data };
}

function toGrey(img: RawImage): RawImage {
  const n = img.width * img.height;
  const data = new Uint8Array(n);
  const d = img.data;
  for (let p = 0; p < n; p++) data[p] = Math.round(0.299 * d[p * 3] + 0.587 * d[p * 3 + 1] + 0.114 * d[p * 3 + 2]);
  return { ...img, channels: 1, data };
}

function toRgb(img: RawImage): RawImage {
  const n = img.width * img.height;
  const data = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) data[p * 3] = data[p * 3 + 1] = data[p * 3 + 2] = img.data[p];
  return { ...img, channels: 3, data };
}

/** Scaled to cover width x height, then centre-cropped. Scaling to cover makes the whole image at
 * the scale of its shorter side first: an image far from the model's shape (1 x 2,000,000 is a 4 KB
 * PNG) would become billions of pixels, which sharp refuses (an error) or spends seconds on. Such
 * an image is refused unless its covering size is within the upload limit. */
async function resize(img: RawImage, width: number, height: number, maxPixels: number): Promise<RawImage> {
  const scale = Math.max(width / img.width, height / img.height);
  const coverW = Math.ceil(img.width * scale);
  const coverH = Math.ceil(img.height * scale);
  if (coverW * coverH > maxPixels) {
    throw new ImageMismatchError(
      `the image is ${img.width}x${img.height}: scaled to cover ${width}x${height} it would be ${coverW}x${coverH}, more than the limit of ${maxPixels} pixels; crop it nearer the model's shape first`);
  }
  const s = sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: img.channels as 1 | 3 },
  }).resize(width, height, { fit: 'cover', position: 'centre' });
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await (img.channels === 1 ? s.toColourspace('b-w') : s).raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new ImageMismatchError(`the ${img.width}x${img.height} image could not be resized to ${width}x${height}: ${firstLine(err)}`);
  }
  const { data, info } = out;
  if (info.channels !== img.channels) throw new Error(`resize changed channels ${img.channels} -> ${info.channels}`);
  return { width, height, channels: img.channels, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
