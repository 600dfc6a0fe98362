// The `condition` of a sampling request: a base64 image decoded and checked against the model.
import type { Condition, ModelSummary } from '../runtime/types.js';
import type { SampleBody } from '../schemas/sample.js';
import { BadRequestError } from './errors.js';
import { decodeImage, type DecodedImage } from './decode-image.js';

/** base64 (a data: URL prefix is allowed) -> bytes */
export function fromBase64(text: string, field: string): Buffer {
  const bytes = Buffer.from(text.replace(/^data:[^,]*;base64,/, ''), 'base64');
  if (bytes.length === 0) throw new BadRequestError(`${field} is not base64`);
  return bytes;
}

/** The runtime's condition, and the image as it came with what was done to it (for the answer). */
export async function toCondition(
  c: NonNullable<SampleBody['condition']>,
  model: ModelSummary,
  maxPixels: number,
): Promise<{ condition: Condition; input: DecodedImage['source'] & { conversions: string[] } }> {
  if (c.mode === 'complete' && c.slices === undefined) throw new BadRequestError("body/condition/slices is required when mode is 'complete'");
  if (c.mode !== 'complete' && c.slices !== undefined) throw new BadRequestError(`body/condition/slices is for mode 'complete' only, not '${c.mode}'`);
  const { image, source, conversions } = await decodeImage(fromBase64(c.image, 'body/condition/image'), { name: model.name, ...model.image }, c.convert ?? {}, maxPixels,
    (o) => `condition.convert.${o}`);
  const condition: Condition = c.mode === 'complete' ? { mode: 'complete', image, slices: c.slices! } : { mode: c.mode, image };
  return { condition, input: { ...source, conversions } };
}
