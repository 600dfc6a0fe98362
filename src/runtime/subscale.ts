// Subscale ordering: an H x W x C image with subscale factor S is cut into S*S slices of
// (H/S) x (W/S); slice k holds the pixels x[i::S, j::S] for the offset [i, j] = order[k], the
// manifest's sliceOrder (raster order, [k / S, k % S], where a geometry gives none). Images here
// are HWC (interleaved, as decoded images come); slices are planar [slice][channel][row][col], the
// layout of the ONNX graphs' inputs.

export type SliceOrder = readonly (readonly number[])[];

export interface Geometry {
  height: number;
  width: number;
  channels: number;
  subscale: number;
  /** the offset [i, j] of each slice, in the order they are generated */
  order?: SliceOrder;
}

export function sliceShape(g: Geometry): { h: number; w: number; count: number } {
  if (g.height % g.subscale || g.width % g.subscale) {
    throw new RangeError(`subscale factor ${g.subscale} does not divide ${g.height}x${g.width}`);
  }
  return { h: g.height / g.subscale, w: g.width / g.subscale, count: g.subscale * g.subscale };
}

/** Offset (row, column) of slice k: its place in the order, or in raster order where none is given. */
export function sliceOffset(k: number, g: Pick<Geometry, 'subscale' | 'order'>): [number, number] {
  if (g.order) return [g.order[k][0], g.order[k][1]];
  return [Math.floor(k / g.subscale), k % g.subscale];
}

/** The slice holding each offset: [i * S + j] -> k with order[k] = [i, j]. */
export function sliceIndexByOffset(g: Pick<Geometry, 'subscale' | 'order'>): Int32Array {
  const S = g.subscale;
  const index = new Int32Array(S * S);
  for (let k = 0; k < S * S; k++) {
    const [i, j] = sliceOffset(k, g);
    index[i * S + j] = k;
  }
  return index;
}

/** Why `order` is not a slice order for subscale factor S (each offset [i, j], 0 <= i, j < S, once), or null. */
export function sliceOrderProblem(order: SliceOrder, S: number): string | null {
  if (order.length !== S * S) return `it has ${order.length} offsets; subscale factor ${S} makes ${S * S} slices`;
  const seen = new Set<number>();
  for (const [k, o] of order.entries()) {
    if (o.length !== 2 || !o.every((v) => Number.isInteger(v) && v >= 0 && v < S)) return `offset ${k} is ${JSON.stringify(o)}: an offset is [i, j] with 0 <= i, j < ${S}`;
    if (seen.has(o[0] * S + o[1])) return `offset ${JSON.stringify(o)} comes twice`;
    seen.add(o[0] * S + o[1]);
  }
  return null;
}

/** HWC image values -> planar slices [S*S][C][h][w]. */
export function toSlices(image: ArrayLike<number>, g: Geometry, out?: Int32Array): Int32Array {
  const { h, w, count } = sliceShape(g);
  const { width, channels: C, subscale: S } = g;
  const res = out ?? new Int32Array(count * C * h * w);
  for (let k = 0; k < count; k++) {
    const [i, j] = sliceOffset(k, g);
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
    const [i, j] = sliceOffset(k, g);
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
