// Coded errors raised by the HTTP layer itself. The one error handler (plugins/error-handler.ts)
// turns these, Fastify's own errors and the runtime's errors into `{error, error_type}` bodies.
import createError from '@fastify/error';

/** Bytes that are not a PNG, JPEG or WebP image, or a truncated/corrupt one. */
export const BadImageError = createError('SPN_BAD_IMAGE', '%s', 400);
/** An image whose declared dimensions exceed MAX_IMAGE_PIXELS: refused before it is decoded. */
export const ImageTooLargeError = createError('SPN_IMAGE_TOO_LARGE', '%s', 413);
/** The image does not fit the model (size, channels, transparency) and no conversion was asked for. */
export const ImageMismatchError = createError('SPN_IMAGE_MISMATCH', '%s', 422);
/** A request field that is well-formed but does not fit the model (stage name, slice count). */
export const UnprocessableError = createError('SPN_UNPROCESSABLE', '%s', 422);
/** A field the schema cannot express (e.g. one field required only with another). */
export const BadRequestError = createError('SPN_BAD_REQUEST', '%s', 400);
/** The models are still loading, or failed to load. */
export const NotReadyError = createError('SPN_NOT_READY', '%s', 503);
/** The server is draining for shutdown and takes no new work. */
export const ShuttingDownError = createError('SPN_SHUTTING_DOWN', 'server is shutting down', 503);
/** A body of a media type this route does not take. */
export const UnsupportedMediaTypeError = createError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 'Unsupported Media Type: %s', 415);
/** A multipart batch upload without a Content-Length: its size could not be bounded before reading it. */
export const LengthRequiredError = createError('SPN_LENGTH_REQUIRED', '%s', 411);
/** A request to a protected route without one of the API_KEYS. */
export const UnauthorizedError = createError('SPN_UNAUTHORIZED', '%s', 401);
/** A model version (Open Inference Protocol paths) other than the one loaded. */
export const UnknownVersionError = createError('SPN_UNKNOWN_VERSION', '%s', 404);
/** A CORS preflight from an origin that CORS_ORIGINS does not list. */
export const ForbiddenOriginError = createError('SPN_FORBIDDEN_ORIGIN', '%s', 403);
/** None of the media types in Accept can be produced. */
export const NotAcceptableError = createError('SPN_NOT_ACCEPTABLE', '%s', 406);

/** The abort reason given to the runtime when the shutdown grace period runs out. */
export class ShutdownAbort extends Error {
  constructor() {
    super('server is shutting down');
  }
}

/** The abort reason given to the runtime when the client hangs up. */
export class ClientGoneAbort extends Error {
  constructor() {
    super('client closed the connection');
  }
}
/** A body compressed with an encoding the server does not inflate (or a multipart form, compressed). */
export const UnsupportedEncodingError = createError('FST_ERR_CTP_INVALID_MEDIA_TYPE', '%s', 415);
