// One mapping from any error to a status code and an `{error, error_type}` body, shared by the
// error handler (before the first byte) and the event stream (in-band `error` events after it).
import { CancelledError, InvalidInputError, NoWorkerError, OverloadedError, RuntimeError, UnknownModelError } from '../runtime/errors.js';
import { DeadlineAbort } from './deadline.js';
import { ClientGoneAbort, ShutdownAbort } from './errors.js';

/** Closed set of `error_type` values; also the values of the failures metric's `reason` after `failureReason`. */
export type ErrorType =
  | 'validation'
  | 'bad_request'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'length_required'
  | 'not_acceptable'
  | 'bad_image'
  | 'image_too_large'
  | 'image_mismatch'
  | 'invalid_input'
  | 'unknown_model'
  | 'not_found'
  | 'method_not_allowed'
  | 'forbidden_origin'
  | 'unauthorized'
  | 'overloaded'
  | 'cancelled'
  | 'timeout'
  | 'shutdown'
  | 'not_ready'
  | 'internal';

export const FAILURE_REASONS = ['overloaded', 'cancelled', 'timeout', 'bad_input', 'unauthorized', 'unavailable', 'internal'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export interface MappedError {
  statusCode: number;
  body: { error: string; error_type: ErrorType };
  retryAfterSeconds?: number;
}

const byFastifyCode: Record<string, [number, ErrorType]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type'],
  FST_INVALID_MULTIPART_CONTENT_TYPE: [415, 'unsupported_media_type'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large'],
  FST_REQ_FILE_TOO_LARGE: [413, 'payload_too_large'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'bad_request'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'bad_request'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'bad_request'],
  SPN_BAD_IMAGE: [400, 'bad_image'],
  SPN_BAD_REQUEST: [400, 'bad_request'],
  SPN_IMAGE_TOO_LARGE: [413, 'image_too_large'],
  SPN_IMAGE_MISMATCH: [422, 'image_mismatch'],
  SPN_UNPROCESSABLE: [422, 'invalid_input'],
  SPN_NOT_READY: [503, 'not_ready'],
  SPN_SHUTTING_DOWN: [503, 'shutdown'],
  SPN_NOT_ACCEPTABLE: [406, 'not_acceptable'],
  SPN_LENGTH_REQUIRED: [411, 'length_required'],
  SPN_FORBIDDEN_ORIGIN: [403, 'forbidden_origin'],
  SPN_UNAUTHORIZED: [401, 'unauthorized'],
  SPN_UNKNOWN_VERSION: [404, 'unknown_model'],
};

/** Retry-After on a 503 while the models load (they take a few seconds on CPU). */
export const NOT_READY_RETRY_S = 5;

export function mapError(err: unknown): MappedError {
  if (err instanceof OverloadedError) {
    return { statusCode: 429, body: { error: 'Model is overloaded', error_type: 'overloaded' }, retryAfterSeconds: Math.max(1, Math.ceil(err.retryAfterSeconds)) };
  }
  if (err instanceof UnknownModelError) return { statusCode: 404, body: { error: err.message, error_type: 'unknown_model' } };
  if (err instanceof InvalidInputError) return { statusCode: 422, body: { error: err.message, error_type: 'invalid_input' } };
  // 499 (nginx's "client closed request"): nobody reads it, but logs and metrics should not call it a 5xx.
  if (err instanceof CancelledError || err instanceof ClientGoneAbort) return { statusCode: 499, body: { error: 'request cancelled', error_type: 'cancelled' } };
  if (err instanceof DeadlineAbort) return { statusCode: 504, body: { error: err.message, error_type: 'timeout' } };
  if (err instanceof ShutdownAbort) return { statusCode: 503, body: { error: 'server is shutting down', error_type: 'shutdown' } };
  // every worker crashed and none is back yet: like loading models, come back in a few seconds
  if (err instanceof NoWorkerError) return { statusCode: 503, body: { error: err.message, error_type: 'not_ready' }, retryAfterSeconds: NOT_READY_RETRY_S };
  if (err instanceof RuntimeError) return { statusCode: 500, body: { error: 'internal error while running the model', error_type: 'internal' } };

  const e = err as { code?: string; statusCode?: number; message?: string; validation?: unknown };
  // the client's connection closed while its body was read (Node's 'aborted'; Fastify makes it a 400)
  if (e?.code === 'ECONNRESET') return { statusCode: 499, body: { error: 'request cancelled', error_type: 'cancelled' } };
  if (e && e.validation) return { statusCode: 400, body: { error: String(e.message), error_type: 'validation' } };
  const known = e?.code ? byFastifyCode[e.code] : undefined;
  // loading models take seconds: tell clients when to come back
  if (known && known[1] === 'not_ready') return { statusCode: known[0], body: { error: String(e.message), error_type: known[1] }, retryAfterSeconds: NOT_READY_RETRY_S };
  if (known) return { statusCode: known[0], body: { error: String(e.message), error_type: known[1] } };
  // Other client errors raised by Fastify or a plugin keep their status; their message is safe to show.
  if (e && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { statusCode: e.statusCode, body: { error: String(e.message), error_type: e.statusCode === 404 ? 'not_found' : 'bad_request' } };
  }
  // Anything else is our fault: do not leak its message to the client (it is logged).
  return { statusCode: 500, body: { error: 'Internal Server Error', error_type: 'internal' } };
}

export function failureReason(type: ErrorType): FailureReason {
  switch (type) {
    case 'overloaded':
      return 'overloaded';
    case 'cancelled':
      return 'cancelled';
    case 'timeout':
      return 'timeout';
    case 'unauthorized':
      return 'unauthorized';
    case 'shutdown':
    case 'not_ready':
      return 'unavailable';
    case 'internal':
      return 'internal';
    default:
      return 'bad_input';
  }
}
