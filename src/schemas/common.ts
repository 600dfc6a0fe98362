import { Type, type Static } from '@sinclair/typebox';

export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'what went wrong, for people' }),
    error_type: Type.String({ description: 'what went wrong, for programs (closed set)', examples: ['validation', 'overloaded'] }),
  },
  { $id: 'ErrorBody', description: 'Every error answer, and the data of an in-band `error` event' },
);
export type ErrorBody = Static<typeof ErrorBody>;

export const ModelName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'a model name, as listed by GET /models' });

export const Base64Png = Type.String({ contentEncoding: 'base64', contentMediaType: 'image/png', description: 'a PNG image, base64' });

/** Error answers by status code, to spread into a route's `response`. */
export function errors(...codes: number[]): Record<number, typeof ErrorBody> {
  return Object.fromEntries(codes.map((c) => [c, Type.Ref(ErrorBody) as unknown as typeof ErrorBody]));
}
