// Request deadlines: REQUEST_TIMEOUT_MS for every /sample and /likelihood request, or a shorter
// `timeoutMs` the request asks for. The deadline starts once the body is read and its images
// decoded, and covers the queue and the model's runs. When it passes, the request's
// AbortController is aborted with a DeadlineAbort, so the runtime drops the request before its
// next run (or from the queue), and the answer is 504 (an in-band error event once a stream has
// begun).

/** The abort reason when a request's deadline passes. */
export class DeadlineAbort extends Error {
  constructor(readonly ms: number) {
    super(`request timed out after ${ms} ms`);
  }
}

/** The deadline in ms that applies: the shorter of the server's (0: none) and the request's; 0 for none. */
export function effectiveTimeout(serverMs: number, requestedMs: number | undefined): number {
  if (requestedMs === undefined) return serverMs;
  return serverMs > 0 ? Math.min(serverMs, requestedMs) : requestedMs;
}

/** Aborts `ac` with a DeadlineAbort after `ms` (none for 0); answers the function that disarms it. */
export function armDeadline(ac: AbortController, ms: number): () => void {
  if (ms <= 0) return () => {};
  const timer = setTimeout(() => ac.abort(new DeadlineAbort(ms)), ms);
  timer.unref(); // the request in flight keeps the process up, not its deadline
  return () => clearTimeout(timer);
}
