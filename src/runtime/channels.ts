// Channel order: images come and go (decoded files, the API's pixel arrays, PNGs) with their
// channels in IMAGE_CHANNELS order; a model generates a pixel's channels in its manifest's
// channelOrder, a permutation of those names (e.g. G, R, B). The runtime permutes at its boundary.

/** The channels of an image as files and the API hold them, by channel count. */
export const IMAGE_CHANNELS: Record<number, readonly string[]> = {
  1: ['gray'], 2: ['gray', 'A'], 3: ['R', 'G', 'B'], 4: ['R', 'G', 'B', 'A'],
};

/** perm[k]: the image channel that is the model's channel k; null when they are the same order.
 * Throws a message when channelOrder is not a permutation of the image's channel names. */
export function channelPerm(channelOrder: readonly string[], channels: number): number[] | null {
  const names = IMAGE_CHANNELS[channels]?.map((n) => n.toLowerCase());
  if (!names) throw new Error(`${channels} channels: images have 1 to 4`);
  // one channel: nothing to permute, whatever its name (gray, grey, L, Y)
  if (channels === 1 && channelOrder.length === 1) return null;
  const order = channelOrder.map((c) => c.toLowerCase());
  const perm = order.map((c) => names.indexOf(c));
  if (order.length !== names.length || perm.includes(-1) || new Set(perm).size !== perm.length) {
    throw new Error(`channelOrder ${JSON.stringify(channelOrder)} must name each of the image's channels (${IMAGE_CHANNELS[channels].join(', ')}) once`);
  }
  return perm.every((p, k) => p === k) ? null : perm;
}

/** Interleaved values (pixel by pixel, C channels each) from image order to the model's; a new
 * array when `copy` or when they differ. */
export function toModelChannels(data: Uint8Array, perm: number[] | null, copy = false): Uint8Array {
  if (!perm) return copy ? data.slice() : data;
  const C = perm.length;
  const out = new Uint8Array(data.length);
  for (let p = 0; p < data.length; p += C) for (let k = 0; k < C; k++) out[p + k] = data[p + perm[k]];
  return out;
}

/** Interleaved values from the model's channel order to the image's. */
export function toImageChannels(data: Uint8Array, perm: number[] | null): Uint8Array {
  if (!perm) return data;
  const C = perm.length;
  const out = new Uint8Array(data.length);
  for (let p = 0; p < data.length; p += C) for (let k = 0; k < C; k++) out[p + perm[k]] = data[p + k];
  return out;
}
