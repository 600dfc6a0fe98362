// Subscale ordering: an H x W x C image with subscale factor S is cut into S*S slices of
// (H/S) x (W/S); slice k = i*S + j holds the pixels x[i::S, j::S]. Images here are HWC
// (interleaved, as decoded images come); slices are planar [slice][channel][row][col], the
// layout of the ONNX graphs' inputs.

export interface Geometry {
  height: number;
  width: number;
  channels: number;
  subscale: number;
}

export function sliceShape(g: Geometry): { h: number; w: number; count: number } {
  if (g.height % g.subscale || g.width % g.subscale) {
    throw new RangeError(`subscale factor ${g.subscale} does not divide ${g.height}x${g.width}`);
  }
  return { h: g.height / g.subscale, w: g.width / g.subscale, count: g.subscale * g.subscale };
}

/** Offset (row, column) of slice k in subscale (raster) order. */
export function sliceOffset(k: number, subscale: number): [number, number] {
  return [Math.floor(k / subscale), k % subscale];
}

/** HWC image values -> planar slices [S*S][C][h][w]. */
export function toSlices(image: ArrayLike<number>, g: Geometry, out?: Int32Array): Int32Array {
  const { h, w, count } = sliceShape(g);
  const { width, channels: C, subscale: S } = g;
  const res = out ?? new Int32Array(count * C * h * w);
  for (let k = 0; k < count; k++) {
    const [i, j] = sliceOffset(k, S);
    for (let c = 0; c < C; c++) {
      const base = (k * C + c) * h * w;
      for (let r = 0; r < h; r++) {
        for (let q = 0; q < w; q++) {
          res[base + r * w + q] = image[((r * S + i) * width + (q * S + j)) * C + c];
        }
      }
    }
  }
  return res;
}

/** Planar slices [S*S][C][h][w] -> HWC image values. */
export function fromSlices(slices: ArrayLike<number>, g: Geometry, out?: Uint8Array): Uint8Array {
  const { h, w, count } = sliceShape(g);
  const { width, channels: C, subscale: S } = g;
  const res = out ?? new Uint8Array(g.height * g.width * C);
  for (let k = 0; k < count; k++) {
    const [i, j] = sliceOffset(k, S);
    for (let c = 0; c < C; c++) {
      const base = (k * C + c) * h * w;
      for (let r = 0; r < h; r++) {
        for (let q = 0; q < w; q++) {
          res[((r * S + i) * width + (q * S + j)) * C + c] = slices[base + r * w + q];
        }
      }
    }
  }
  return res;
}

/** The plane of `bits` bits starting at bit `shift` of each value. */
export function bitPlane(values: ArrayLike<number>, shift: number, bits: number): Int32Array {
  const out = new Int32Array(values.length);
  const mask = (1 << bits) - 1;
  for (let i = 0; i < values.length; i++) out[i] = (values[i] >> shift) & mask;
  return out;
}

/** Writes `plane` into bits [shift, shift + bits) of `values`, in place. */
export function mergeBitPlane(values: Uint8Array, plane: ArrayLike<number>, shift: number, bits: number): Uint8Array {
  const mask = ((1 << bits) - 1) << shift;
  for (let i = 0; i < values.length; i++) values[i] = (values[i] & ~mask) | ((plane[i] << shift) & mask);
  return values;
}
