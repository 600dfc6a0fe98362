import { Type, type Static } from '@sinclair/typebox';

export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'what went wrong, for people' }),
    error_type: Type.String({ description: 'what went wrong, for programs (closed set)', examples: ['validation', 'overloaded'] }),
  },
  { $id: 'ErrorBody', description: 'Every error answer, and the data of an in-band `error` event' },
);
export type ErrorBody = Static<typeof ErrorBody>;

export const ModelName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'a model name, as listed by GET /models', examples: ['mu-fmnist'] });

/** The first Fashion-MNIST test image (28x28, grey) as a base64 PNG: what the documented request
 * examples send, so that Swagger UI's "Try it out" starts from a request the server accepts. */
export const EXAMPLE_PNG =
  'iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAABXUlEQVR4XmNgGNaAmZGBgZ1BFd2PjEwM0iHcENFyDEkGhoj+PJCoWGwWuiQLg2ljxeT1c5e1z1rRgybJxMDd2dSwYMP85ZumTp8Al2RkYGJkYGZgKC7K6lwxc87S5f1z50HtZgQrYmZgiOyOips5tXn6yjX981cawLQysYAUJHXk5eYtap8wdf7yCfNWgp3LxMTIBKKlckqT80s75rTNmjVnQe/kOZvAhoGAqGlMaX56cWNb/6ylq2ZNn9XfNW2pNgMDg7iZo09oWUN1fmFZfW13a8eCntkLJ8xes3CvHQODS1xUflF+UXF9e0d/Xf30Wf1TahctmtA1c9ERKwa3lY0ZSSlxiUlpOVnlFY1T5yzft+/IsWO7j+7docIgULd6z54dq2e2V9TVT9p5+OKF/xc3fv3z+/f3O+cMQY7hcc5asvP4pcuXLuybFsTBwMCw6cKe9YvmTYeGwlBJgQDoA4KxkSijHgAAAABJRU5ErkJggg==';

/** A request's own deadline, shorter than the server's REQUEST_TIMEOUT_MS (which caps it). */
export const TimeoutMs = Type.Integer({
  minimum: 1,
  maximum: 86_400_000,
  description: 'deadline for this request in ms, queue included (capped by the server\'s REQUEST_TIMEOUT_MS); past it the answer is 504, or an in-band error event on a stream',
});

/** What may be done to an uploaded image so that it fits the model: the same options wherever an
 * image is sent. Absent means no (no schema default: Ajv would write it into a JSON body, where it
 * would then win over the same option in /likelihood's query string). */
export const Convert = Type.Object(
  {
    resize: Type.Optional(Type.Boolean({ description: "convert an image of another size to the model's (scaled to cover, centre-cropped); absent: no" })),
    grayscale: Type.Optional(Type.Boolean({ description: 'convert a colour image to grey for a one-channel model; absent: no' })),
    rgb: Type.Optional(Type.Boolean({ description: 'convert a grey image to RGB for a three-channel model; absent: no' })),
  },
  { additionalProperties: false },
);

/** An uploaded image as it came, and what was done to it. */
export const ImageInput = Type.Object({
  format: Type.String(),
  width: Type.Integer(),
  height: Type.Integer(),
  channels: Type.Integer(),
  conversions: Type.Array(Type.String(), { description: 'what was done to the pixels, in order; empty when taken as they were' }),
});

/** The query of a route whose options are all in its body: a query parameter there would be
 * silently ignored (a client that moved an option from GET /sample to POST would not notice), so
 * any is refused, named (400 `querystring/seed is not allowed`). */
export const NoQuery = Type.Object({}, { additionalProperties: false });

export const Base64Png = Type.String({ contentEncoding: 'base64', contentMediaType: 'image/png', description: 'a PNG image, base64' });

/** Each error status: what it means, and an example answer, so that Swagger UI shows a 401 as
 * unauthorized and a 503 as not_ready (every status showed the shared schema's first example). */
const ERRORS: Record<number, { description: string; example: [error: string, errorType: string] }> = {
  400: { description: 'the request violates its schema (the message names the field), or the bytes are not a PNG/JPEG/WebP image, or it is truncated',
    example: ['body/count must be <= 16', 'validation'] },
  401: { description: 'the server sets API_KEYS and the request has no valid `Authorization: Bearer <key>` (the body is not read)',
    example: ['an API key is required: send Authorization: Bearer <key>', 'unauthorized'] },
  404: { description: 'unknown model', example: ["unknown model 'nope'", 'unknown_model'] },
  406: { description: 'none of the media types in Accept can be produced', example: ['none of the media types in Accept can be produced', 'not_acceptable'] },
  411: { description: 'a multipart batch upload without a Content-Length (its size is checked before it is read)',
    example: ['a multipart batch upload needs a Content-Length', 'length_required'] },
  413: { description: 'the body is over BODY_LIMIT, or the image declares more than MAX_IMAGE_PIXELS pixels (it is not decoded)',
    example: ['Request body is too large', 'payload_too_large'] },
  415: { description: 'unsupported Content-Type', example: ['Unsupported Media Type: text/plain', 'unsupported_media_type'] },
  422: { description: 'the image or a field does not fit the model (size, channels, stage, slices); conversion is only done on request',
    example: ["the image does not fit model 'mu-fmnist': it is 56x56 but the model takes 28x28", 'image_mismatch'] },
  429: { description: 'the queue is full: retry after `Retry-After` seconds', example: ['Model is overloaded', 'overloaded'] },
  500: { description: 'internal error', example: ['Internal Server Error', 'internal'] },
  503: { description: 'the models are loading, failed to load, or the server is shutting down', example: ['the models are still loading', 'not_ready'] },
  504: { description: 'the request ran past its deadline (REQUEST_TIMEOUT_MS, or the shorter one it asked for: timeoutMs, or on v2 infer parameters.timeout), queue included',
    example: ['request timed out after 250 ms', 'timeout'] },
};

/** ErrorBody once per status, with that status's example (components `Error401`, ...). */
export const ERROR_SCHEMAS: Record<number, typeof ErrorBody> = Object.fromEntries(
  Object.entries(ERRORS).map(([code, { example: [error, type] }]) => [
    code,
    Type.Object(
      {
        error: Type.String({ ...ErrorBody.properties.error, examples: [error] }),
        error_type: Type.String({ ...ErrorBody.properties.error_type, examples: [type] }),
      },
      { $id: `Error${code}`, description: `ErrorBody, as a ${code} answer has it` },
    ),
  ]),
) as Record<number, typeof ErrorBody>;

/** Error answers by status code, to spread into a route's `response`. */
export function errors(...codes: number[]): Record<number, typeof ErrorBody> {
  return Object.fromEntries(
    codes.map((c) => [
      c,
      Type.Ref(ERROR_SCHEMAS[c] ?? ErrorBody, {
        description: ERRORS[c]?.description ?? 'error',
        ...(c === 429 ? { headers: { 'retry-after': Type.Integer({ description: 'seconds to wait before retrying' }) } } : {}),
      }) as unknown as typeof ErrorBody,
    ]),
  );
}

/** Operations that need one of API_KEYS when the server sets them: a bearer key, or (on a server
 * without keys) nothing. */
export const API_KEY_SECURITY: Array<Record<string, string[]>> = [{ apiKey: [] }, {}];
