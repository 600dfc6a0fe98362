// Coded errors of the runtime; the HTTP layer maps `code` to a status.

export class RuntimeError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The queue is full: refuse at once (HTTP 429). */
export class OverloadedError extends RuntimeError {
  constructor(readonly retryAfterSeconds = 1) {
    super('overloaded', 'Model is overloaded');
  }
}

/** No such model (HTTP 404). */
export class UnknownModelError extends RuntimeError {
  constructor(readonly model: string) {
    super('unknown_model', `unknown model '${model}'`);
  }
}

/** The request does not fit the model (size, channels, stage name, slice count) (HTTP 422). */
export class InvalidInputError extends RuntimeError {
  constructor(message: string) {
    super('invalid_input', message);
  }
}

/** The caller aborted the request. */
export class CancelledError extends RuntimeError {
  /** why the request's AbortSignal fired, when it did: a passed deadline is a TimeoutError */
  constructor(readonly abortReason?: unknown) {
    super('cancelled', 'request cancelled');
  }

  /** the caller's deadline passed (an abort reason named TimeoutError, as AbortSignal.timeout() gives) */
  get timedOut(): boolean {
    return (this.abortReason as { name?: unknown } | undefined)?.name === 'TimeoutError';
  }
}

/** A worker failed while running this request (HTTP 500 / in-band error). */
export class WorkerFailedError extends RuntimeError {
  constructor(message: string) {
    super('worker_failed', message);
  }
}

/** No inference worker can take the request: every one crashed and the replacements are loading
 * past the wait, or failed to start (HTTP 503, Retry-After). */
export class NoWorkerError extends WorkerFailedError {}

/** A model could not be loaded: names the file and what is wrong. Stops start-up. */
export class ModelLoadError extends RuntimeError {
  constructor(message: string) {
    super('model_load', message);
  }
}

/** Loading the models was stopped (the runtime's `signal` aborted: the service is shutting down). */
export class LoadCancelledError extends RuntimeError {
  constructor() {
    super('load_cancelled', 'loading the models was cancelled');
  }
}
